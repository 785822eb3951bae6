package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/quorum"
)

const leaseUsage = `usage: leasehold lease SUBCOMMAND [flags]

  ls                 every held group: holder, epoch, TTL left, acquired at
  inspect GROUP      one group
  watch [GROUP]      live events (all groups without GROUP) until interrupted
  history GROUP      the last grants of a group, oldest first

flags (before or after the subcommand):
  -c FILE            read the quorum from a leasehold config file
  --etcd URL,...     or: etcd endpoints (--prefix, --cert, --key, --cacert, --user, --password)
  --raft ADDR,...    or: raft client addresses (--cert, --key, --cacert for mutual TLS)
  --json             JSON output
`

func cmdLease(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return cmdLeaseCtx(ctx, args, stdout, stderr)
}

func cmdLeaseCtx(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, leaseUsage)
		return 2
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("lease "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, leaseUsage) }
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
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout (not for watch)")
	members := fs.Bool("members", false, "ls: also the member keys (nodes registered per VRRP instance)")
	// Flags may come before or after the positional GROUP.
	pos, ok := parseInterspersed(fs, rest)
	if !ok {
		return 2
	}
	var cfg *config.Config
	switch {
	case *file != "":
		c, err := config.LoadQuorum(*file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		cfg = c
	case *etcdEP != "":
		cfg = &config.Config{Node: config.Node{Name: "cli"}}
		cfg.Quorum.Backend = config.BackendEtcd
		cfg.Quorum.Etcd = config.Etcd{Endpoints: strings.Split(*etcdEP, ","), Prefix: *prefix,
			CertFile: *cert, KeyFile: *key, CAFile: *ca, Username: *user, Password: *pass}
	case *raftAddrs != "":
		cfg = &config.Config{Node: config.Node{Name: "cli"}}
		cfg.Quorum.Backend = config.BackendRaft
		for i, a := range strings.Split(*raftAddrs, ",") {
			cfg.Quorum.Raft.Peers = append(cfg.Quorum.Raft.Peers, config.RaftPeer{ID: fmt.Sprint(i), Client: a})
		}
		cfg.Quorum.Raft.CertFile, cfg.Quorum.Raft.KeyFile, cfg.Quorum.Raft.CAFile = *cert, *key, *ca
	default:
		fmt.Fprintln(stderr, "leasehold lease: name the quorum with -c FILE, --etcd URLS or --raft ADDRS")
		return 2
	}
	cfg.Node.Name = "cli" // the CLI never holds leases; the name only satisfies Options
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := daemon.OpenQuorumClient(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "leasehold lease: %v\n", err)
		return 1
	}
	defer b.Close()
	needGroup := func() (string, bool) {
		if len(pos) != 1 || pos[0] == "" {
			fmt.Fprintf(stderr, "leasehold lease %s: want exactly one GROUP\n", sub)
			return "", false
		}
		return pos[0], true
	}
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	switch sub {
	case "ls":
		hs, err := b.List(rctx)
		if err != nil {
			return fail(stderr, err)
		}
		if !*members {
			hs = slices.DeleteFunc(hs, func(h quorum.Holder) bool { return node.IsMemberKey(h.Group) })
		}
		return printHolders(stdout, hs, *asJSON, false)
	case "inspect":
		g, ok := needGroup()
		if !ok {
			return 2
		}
		h, held, err := b.Inspect(rctx, g)
		if err != nil {
			return fail(stderr, err)
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
		g, ok := needGroup()
		if !ok {
			return 2
		}
		hs, err := b.History(rctx, g)
		if err != nil {
			return fail(stderr, err)
		}
		return printHolders(stdout, hs, *asJSON, true)
	case "watch":
		g := ""
		if len(pos) > 1 {
			fmt.Fprintln(stderr, "leasehold lease watch: at most one GROUP")
			return 2
		}
		if len(pos) == 1 {
			g = pos[0]
		}
		ch, err := b.Watch(ctx, g)
		if err != nil {
			return fail(stderr, err)
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
	fmt.Fprintf(stderr, "leasehold lease: unknown subcommand %q\n\n%s", sub, leaseUsage)
	return 2
}

func fail(stderr io.Writer, err error) int {
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (is the quorum reachable?)", err)
	}
	fmt.Fprintf(stderr, "leasehold lease: %v\n", err)
	return 1
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

func printHolders(w io.Writer, hs []quorum.Holder, asJSON, history bool) int {
	if asJSON {
		if hs == nil {
			hs = []quorum.Holder{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(hs)
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
