package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/quorum"
)

// rawPrefixLen bounds Holder.Raw for values that do not parse.
const rawPrefixLen = 64

// historyQueueLen bounds pending history writes; more are dropped.
const historyQueueLen = 4096

// Backend is an etcd cluster seen through one client connection. It is safe
// for concurrent use.
type Backend struct {
	cfg  Config
	opts quorum.Options
	log  *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cli     *clientv3.Client
	closed  bool
	history chan historyJob // nil until the first grant

	requests atomic.Uint64
}

var _ quorum.Backend = (*Backend)(nil)

// New checks the configuration and options and returns a backend. It does not
// connect: the client is created on first use.
func New(cfg Config, opts quorum.Options, log *slog.Logger) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Validate(MinTTL); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Backend{cfg: cfg, opts: opts, log: log, ctx: ctx, cancel: cancel}, nil
}

// Requests counts the requests this backend sent to etcd (reads, writes,
// lease calls, watch creations).
func (b *Backend) Requests() uint64 { return b.requests.Load() }

func (b *Backend) count() { b.requests.Add(1) }

// client returns the etcd client, connecting on first use.
func (b *Backend) client() (*clientv3.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("etcd: %w", quorum.ErrClosed)
	}
	if b.cli != nil {
		return b.cli, nil
	}
	tc, err := b.cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            b.cfg.Endpoints,
		DialTimeout:          b.cfg.DialTimeout,
		DialKeepAliveTime:    max(b.opts.TTL, time.Second),
		DialKeepAliveTimeout: max(b.opts.RequestTimeout, 500*time.Millisecond),
		TLS:                  tc,
		Username:             b.cfg.Username,
		Password:             b.cfg.Password,
		Logger:               zap.NewNop(),
		Context:              b.ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connect %v: %w", b.cfg.Endpoints, b.cfg.explain(err))
	}
	b.cli = cli
	return cli, nil
}

// Close closes the client, ends every watch and waits for the backend's
// goroutines. Sessions are not revoked: their leases expire at the server.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	cli := b.cli
	b.mu.Unlock()
	b.cancel()
	var err error
	if cli != nil {
		err = cli.Close()
		if errors.Is(err, context.Canceled) {
			err = nil
		}
	}
	b.wg.Wait()
	return err
}

func (b *Backend) groupsPrefix() string         { return b.cfg.Prefix + "groups/" }
func (b *Backend) groupKey(group string) string { return b.groupsPrefix() + group }
func (b *Backend) historyKey(group string) string {
	return b.cfg.Prefix + "history/" + group
}

func checkGroup(group string) error {
	if group == "" || strings.ContainsAny(group, "/\x00") {
		return fmt.Errorf("etcd: bad group name %q", group)
	}
	return nil
}

