package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/leasehold/leasehold/lab/labctl"
)

const labUsage = `usage: leasehold lab SUBCOMMAND [flags]

  up [--nodes N] [--quorum raft|etcd] [--groups G] [--auth hmac] [--mysql] [--name NAME]
                     build a throwaway lab of network namespaces on this machine
                     (a bridge, N nodes running leasehold, a quorum host, a client);
                     --mysql: each of 2 nodes runs MariaDB (a dual-master pair),
                     group 1 has a mysql section
  status [--lab NAME] [--json]
                     the lab's nodes: daemon, role and epoch per group
  down [--lab NAME | --all]
                     remove everything the lab created (also after a crash)

Labs live under ` + labctl.DefaultDir + `/NAME; with one lab up, --lab may be omitted.
Needs root.
`

func cmdLab(args []string, stdout, stderr io.Writer) int {
	if rc, done := needSubcommand(args, labUsage, stdout, stderr); done {
		return rc
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sub, rest := args[0], args[1:]
	switch sub {
	case "up":
		return labUp(ctx, rest, stdout, stderr)
	case "status":
		return labStatus(ctx, rest, stdout, stderr)
	case "down":
		return labDown(rest, stdout, stderr)
	case "responder": // hidden: the lab's per-node TCP responder
		fs := newFlagSet("lab responder", "--name NAME [--port PORT]", "")
		port := fs.Uint("port", labctl.ProbePort, "TCP port")
		name := fs.String("name", "", "the name to answer with")
		if _, rc, ok := parseFlags(fs, rest, stdout, stderr); !ok {
			return rc
		}
		if *name == "" || *port == 0 || *port > 65535 {
			fmt.Fprintln(stderr, "leasehold lab responder: --name and --port are required")
			return 2
		}
		if err := labctl.Respond(ctx, uint16(*port), *name); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "leasehold lab: unknown subcommand %q\n\n%s", sub, labUsage)
	return exitUsage
}

func labNeedsRoot(stderr io.Writer) bool {
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "leasehold lab: needs root (network namespaces, nftables)")
		return false
	}
	return true
}

func labUp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lab up", "[--nodes N] [--quorum raft|etcd] [--groups G] [--auth hmac] [--mysql [--semi-sync]] [--lab NAME]",
		"builds a throwaway lab of network namespaces on this machine (root)\n")
	var o labctl.Options
	fs.IntVar(&o.Nodes, "nodes", 2, "number of leasehold nodes (1-6)")
	fs.StringVar(&o.Quorum, "quorum", "raft", "raft (witness + voters in the daemons) or etcd (an embedded etcd member)")
	fs.IntVar(&o.Groups, "groups", 1, "VRRP groups per node (VRIDs 1..G, VIPs .100..)")
	fs.StringVar(&o.Name, "lab", "", "lab name (default lab1, lab2, ...)")
	fs.StringVar(&o.Name, "name", "", "the same as --lab")
	fs.DurationVar(&o.TTL, "ttl", time.Second, "lease TTL")
	fs.StringVar(&o.Auth, "auth", "", "hmac: authenticated adverts between the nodes (a shared key in the lab directory)")
	fs.StringVar(&o.Dir, "dir", labctl.DefaultDir, "parent directory of labs")
	fs.BoolVar(&o.MySQL, "mysql", false, "each node runs MariaDB (2 nodes: a dual-master pair with GTID replication); group 1 gets a mysql section")
	fs.BoolVar(&o.SemiSync, "semi-sync", false, "with --mysql: semi-synchronous replication both ways (a commit is acknowledged once the other server has it; asynchronous after 0.5 s without an answer)")
	if pos, rc, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return rc
	} else if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "leasehold lab up:", err)
		return exitFailure
	}
	o.Binary = bin
	// The arguments are checked before anything is built.
	if err := o.Validate(); err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	if !labNeedsRoot(stderr) {
		return exitFailure
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := time.Now()
	l, err := labctl.Up(ctx, o, log)
	if err != nil {
		fmt.Fprintln(stderr, "leasehold lab up:", err)
		return 1
	}
	fmt.Fprintf(stdout, "lab %s up in %v (%s)\n", l.Name(), time.Since(start).Round(time.Millisecond), l.Dir())
	printLab(stdout, l.Describe(ctx), l)
	fmt.Fprintf(stdout, "\nnext: leasehold drill all --lab %s   |   leasehold lab down --lab %s\n", l.Name(), l.Name())
	return 0
}

