package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/quorum"
)

const leaseUsage = `usage: leasehold lease SUBCOMMAND [flags]

  ls                 every held group: holder, epoch, TTL left, acquired at
  inspect GROUP      one group
  watch [GROUP]      live events (all groups without GROUP) until interrupted
  history GROUP      the last grants of a group, oldest first

flags (before or after the subcommand):
  -c FILE            read the quorum from a leasehold config file (a node's or a witness's)
  --etcd URL,...     or: etcd endpoints (--prefix, --cert, --key, --cacert, --user, --password)
  --raft ADDR,...    or: raft client addresses (--cert, --key, --cacert for mutual TLS)
  --lab NAME         or: the quorum of a lab (leasehold lab up; root)
  --timeout D        how long to wait for the quorum (default 2s; not for watch)
  --json             JSON output
`

func cmdLease(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return cmdLeaseCtx(ctx, args, stdout, stderr)
}

func cmdLeaseCtx(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if rc, done := needSubcommand(args, leaseUsage, stdout, stderr); done {
		return rc
	}
	if !slices.Contains([]string{"ls", "inspect", "watch", "history"}, args[0]) {
		fmt.Fprintf(stderr, "leasehold lease: unknown subcommand %q\n\n%s", args[0], leaseUsage)
		return exitUsage
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("lease "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), leaseUsage) }
	file := fs.String("c", "", "leasehold config file")
	etcdEP := fs.String("etcd", "", "etcd endpoints, comma separated")
	prefix := fs.String("prefix", "/leasehold/", "etcd key prefix")
	raftAddrs := fs.String("raft", "", "raft client addresses, comma separated")
	cert := fs.String("cert", "", "client certificate")
	key := fs.String("key", "", "client key")
	ca := fs.String("cacert", "", "CA certificate")
	user := fs.String("user", "", "etcd username")
	pass := fs.String("password", "", "etcd password")
	asJSON := fs.Bool("json", false, "JSON output")
	timeout := fs.Duration("timeout", 2*time.Second, "request timeout (not for watch)")
	labName := fs.String("lab", "", "a lab's quorum")
	labDir := fs.String("dir", labctl.DefaultDir, "--lab: parent directory of labs")
	members := fs.Bool("members", false, "ls: also the member keys (nodes registered per VRRP instance)")
	// Flags may come before or after the positional GROUP.
	pos, rc, ok := parseFlags(fs, rest, stdout, stderr)
	if !ok {
		return rc
	}
	switch {
	case sub == "ls" && len(pos) > 0, sub == "watch" && len(pos) > 1, (sub == "inspect" || sub == "history") && (len(pos) != 1 || pos[0] == ""):
		fmt.Fprintf(stderr, "leasehold lease %s: want %s, have %q\n\n%s", sub,
			map[string]string{"ls": "no GROUP", "watch": "at most one GROUP", "inspect": "exactly one GROUP", "history": "exactly one GROUP"}[sub],
			pos, leaseUsage)
		return exitUsage
	case *timeout <= 0:
		fmt.Fprintf(stderr, "leasehold lease: --timeout %v: want a positive duration\n", *timeout)
		return exitUsage
	}
	sources := 0
	for _, s := range []string{*file, *etcdEP, *raftAddrs, *labName} {
		if s != "" {
			sources++
		}
	}
	if sources > 1 {
		fmt.Fprintln(stderr, "leasehold lease: name the quorum once: -c FILE, --etcd URLS, --raft ADDRS or --lab NAME")
		return exitUsage
	}
	if *labName != "" {
		var again []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "lab" && f.Name != "dir" {
				again = append(again, "-"+f.Name+"="+f.Value.String())
			}
		})
		return leaseInLab(ctx, *labDir, *labName, append(append([]string{sub}, pos...), again...), stdout, stderr)
	}
	var cfg *config.Config
	var where string
	switch {
	case *file != "":
		c, err := config.LoadQuorum(*file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		cfg = c
		where = *file
	case *etcdEP != "":
		cfg = &config.Config{Node: config.Node{Name: "cli"}}
		cfg.Quorum.Backend = config.BackendEtcd
		cfg.Quorum.Etcd = config.Etcd{Endpoints: strings.Split(*etcdEP, ","), Prefix: *prefix,
			CertFile: *cert, KeyFile: *key, CAFile: *ca, Username: *user, Password: *pass}
		where = "etcd " + *etcdEP
	case *raftAddrs != "":
		cfg = &config.Config{Node: config.Node{Name: "cli"}}
		cfg.Quorum.Backend = config.BackendRaft
		for i, a := range strings.Split(*raftAddrs, ",") {
			cfg.Quorum.Raft.Peers = append(cfg.Quorum.Raft.Peers, config.RaftPeer{ID: fmt.Sprint(i), Client: a})
		}
		cfg.Quorum.Raft.CertFile, cfg.Quorum.Raft.KeyFile, cfg.Quorum.Raft.CAFile = *cert, *key, *ca
		where = "raft " + *raftAddrs
	default:
		fmt.Fprintln(stderr, "leasehold lease: name the quorum with -c FILE, --etcd URLS, --raft ADDRS or --lab NAME")
		return exitUsage
	}
	fail := func(err error) int {
		if errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintf(stderr, "leasehold lease %s: the quorum (%s) did not answer within %v: is it up and reachable from here? (%v)\n",
				sub, where, *timeout, err)
			return exitFailure
		}
		fmt.Fprintf(stderr, "leasehold lease %s: %s: %v\n", sub, where, err)
		return exitFailure
	}
	cfg.Node.Name = "cli" // the CLI never holds leases; the name only satisfies Options
	// A quorum no address of which accepts a connection fails now, naming
	// each address, instead of after --timeout of retries.
	if err := anyReachable(ctx, quorumAddrs(cfg), min(*timeout, time.Second)); err != nil {
		fmt.Fprintf(stderr, "leasehold lease %s: the quorum (%s) is unreachable: %v\n", sub, where, err)
		return exitFailure
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := daemon.OpenQuorumClient(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "leasehold lease: %v\n", err)
		return 1
	}
	defer b.Close()
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	switch sub {
	case "ls":
		hs, err := b.List(rctx)
		if err != nil {
			return fail(err)
		}
		if !*members {
			hs = slices.DeleteFunc(hs, func(h quorum.Holder) bool { return node.IsMemberKey(h.Group) })
		}
		return printHolders(stdout, hs, *asJSON, false)
	case "inspect":
		g := pos[0]
		h, held, err := b.Inspect(rctx, g)
		if err != nil {
			return fail(err)
		}
		if !held {
			if *asJSON {
				fmt.Fprintf(stdout, "{\"group\":%q,\"held\":false}\n", g)
			} else {
				fmt.Fprintf(stdout, "%s: free (nobody holds it)\n", g)
			}
			return 0
		}
		return printHolders(stdout, []quorum.Holder{h}, *asJSON, false)
	case "history":
		hs, err := b.History(rctx, pos[0])
		if err != nil {
			return fail(err)
		}
		return printHolders(stdout, hs, *asJSON, true)
	default: // watch
		g := ""
		if len(pos) == 1 {
			g = pos[0]
		}
		ch, err := b.Watch(ctx, g)
		if err != nil {
			return fail(err)
		}
		enc := json.NewEncoder(stdout)
		for ev := range ch {
			if *asJSON {
				enc.Encode(map[string]any{"type": ev.Type.String(), "group": ev.Group, "holder": ev.Holder,
					"epoch": ev.Epoch, "at": ev.At})
				continue
			}
			switch ev.Type {
			case quorum.EventDelete:
				fmt.Fprintf(stdout, "%s %-7s %s epoch %d\n", ev.At.Format(time.StampMilli), ev.Type, ev.Group, ev.Epoch)
			default:
				fmt.Fprintf(stdout, "%s %-7s %s holder %s epoch %d\n", ev.At.Format(time.StampMilli), ev.Type, ev.Group,
					holderName(ev.Holder), ev.Holder.Epoch)
			}
		}
		return 0
	}
}