// reqCtx bounds one request by RequestTimeout (and by Close).
func (b *Backend) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
	stop := context.AfterFunc(b.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// holder turns a stored key into a Holder. Values that do not parse are
// held by an unknown node.
func (b *Backend) holder(kv *mvccpb.KeyValue) quorum.Holder {
	group := strings.TrimPrefix(string(kv.Key), b.groupsPrefix())
	h := quorum.Holder{Group: group, Epoch: uint64(kv.CreateRevision), TTLLeft: -1}
	r, err := quorum.ParseRecord(kv.Value)
	if err != nil {
		raw := kv.Value
		if len(raw) > rawPrefixLen {
			raw = raw[:rawPrefixLen]
		}
		h.Unknown = true
		h.Raw = string(raw)
		b.log.Warn("etcd: group held by an unknown value", "group", group, "epoch", h.Epoch, "err", err)
		return h
	}
	h.Node, h.Addr, h.Priority, h.AcquiredAt = r.Node, r.Addr, r.Priority, r.AcquiredAt
	return h
}

// ttlLeft asks the server how long a lease has left; -1 when unknown.
func (b *Backend) ttlLeft(ctx context.Context, cli *clientv3.Client, id int64) time.Duration {
	if id == 0 {
		return -1
	}
	rctx, cancel := b.reqCtx(ctx)
	defer cancel()
	b.count()
	resp, err := cli.TimeToLive(rctx, clientv3.LeaseID(id))
	if err != nil || resp.TTL < 0 {
		return -1
	}
	return time.Duration(resp.TTL) * time.Second
}

// Inspect reads one group.
func (b *Backend) Inspect(ctx context.Context, group string) (quorum.Holder, bool, error) {
	if err := checkGroup(group); err != nil {
		return quorum.Holder{}, false, err
	}
	cli, err := b.client()
	if err != nil {
		return quorum.Holder{}, false, err
	}
	rctx, cancel := b.reqCtx(ctx)
	defer cancel()
	b.count()
	resp, err := cli.Get(rctx, b.groupKey(group))
	if err != nil {
		return quorum.Holder{}, false, fmt.Errorf("etcd: inspect %q: %w", group, err)
	}
	if len(resp.Kvs) == 0 {
		return quorum.Holder{Group: group, TTLLeft: -1}, false, nil
	}
	kv := resp.Kvs[0]
	h := b.holder(kv)
	h.TTLLeft = b.ttlLeft(ctx, cli, kv.Lease)
	return h, true, nil
}

// List reads every held group, sorted by name.
func (b *Backend) List(ctx context.Context) ([]quorum.Holder, error) {
	cli, rctx, cancel, err := b.request(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := cli.Get(rctx, b.groupsPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd: list: %w", err)
	}
	ttls := map[int64]time.Duration{}
	out := make([]quorum.Holder, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		h := b.holder(kv)
		ttl, ok := ttls[kv.Lease]
		if !ok {
			ttl = b.ttlLeft(ctx, cli, kv.Lease)
			ttls[kv.Lease] = ttl
		}
		h.TTLLeft = ttl
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, nil
}

// historyEntry is one grant in <prefix>history/<group>.
type historyEntry struct {
	Epoch      uint64    `json:"epoch"`
	Node       string    `json:"node"`
	Addr       string    `json:"addr,omitempty"`
	AcquiredAt time.Time `json:"acquired_at"`
}

type historyJob struct {
	group string
	entry historyEntry
}

// get reads key (opts: a prefix...) of a group in one request; what names
// the read in errors.
func (b *Backend) get(ctx context.Context, what, group, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	cli, rctx, cancel, err := b.request(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := cli.Get(rctx, key, opts...)
	if err != nil {
		return nil, fmt.Errorf("etcd: %s %q: %w", what, group, err)
	}
	return resp, nil
}

// History returns the last grants of a group, oldest first.
func (b *Backend) History(ctx context.Context, group string) ([]quorum.Holder, error) {
	resp, err := b.get(ctx, "history", group, b.historyKey(group))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var list []historyEntry
	if err := json.Unmarshal(resp.Kvs[0].Value, &list); err != nil {
		return nil, fmt.Errorf("etcd: history %q: bad value: %w", group, err)
	}
	out := make([]quorum.Holder, 0, len(list))
	for _, e := range list {
		out = append(out, quorum.Holder{Group: group, Node: e.Node, Addr: e.Addr, Epoch: e.Epoch, AcquiredAt: e.AcquiredAt, TTLLeft: -1})
	}
	return out, nil
}

// queueHistory hands a grant to the history writer; it never blocks.
func (b *Backend) queueHistory(group string, e historyEntry) {
	if b.opts.HistoryLen == 0 {
		return
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	if b.history == nil {
		b.history = make(chan historyJob, historyQueueLen)
		b.wg.Add(1)
		go b.historyLoop(b.history)
	}
	q := b.history
	b.mu.Unlock()
	select {
	case q <- historyJob{group, e}:
	default:
		b.log.Warn("etcd: history queue full, grant not recorded", "group", group, "epoch", e.Epoch)
	}
}

func (b *Backend) historyLoop(q <-chan historyJob) {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case j := <-q:
			if err := b.appendHistory(j.group, j.entry); err != nil && b.ctx.Err() == nil {
				b.log.Warn("etcd: history not recorded", "group", j.group, "epoch", j.entry.Epoch, "err", err)
			}
		}
	}
}

// appendHistory adds e to the group's history with a compare-and-set on the
// history key's mod revision, keeping the last HistoryLen entries by epoch.
func (b *Backend) appendHistory(group string, e historyEntry) error {
	cli, err := b.client()
	if err != nil {
		return err
	}
	key := b.historyKey(group)
	var lastErr error
	for range 5 {
		list, modRev, err := b.readHistory(cli, key)
		if err != nil {
			lastErr = err
			continue
		}
		list = mergeHistory(list, e, b.opts.HistoryLen)
		val, err := json.Marshal(list)
		if err != nil {
			return err
		}
		cmp := clientv3.Compare(clientv3.ModRevision(key), "=", modRev)
		if modRev == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		}
		rctx, cancel := b.reqCtx(b.ctx)
		b.count()
		resp, err := cli.Txn(rctx).If(cmp).Then(clientv3.OpPut(key, string(val))).Commit()
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Succeeded {
			return nil
		}
		lastErr = errors.New("concurrent update")
	}
	return lastErr
}

func (b *Backend) readHistory(cli *clientv3.Client, key string) ([]historyEntry, int64, error) {
	rctx, cancel := b.reqCtx(b.ctx)
	defer cancel()
	b.count()
	resp, err := cli.Get(rctx, key)
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil
	}
	var list []historyEntry
	if err := json.Unmarshal(resp.Kvs[0].Value, &list); err != nil {
		b.log.Warn("etcd: bad history value, starting afresh", "key", key, "err", err)
		list = nil
	}
	return list, resp.Kvs[0].ModRevision, nil
}

// mergeHistory inserts e by epoch (dropping a duplicate) and keeps the last n.
func mergeHistory(list []historyEntry, e historyEntry, n int) []historyEntry {
	for _, old := range list {
		if old.Epoch == e.Epoch {
			return list
		}
	}
	list = append(list, e)
	sort.SliceStable(list, func(i, j int) bool { return list[i].Epoch < list[j].Epoch })
	if len(list) > n {
		list = list[len(list)-n:]
	}
	return list
}

// Watch streams changes of one group ("" = every group). The watch starts at
// the revision read when Watch returns, so no change after that is missed.
// After a lost watch (error, compaction, cancel, leader loss) it re-reads and
// sends EventResync: one per held group, and for a group watch one with an
// empty Holder when the group is free. A watch of every group ends its resync
// with an EventResync whose Group is "" (groups not named are free).
func (b *Backend) Watch(ctx context.Context, group string) (<-chan quorum.Event, error) {
	if group != "" {
		if err := checkGroup(group); err != nil {
			return nil, err
		}
	}
	cli, err := b.client()
	if err != nil {
		return nil, err
	}
	key, opts := b.groupKey(group), []clientv3.OpOption{}
	if group == "" {
		key, opts = b.groupsPrefix(), []clientv3.OpOption{clientv3.WithPrefix()}
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("etcd: %w", quorum.ErrClosed)
	}
	b.wg.Add(1)
	b.mu.Unlock()
	lctx, stop := context.WithCancel(ctx)
	unhook := context.AfterFunc(b.ctx, stop)
	// The first watch starts at the current revision (so the server registers
	// it as synced, with no catch-up delay); wait until it is created so no
	// change after Watch returns is missed.
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(lctx))
	b.count()
	wch := cli.Watch(wctx, key, append(opts, clientv3.WithPrevKV(), clientv3.WithCreatedNotify())...)
	timer := time.NewTimer(b.opts.RequestTimeout)
	defer timer.Stop()
	fail := func(err error) (<-chan quorum.Event, error) {
		wcancel()
		unhook()
		stop()
		b.wg.Done()
		return nil, fmt.Errorf("etcd: watch %q: %w", group, err)
	}
	var rev int64
	select {
	case resp, ok := <-wch:
		switch {
		case !ok:
			return fail(errors.New("watch closed"))
		case resp.Err() != nil:
			return fail(resp.Err())
		case !resp.Created:
			return fail(errors.New("no created notification"))
		}
		rev = resp.Header.Revision + 1
	case <-timer.C:
		return fail(context.DeadlineExceeded)
	case <-lctx.Done():
		return fail(lctx.Err())
	}
	ch := make(chan quorum.Event, 64)
	go func() {
		defer b.wg.Done()
		defer close(ch)
		defer stop()
		defer unhook()
		b.watchLoop(lctx, cli, group, key, opts, rev, wch, wcancel, ch)
	}()
	return ch, nil
}