func openLab(dir, name string, stderr io.Writer) (*labctl.Lab, int) {
	path, err := labctl.Resolve(dir, name)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, 1
	}
	l, err := labctl.Open(path, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintf(stderr, "%v\n(if the lab is half gone, `leasehold lab down --lab %s` removes what is left)\n", err, filepath.Base(path))
		return nil, 1
	}
	return l, 0
}

func labStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lab status", "[--lab NAME] [--json]", "the lab's nodes: daemon, role and epoch per group\n")
	name := fs.String("lab", "", "lab name")
	dir := fs.String("dir", labctl.DefaultDir, "parent directory of labs")
	asJSON := fs.Bool("json", false, "JSON output")
	if pos, rc, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return rc
	} else if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	if *name == "" {
		if labs, _ := labctl.List(*dir); len(labs) > 1 {
			for _, d := range labs {
				if l, err := labctl.Open(d, slog.Default()); err == nil {
					printLab(stdout, l.Describe(ctx), l)
					fmt.Fprintln(stdout)
				} else {
					fmt.Fprintf(stdout, "lab %s: broken: %v\n\n", filepath.Base(d), err)
				}
			}
			return 0
		}
	}
	l, rc := openLab(*dir, *name, stderr)
	if l == nil {
		return rc
	}
	st := l.Describe(ctx)
	if *asJSON {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	printLab(stdout, st, l)
	return 0
}

func printLab(w io.Writer, st labctl.LabStatus, l *labctl.Lab) {
	m := st.Meta
	fmt.Fprintf(w, "lab %s: namespaces %s-*, quorum %s (running: %v), %d group(s), TTL %s, created %s\n",
		m.Name, m.ID, m.Quorum, st.Quorum, m.Groups, m.TTL, m.Created.Local().Format(time.DateTime))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tDAEMON\tROLES (group 1..)\tEPOCH (group 1)\tLOG")
	nodes := make([]string, 0, len(st.Nodes))
	for n := range st.Nodes {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		ns := st.Nodes[n]
		d := "stopped"
		switch {
		case ns.Up:
			d = fmt.Sprintf("pid %d", ns.PID)
		case ns.Running:
			d = fmt.Sprintf("pid %d (not answering)", ns.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", n, l.Netlab().Host(n).IPv4, d, strings.Join(ns.Roles, ","), ns.Epoch, l.LogPath(n))
	}
	tw.Flush()
	var vips []string
	for g := 1; g <= m.Groups && g <= 4; g++ {
		vips = append(vips, l.VIPOf(g).String())
	}
	if m.Groups > 4 {
		vips = append(vips, "...")
	}
	fmt.Fprintf(w, "VIPs %s; client %s; try: ip netns exec %s curl -s %s:%d\n",
		strings.Join(vips, " "), l.Netlab().Host("client").IPv4, l.Netlab().Host("client").NS, l.VIP(), l.ProbePort())
}

func labDown(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lab down", "[--lab NAME | --all]",
		"removes everything the lab created (also after a crash); a lab that is not up is not an error\n")
	name := fs.String("lab", "", "lab name")
	dir := fs.String("dir", labctl.DefaultDir, "parent directory of labs")
	all := fs.Bool("all", false, "remove every lab")
	if pos, rc, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return rc
	} else if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	if *all && *name != "" {
		return usageError(fs, stderr, "--lab and --all exclude each other")
	}
	if !labNeedsRoot(stderr) {
		return exitFailure
	}
	var dirs []string
	if *all {
		var err error
		if dirs, err = labctl.List(*dir); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
	} else {
		d, err := labctl.Resolve(*dir, *name)
		switch {
		case errors.Is(err, labctl.ErrNoLab):
			// Down is idempotent: what is not up is already down.
			fmt.Fprintf(stdout, "no lab to remove (%v)\n", err)
			return exitOK
		case err != nil:
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
		dirs = []string{d}
	}
	if len(dirs) == 0 {
		fmt.Fprintf(stdout, "no lab to remove under %s\n", *dir)
	}
	rc := 0
	for _, d := range dirs {
		if err := labctl.Remove(d); err != nil {
			fmt.Fprintf(stderr, "lab %s: %v\n", filepath.Base(d), err)
			rc = 1
			continue
		}
		fmt.Fprintf(stdout, "lab %s removed\n", filepath.Base(d))
	}
	return rc
}