// leaseInLab runs `leasehold lease ARGS -c FILE` inside the lab's client
// namespace (the lab's quorum is reachable only there), FILE being the
// first node's configuration, and returns its exit code.
func leaseInLab(ctx context.Context, dir, name string, args []string, stdout, stderr io.Writer) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "leasehold lease --lab: needs root (the lab's quorum is inside its network namespaces)")
		return exitFailure
	}
	l, rc := openLab(dir, name, stderr)
	if l == nil {
		return rc
	}
	defer l.Close()
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "leasehold lease --lab:", err)
		return exitFailure
	}
	conf := filepath.Join(l.Dir(), l.Nodes()[0], "leasehold.yaml")
	cmd := l.Netlab().Host(netlab.ClientName).Command(ctx, self, append([]string{"lease"}, append(args, "-c", conf)...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	}
	fmt.Fprintf(stderr, "leasehold lease --lab %s: %v\n", l.Name(), err)
	return exitFailure
}

// quorumAddrs are the host:port addresses a lease client of cfg dials.
func quorumAddrs(cfg *config.Config) []string {
	var out []string
	for _, ep := range cfg.Quorum.Etcd.Endpoints {
		if u, err := url.Parse(ep); err == nil && u.Host != "" {
			ep = u.Host
		}
		out = append(out, ep)
	}
	for _, p := range cfg.Quorum.Raft.Peers {
		out = append(out, p.Client)
	}
	return out
}