func (b *Backend) watchLoop(ctx context.Context, cli *clientv3.Client, group, key string, opts []clientv3.OpOption,
	rev int64, wch clientv3.WatchChan, wcancel context.CancelFunc, ch chan<- quorum.Event) {
	send := func(ev quorum.Event) bool {
		select {
		case ch <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	backoff := 50 * time.Millisecond
	for {
		var why error
		for resp := range wch {
			if err := resp.Err(); err != nil {
				why = err
				break
			}
			if resp.Canceled {
				why = errors.New("watch cancelled")
				break
			}
			for _, ev := range resp.Events {
				if !send(b.event(ev)) {
					wcancel()
					return
				}
			}
			if resp.Header.Revision >= rev {
				rev = resp.Header.Revision + 1
			}
			backoff = 50 * time.Millisecond
		}
		wcancel()
		if ctx.Err() != nil {
			return
		}
		if why == nil {
			why = errors.New("watch channel closed")
		}
		b.log.Warn("etcd: watch lost, re-reading", "group", group, "err", why)
		// Re-read until it works, then resume the watch after that read.
		for {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, time.Second)
			evs, r, err := b.resync(ctx, cli, group, key, opts)
			if err != nil {
				b.log.Warn("etcd: resync failed", "group", group, "err", err)
				continue
			}
			for _, ev := range evs {
				if !send(ev) {
					return
				}
			}
			rev = r + 1
			break
		}
		var wctx context.Context
		wctx, wcancel = context.WithCancel(clientv3.WithRequireLeader(ctx))
		b.count()
		wch = cli.Watch(wctx, key, append(opts, clientv3.WithRev(rev), clientv3.WithPrevKV())...)
	}
}

func (b *Backend) resync(ctx context.Context, cli *clientv3.Client, group, key string, opts []clientv3.OpOption) ([]quorum.Event, int64, error) {
	rctx, cancel := b.reqCtx(ctx)
	defer cancel()
	b.count()
	resp, err := cli.Get(rctx, key, opts...)
	if err != nil {
		return nil, 0, err
	}
	now := time.Now()
	var evs []quorum.Event
	for _, kv := range resp.Kvs {
		h := b.holder(kv)
		evs = append(evs, quorum.Event{Type: quorum.EventResync, Group: h.Group, Holder: h, At: now})
	}
	if group != "" && len(evs) == 0 {
		evs = append(evs, quorum.Event{Type: quorum.EventResync, Group: group, Holder: quorum.Holder{Group: group, TTLLeft: -1}, At: now})
	}
	if group == "" {
		evs = append(evs, quorum.Event{Type: quorum.EventResync, At: now})
	}
	return evs, resp.Header.Revision, nil
}

func (b *Backend) event(ev *clientv3.Event) quorum.Event {
	now := time.Now()
	if ev.Type == mvccpb.DELETE {
		e := quorum.Event{Type: quorum.EventDelete, Group: strings.TrimPrefix(string(ev.Kv.Key), b.groupsPrefix()), At: now}
		if ev.PrevKv != nil {
			e.Epoch = uint64(ev.PrevKv.CreateRevision)
		}
		return e
	}
	h := b.holder(ev.Kv)
	return quorum.Event{Type: quorum.EventPut, Group: h.Group, Holder: h, Epoch: h.Epoch, At: now}
}

// marksPrefix holds the outdated marks: <prefix>outdated/<group>/<node>.
func (b *Backend) marksPrefix(group string) string { return b.cfg.Prefix + "outdated/" + group + "/" }

// request starts one request: the client, a context bounded by
// RequestTimeout (cancel it) and the count.
func (b *Backend) request(ctx context.Context) (*clientv3.Client, context.Context, context.CancelFunc, error) {
	cli, err := b.client()
	if err != nil {
		return nil, nil, nil, err
	}
	rctx, cancel := b.reqCtx(ctx)
	b.count()
	return cli, rctx, cancel, nil
}

// txn runs op in one request, if cmp holds (nil: always).
func (b *Backend) txn(ctx context.Context, cmp *clientv3.Cmp, op clientv3.Op) (*clientv3.TxnResponse, error) {
	cli, rctx, cancel, err := b.request(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	t := cli.Txn(rctx)
	if cmp != nil {
		t = t.If(*cmp)
	}
	return t.Then(op).Commit()
}

// MarkOutdated writes m under <prefix>outdated/<group>/<node> in one
// transaction with the check that the group's key was created at m.Epoch.
// The mark has no lease: it outlives the recorder's session.
func (b *Backend) MarkOutdated(ctx context.Context, m quorum.Mark) error {
	if err := quorum.CheckMark(m); err != nil {
		return err
	}
	val, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("etcd: encode mark: %w", err)
	}
	cmp := clientv3.Compare(clientv3.CreateRevision(b.groupKey(m.Group)), "=", int64(m.Epoch))
	resp, err := b.txn(ctx, &cmp, clientv3.OpPut(b.marksPrefix(m.Group)+m.Node, string(val)))
	if err != nil {
		return fmt.Errorf("etcd: mark %s outdated in %q: %w", m.Node, m.Group, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcd: mark %s outdated in %q at epoch %d: %w", m.Node, m.Group, m.Epoch, quorum.ErrNotOwner)
	}
	return nil
}

// Outdated reads the group's marks, sorted by node. A value that does not
// parse is an error (a mark that cannot be read must not count as none).
func (b *Backend) Outdated(ctx context.Context, group string) ([]quorum.Mark, error) {
	resp, err := b.get(ctx, "outdated marks of", group, b.marksPrefix(group), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	out := make([]quorum.Mark, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var m quorum.Mark
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, fmt.Errorf("etcd: outdated mark %s: bad value: %w", kv.Key, err)
		}
		m.Group, m.Node = group, strings.TrimPrefix(string(kv.Key), b.marksPrefix(group))
		out = append(out, m)
	}
	return out, nil
}

// ClearOutdated deletes node's mark in group.
func (b *Backend) ClearOutdated(ctx context.Context, group, node string) error {
	if err := quorum.CheckMarkNames(group, node); err != nil {
		return err
	}
	if _, err := b.txn(ctx, nil, clientv3.OpDelete(b.marksPrefix(group)+node)); err != nil {
		return fmt.Errorf("etcd: clear the outdated mark of %s in %q: %w", node, group, err)
	}
	return nil
}
