package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/storage/drbd"
)

const drbdUsage = `usage: leasehold drbd SUBCOMMAND -c FILE [flags]

DRBD's handlers (drbd.conf: fencing resource-and-stonith; handlers { fence-peer
"/usr/sbin/leasehold drbd fence-peer -c FILE"; after-resync-target
"/usr/sbin/leasehold drbd unfence-peer -c FILE"; }), with the resource and
peer from DRBD_RESOURCE and DRBD_PEER:

  fence-peer         answer DRBD from the group's lease: 4 this node holds it
                     and has marked the peer outdated at the quorum (or it
                     already was), 3 the peer's disk is Inconsistent, 6 this
                     node does not hold the lease or cannot prove it (DRBD
                     outdates this node's disk), 1 the mark could not be
                     recorded or the handler could not ask
  unfence-peer       after a resync: clear this node's and the peer's
                     outdated marks once DRBD says Connected with both disks
                     UpToDate (0 cleared or none, 1 not in sync or failed)
  split-brain        (handlers { split-brain "... drbd split-brain -c FILE"; })
                     record that DRBD detected a split brain on this node
                     (a marker in state_dir that the daemon reports and,
                     with after_split_brain: lease, resolves)

For the operator:
  status             every DRBD resource of the file: roles, connection,
                     disk states, the group's lease (holder, epoch), the
                     outdated marks and any split brain
  marks [GROUP]      the outdated marks at the quorum (every DRBD group of
                     the file without GROUP)
  unfence --force GROUP NODE
                     clear NODE's mark without a resync: NODE may then
                     promote data older than its peer's (the writes the
                     peer made while NODE was cut off are lost)

flags:
  -c FILE            the node's leasehold config (node name, quorum, drbd sections)
  --resource RES     the DRBD resource (default $DRBD_RESOURCE)
  --peer NODE        the peer's leasehold node name (default $DRBD_PEER: the
                     peer's "on" host name in drbd.conf)
  --proc FILE        DRBD's state (default /proc/drbd)
  --timeout D        bound on the whole call (default 10s)
`

func cmdDRBD(args []string, stdout, stderr io.Writer) int {
	return cmdDRBDCtx(context.Background(), args, os.Getenv, stdout, stderr)
}

// drbdCall is one `leasehold drbd` invocation, its configuration loaded.
type drbdCall struct {
	plan   *daemon.Plan
	q      quorum.Backend
	stderr io.Writer
	log    *slog.Logger
}

