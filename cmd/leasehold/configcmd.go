package main

import (
	"fmt"
	"io"

	"github.com/leasehold/leasehold/daemon"
)

const configUsage = `usage: leasehold config check FILE
       leasehold config import-keepalived [-o OUT] [--quorum none|etcd|raft] KEEPALIVED.CONF
`

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if rc, done := needSubcommand(args, configUsage, stdout, stderr); done {
		return rc
	}
	switch {
	case args[0] == "import-keepalived":
		return cmdConfigImport(args[1:], stdout, stderr)
	case args[0] != "check":
		fmt.Fprintf(stderr, "leasehold config: unknown subcommand %q\n%s", args[0], configUsage)
		return exitUsage
	}
	fs := newFlagSet("config check", "FILE",
		"validates FILE as `leasehold run` and a reload would (a raft witness's file: leasehold witness --check -c FILE)\n")
	pos, rc, ok := parseFlags(fs, args[1:], stdout, stderr)
	if !ok {
		return rc
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want exactly one FILE, have %d", len(pos))
	}
	file := pos[0]
	// The same plan `run` and a reload build: a file check accepts, run
	// accepts.
	plan, err := daemon.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if w, werr := daemon.LoadQuorum(file, true); werr == nil && len(w.Config.Instance) == 0 {
			fmt.Fprintf(stderr, "%s looks like a raft witness's file: check it with `leasehold witness --check -c %s`\n", file, file)
		}
		return exitFailure
	}
	c := plan.Config
	for _, w := range plan.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: ok: node %s, quorum %s, %d instance(s)\n", file, c.Node.Name, c.Quorum.Backend, len(c.Instance))
	for _, n := range c.Names() {
		in := c.Instance[n]
		mode := "multicast"
		if len(in.Peers) > 0 {
			mode = fmt.Sprintf("unicast to %v", in.Peers)
		}
		fmt.Fprintf(stdout, "  %s: %s vrid %d prio %d VRRPv%d every %v, %s, %d VIP(s)\n",
			n, in.Interface, in.VirtualRouterID, in.Priority, in.Version, in.AdvertInt.D(), mode, len(in.VIPs))
	}
	for _, s := range c.LVS.Services {
		checks := 0
		for _, r := range s.Reals {
			checks += len(r.Checks)
		}
		fmt.Fprintf(stdout, "  virtual_server %s (lvs_mode %s, follows %q): %s %s, %d kernel service(s), %d real server(s), %d check(s)\n",
			s.Name, c.LVS.Mode, s.Follow, s.Scheduler, s.Forward, len(s.Keys), len(s.Reals), checks)
	}
	if sc := c.LVS.Sync; sc != nil {
		fmt.Fprintf(stdout, "  lvs_sync_daemon on %s, syncid %d: master while owning %q, backup otherwise\n", sc.Interface, sc.SyncID, sc.Group)
	}
	return 0
}