// anyReachable returns nil as soon as one of addrs accepts a TCP
// connection within d, else every address's error.
func anyReachable(ctx context.Context, addrs []string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		go func() {
			var dl net.Dialer
			c, err := dl.DialContext(ctx, "tcp", a)
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	var all []error
	for range addrs {
		err := <-errs
		if err == nil {
			return nil
		}
		all = append(all, err)
	}
	return errors.Join(all...)
}

func holderName(h quorum.Holder) string {
	switch {
	case h.Unknown:
		return fmt.Sprintf("UNKNOWN(unparseable value %q)", h.Raw)
	case h.Node == "":
		return "-"
	}
	return h.Node
}

// holderJSON is a Holder as `lease --json` prints it: durations as Go
// duration strings ("946ms"), as `leasehold status --json` prints its
// deadline_left; ttl_left is left out when the server does not know it.
type holderJSON struct {
	quorum.Holder
	TTLLeft string `json:"ttl_left,omitempty"`
}

func printHolders(w io.Writer, hs []quorum.Holder, asJSON, history bool) int {
	if asJSON {
		out := make([]holderJSON, 0, len(hs))
		for _, h := range hs {
			j := holderJSON{Holder: h}
			if h.TTLLeft >= 0 {
				j.TTLLeft = h.TTLLeft.Round(time.Millisecond).String()
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return 0
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if history {
		fmt.Fprintln(tw, "GROUP\tEPOCH\tHOLDER\tADDR\tPRIO\tACQUIRED")
	} else {
		fmt.Fprintln(tw, "GROUP\tHOLDER\tADDR\tPRIO\tEPOCH\tTTL LEFT\tACQUIRED")
	}
	for _, h := range hs {
		acq := "-"
		if !h.AcquiredAt.IsZero() {
			acq = h.AcquiredAt.Local().Format("2006-01-02 15:04:05.000")
		}
		if history {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", h.Group, h.Epoch, holderName(h), h.Addr, h.Priority, acq)
			continue
		}
		ttl := "?"
		if h.TTLLeft >= 0 {
			ttl = h.TTLLeft.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", h.Group, holderName(h), h.Addr, h.Priority, h.Epoch, ttl, acq)
	}
	tw.Flush()
	return 0
}