func cmdDRBDCtx(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if rc, done := needSubcommand(args, drbdUsage, stdout, stderr); done {
		return rc
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("drbd "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), drbdUsage) }
	file := fs.String("c", "", "leasehold config file")
	res := fs.String("resource", getenv("DRBD_RESOURCE"), "DRBD resource")
	peer := fs.String("peer", getenv("DRBD_PEER"), "the peer's leasehold node name")
	proc := fs.String("proc", "", "DRBD's state file (/proc/drbd)")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the whole call")
	force := fs.Bool("force", false, "unfence: clear a mark without a resync")
	pos, rc, ok := parseFlags(fs, rest, stdout, stderr)
	if !ok {
		return rc
	}
	// A handler failing before it could decide: DRBD counts the helper
	// as broken (exit 1): the peer is not outdated, a promotion fails.
	const broken = drbd.FenceHandlerFailed
	if *file == "" {
		fmt.Fprintf(stderr, "leasehold drbd %s: name the node's config with -c FILE\n", sub)
		return 2
	}
	switch sub {
	case "fence-peer", "unfence-peer", "marks", "unfence", "split-brain", "status":
	default:
		fmt.Fprintf(stderr, "leasehold drbd: unknown subcommand %q\n\n%s", sub, drbdUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, code := openDRBDCall(*file, sub, stderr)
	if c == nil {
		return code
	}
	defer c.q.Close()
	self := c.plan.Config.Node.Name
	handler := func() (drbd.Handler, bool) {
		if *res == "" {
			c.fail("no resource: DRBD passes DRBD_RESOURCE (or use --resource)")
			return drbd.Handler{}, false
		}
		group, dc, err := c.plan.DRBDGroup(*res)
		if err != nil {
			c.fail(fmt.Sprintf("%s: %v", *file, err))
			return drbd.Handler{}, false
		}
		if *proc != "" {
			dc.Paths = drbd.DefaultPaths()
			dc.Paths.ProcDRBD = *proc
		}
		r, err := drbd.New(dc, drbd.OS{}, nil)
		if err != nil {
			c.fail(fmt.Sprintf("%s: resource %s: %v", *file, *res, err))
			return drbd.Handler{}, false
		}
		return drbd.Handler{Q: c.q, Group: group, Self: self, Peer: *peer, State: r.State}, true
	}
	switch sub {
	case "fence-peer":
		h, ok := handler()
		if !ok {
			return broken
		}
		if h.Peer == "" {
			c.fail("no peer: DRBD passes DRBD_PEER (or use --peer)")
			return broken
		}
		d := h.FencePeer(ctx)
		c.report(fmt.Sprintf("fence-peer %s (group %s, peer %s): exit %d: %s", *res, h.Group, h.Peer, d.Code, d.Reason))
		return d.Code
	case "unfence-peer":
		h, ok := handler()
		if !ok {
			return 1
		}
		ms, err := h.Unfence(ctx)
		switch {
		case err != nil:
			c.fail(fmt.Sprintf("unfence-peer %s (group %s): %v", *res, h.Group, err))
			return 1
		case len(ms) == 0:
			c.report(fmt.Sprintf("unfence-peer %s: no outdated mark of %s or %s in %s", *res, self, h.Peer, h.Group))
		}
		for _, m := range ms {
			c.report(fmt.Sprintf("unfence-peer %s: cleared %s's outdated mark in %s (epoch %d, by %s): connected and in sync", *res, m.Node, h.Group, m.Epoch, m.By))
		}
		return 0
	case "split-brain":
		if *res == "" {
			c.fail("split-brain: no resource: DRBD passes DRBD_RESOURCE (or use --resource)")
			return 1
		}
		marker := drbd.SplitBrainMarker(c.plan.Config.StateDir, *res)
		text := fmt.Sprintf("%s resource %s minor %s peer %s\n", time.Now().UTC().Format(time.RFC3339Nano), *res, getenv("DRBD_MINOR"), *peer)
		if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
			c.fail("split-brain: " + err.Error())
			return 1
		}
		if err := os.WriteFile(marker, []byte(text), 0o644); err != nil {
			c.fail("split-brain: " + err.Error())
			return 1
		}
		c.report(fmt.Sprintf("split-brain %s: DRBD detected a split brain (peer %s); recorded in %s", *res, *peer, marker))
		return 0
	case "status":
		return drbdStatus(ctx, c, *proc, stdout)
	case "marks":
		groups := pos
		if len(groups) == 0 {
			for _, name := range slices.Sorted(maps.Keys(c.plan.DRBD)) {
				if g, _, err := c.plan.DRBDGroup(c.plan.DRBD[name].Resource); err == nil && !slices.Contains(groups, g) {
					groups = append(groups, g)
				}
			}
		}
		var all []quorum.Mark
		for _, g := range groups {
			ms, err := c.q.Outdated(ctx, g)
			if err != nil {
				c.fail(err.Error())
				return 1
			}
			all = append(all, ms...)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tNODE\tEPOCH\tBY\tAT")
		for _, m := range all {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", m.Group, m.Node, m.Epoch, m.By, m.At.Local().Format("2006-01-02 15:04:05.000"))
		}
		tw.Flush()
		return 0
	case "unfence":
		if len(pos) != 2 {
			fmt.Fprintln(stderr, "leasehold drbd unfence: want GROUP NODE")
			return 2
		}
		if !*force {
			fmt.Fprintf(stderr, "leasehold drbd unfence: %s's mark says its disk is older than its peer's; clearing it without a resync lets it promote that data "+
				"and loses the writes the peer made meanwhile. A resync clears it by itself (unfence-peer). To clear it anyway: --force\n", pos[1])
			return 2
		}
		ms, err := c.q.Outdated(ctx, pos[0])
		if err != nil {
			c.fail(err.Error())
			return 1
		}
		if err := c.q.ClearOutdated(ctx, pos[0], pos[1]); err != nil {
			c.fail(err.Error())
			return 1
		}
		for _, m := range ms {
			if m.Node == pos[1] {
				c.report(fmt.Sprintf("unfence --force: cleared %s's outdated mark in %s (epoch %d, by %s, at %s)", m.Node, m.Group, m.Epoch, m.By, m.At.Format(time.RFC3339)))
				return 0
			}
		}
		fmt.Fprintf(stdout, "%s has no outdated mark in %s\n", pos[1], pos[0])
		return 0
	}
	return 2
}

// drbdStatus prints every DRBD resource of the file: what /proc/drbd
// says, the group's lease, the marks and any split brain.
func drbdStatus(ctx context.Context, c *drbdCall, proc string, stdout io.Writer) int {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tRESOURCE\tROLE\tPEER\tCSTATE\tDISK\tPEER DISK\tLEASE\tEPOCH\tOUTDATED MARKS\tSPLIT BRAIN")
	rc := 0
	for _, name := range slices.Sorted(maps.Keys(c.plan.DRBD)) {
		dc := c.plan.DRBD[name]
		group, _, err := c.plan.DRBDGroup(dc.Resource)
		if err != nil {
			c.fail(err.Error())
			rc = 1
			continue
		}
		if proc != "" {
			dc.Paths = drbd.DefaultPaths()
			dc.Paths.ProcDRBD = proc
		}
		role, peer, cs, disk, pdisk := "?", "?", "?", "?", "?"
		r, err := drbd.New(dc, drbd.OS{}, nil)
		var st drbd.State
		if err == nil {
			st, err = r.State()
		}
		if err == nil || st.Configured() {
			role, peer, cs, disk, pdisk = string(st.Role), string(st.PeerRole), string(st.Conn), string(st.Disk), string(st.PeerDisk)
		} else {
			cs = err.Error()
		}
		lease, epoch, holder := "none", "-", ""
		h, held, herr := c.q.Inspect(ctx, group)
		switch {
		case herr != nil:
			lease, epoch = "unreadable: "+herr.Error(), "?"
			rc = 1
		case held:
			lease, epoch, holder = h.Node, strconv.FormatUint(h.Epoch, 10), h.Node
		}
		marks := "-"
		if ms, err := c.q.Outdated(ctx, group); err != nil {
			marks = "unreadable: " + err.Error()
			rc = 1
		} else if len(ms) > 0 {
			var ns []string
			for _, m := range ms {
				ns = append(ns, fmt.Sprintf("%s (epoch %d, by %s)", m.Node, m.Epoch, m.By))
			}
			marks = strings.Join(ns, ", ")
		}
		sb := "no"
		if b, err := os.ReadFile(drbd.SplitBrainMarker(c.plan.Config.StateDir, dc.Resource)); err == nil {
			at, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
			action, why := drbd.DecideSplitBrain(drbd.SplitBrainInput{State: st, Marked: true, Policy: dc.AfterSplitBrain,
				HolderKnown: herr == nil, Holder: holder, Self: c.plan.Config.Node.Name})
			if action == drbd.SplitBrainNone {
				sb = "handler ran " + at + ", not StandAlone now (resolved)"
			} else {
				sb = fmt.Sprintf("YES (handler ran %s; %s: %s)", at, action, why)
			}
		} else if st.Conn == drbd.StandAlone {
			sb = "StandAlone, no handler record (disconnected by hand?)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", group, dc.Resource, role, peer, cs, disk, pdisk, lease, epoch, marks, sb)
	}
	tw.Flush()
	return rc
}

// openDRBDCall loads the node's config and opens its quorum as a client;
// on failure it returns nil and the exit code (the fence-peer helper's
// "broken" for the handlers).
func openDRBDCall(file, sub string, stderr io.Writer) (*drbdCall, int) {
	c := &drbdCall{stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	p, err := daemon.Load(file)
	if err != nil {
		c.fail(fmt.Sprintf("%s: %v", sub, err))
		return nil, drbd.FenceHandlerFailed
	}
	c.plan = p
	if c.q, err = daemon.OpenQuorum(p, c.log); err != nil {
		c.fail(fmt.Sprintf("%s: quorum: %v", sub, err))
		return nil, drbd.FenceHandlerFailed
	}
	return c, 0
}

// report says what a handler decided, on stderr and in the system log:
// DRBD runs its handlers with no terminal (a kernel usermode helper).
func (c *drbdCall) report(msg string) {
	fmt.Fprintf(c.stderr, "leasehold drbd: %s\n", msg)
	if w, err := syslog.New(syslog.LOG_NOTICE|syslog.LOG_DAEMON, "leasehold-drbd"); err == nil {
		w.Notice(msg)
		w.Close()
	}
}

func (c *drbdCall) fail(msg string) { c.report("error: " + msg) }
