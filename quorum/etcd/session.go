package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/leasehold/leasehold/quorum"
)

// Session is one etcd lease shared by all groups a node acquires. It embeds
// the quorum.Renewer that keeps its local deadline (OnRenew, LastRTT).
type Session struct {
	*quorum.Renewer
	b   *Backend
	cli *clientv3.Client
	id  clientv3.LeaseID

	closeOnce sync.Once
	closeErr  error
}

var _ quorum.Session = (*Session)(nil)

// Open grants the session's lease. The send time of the Grant request is the
// base of the first local deadline.
func (b *Backend) Open(ctx context.Context) (quorum.Session, error) {
	cli, err := b.client()
	if err != nil {
		return nil, err
	}
	secs := int64((b.opts.TTL + time.Second - 1) / time.Second)
	rctx, cancel := b.reqCtx(ctx)
	defer cancel()
	sent := time.Now()
	b.count()
	resp, err := cli.Grant(rctx, secs)
	if err != nil {
		return nil, fmt.Errorf("etcd: grant lease: %w", b.cfg.explain(err))
	}
	s := &Session{b: b, cli: cli, id: resp.ID}
	s.Renewer = quorum.NewRenewer(b.opts, s.renew, sent, time.Duration(resp.TTL)*time.Second)
	if !time.Now().Before(s.Deadline().Add(-b.opts.DemoteBudget)) {
		s.revoke(ctx)
		return nil, fmt.Errorf("etcd: grant lease: %w: acknowledged too late", quorum.ErrLost)
	}
	return s, nil
}

// ID is the etcd lease ID in hex.
func (s *Session) ID() string { return fmt.Sprintf("%016x", int64(s.id)) }

// LeaseID is the etcd lease ID.
func (s *Session) LeaseID() clientv3.LeaseID { return s.id }

func isLeaseNotFound(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound) || errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) ||
		(err != nil && strings.Contains(err.Error(), rpctypes.ErrLeaseNotFound.Error()))
}

// renew sends one KeepAliveOnce. "lease not found" means the lease is gone.
func (s *Session) renew(ctx context.Context) (time.Duration, error) {
	s.b.count()
	resp, err := s.cli.KeepAliveOnce(ctx, s.id)
	if err != nil {
		if isLeaseNotFound(err) {
			return 0, fmt.Errorf("etcd: lease %s: %w: %v", s.ID(), quorum.ErrLost, err)
		}
		return 0, fmt.Errorf("etcd: keepalive lease %s: %w", s.ID(), err)
	}
	return time.Duration(resp.TTL) * time.Second, nil
}

// usable refuses work after loss or past the local deadline.
func (s *Session) usable() error {
	if err := s.Err(); err != nil {
		return err
	}
	if !time.Now().Before(s.Deadline()) {
		return fmt.Errorf("etcd: lease %s: %w: local deadline passed", s.ID(), quorum.ErrLost)
	}
	return nil
}

// Acquire creates the group's key attached to the lease if it is absent.
// The epoch is the revision of that write, which is the key's create revision.
func (s *Session) Acquire(ctx context.Context, group string, priority int) (quorum.Grant, error) {
	if err := checkGroup(group); err != nil {
		return quorum.Grant{}, err
	}
	if err := s.usable(); err != nil {
		return quorum.Grant{}, err
	}
	b := s.b
	val, err := json.Marshal(quorum.Record{
		V: quorum.RecordVersion, Node: b.opts.Node, Addr: b.opts.Addr,
		Priority: priority, AcquiredAt: time.Now().UTC(),
	})
	if err != nil {
		return quorum.Grant{}, err
	}
	key := b.groupKey(group)
	rctx, cancel := b.reqCtx(ctx)
	defer cancel()
	b.count()
	resp, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(s.id))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		if isLeaseNotFound(err) {
			lost := fmt.Errorf("etcd: lease %s: %w: %v", s.ID(), quorum.ErrLost, err)
			s.Lose(lost)
			return quorum.Grant{}, lost
		}
		return quorum.Grant{}, fmt.Errorf("etcd: acquire %q: %w", group, err)
	}
	if !resp.Succeeded {
		who := "unknown"
		if rr := resp.Responses; len(rr) == 1 && rr[0].GetResponseRange() != nil && len(rr[0].GetResponseRange().Kvs) == 1 {
			kv := rr[0].GetResponseRange().Kvs[0]
			if clientv3.LeaseID(kv.Lease) == s.id {
				// Ours already (an acquire whose answer was lost, a release
				// that failed): the grant stands, same epoch.
				return quorum.Grant{Group: group, Epoch: uint64(kv.CreateRevision), AcquiredAt: time.Now()}, nil
			}
			h := b.holder(kv)
			if h.Unknown {
				who = fmt.Sprintf("unknown value %q, epoch %d", h.Raw, h.Epoch)
			} else {
				who = fmt.Sprintf("node %s, epoch %d", h.Node, h.Epoch)
			}
		}
		return quorum.Grant{}, fmt.Errorf("etcd: acquire %q: %w (%s)", group, quorum.ErrHeld, who)
	}
	g := quorum.Grant{Group: group, Epoch: uint64(resp.Header.Revision), AcquiredAt: time.Now()}
	b.queueHistory(group, historyEntry{Epoch: g.Epoch, Node: b.opts.Node, Addr: b.opts.Addr, AcquiredAt: g.AcquiredAt.UTC()})
	return g, nil
}

// Release deletes the group's key if it still carries g's epoch.
func (s *Session) Release(ctx context.Context, g quorum.Grant) error {
	if err := checkGroup(g.Group); err != nil {
		return err
	}
	b := s.b
	key := b.groupKey(g.Group)
	rctx, cancel := b.reqCtx(ctx)
	defer cancel()
	b.count()
	resp, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", int64(g.Epoch))).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("etcd: release %q epoch %d: %w", g.Group, g.Epoch, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcd: release %q epoch %d: %w", g.Group, g.Epoch, quorum.ErrNotOwner)
	}
	return nil
}

// Close ends the session and revokes the lease, deleting all its keys.
func (s *Session) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.Lose(fmt.Errorf("etcd: lease %s: %w", s.ID(), quorum.ErrClosed))
		s.closeErr = s.revoke(ctx)
	})
	return s.closeErr
}

func (s *Session) revoke(ctx context.Context) error {
	rctx, cancel := s.b.reqCtx(ctx)
	defer cancel()
	s.b.count()
	_, err := s.cli.Revoke(rctx, s.id)
	if err != nil && !isLeaseNotFound(err) {
		return fmt.Errorf("etcd: revoke lease %s: %w", s.ID(), err)
	}
	return nil
}
