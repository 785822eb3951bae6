// Command leasehold keeps a virtual IP on exactly one machine.
//
//	leasehold version
//	leasehold run -c FILE            run the daemon
//	leasehold config check FILE      validate a configuration file
//	leasehold vrrp dump --iface X    print VRRP adverts seen on an interface
//	leasehold status                 print the daemon's state
//	leasehold lease ls|inspect|watch|history   inspect leases at the quorum
//	leasehold drbd fence-peer|unfence-peer|marks|unfence   DRBD handlers, outdated marks
//	leasehold witness -c FILE        run a raft witness (a voter with no VIPs); --check: check its file
//	leasehold lab up|status|down     a throwaway lab of network namespaces
//	leasehold drill SCENARIO         fault drills with a verdict
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = ""

type command struct {
	name, args, help string
	run              func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"version", "", "print the version", cmdVersion},
		{"run", "-c FILE", "run the daemon", cmdRun},
		{"config", "check FILE | import-keepalived F", "validate a config, or convert a keepalived.conf", cmdConfig},
		{"vrrp", "dump --iface IFACE", "print VRRP adverts seen on an interface, with drop reasons", cmdVRRP},
		{"status", "[--socket PATH] [--json]", "print the running daemon's state", cmdStatus},
		{"lease", "ls|inspect|watch|history", "inspect leases at the quorum (etcd or raft)", cmdLease},
		{"drbd", "SUBCOMMAND -c FILE", "DRBD's fence-peer handlers backed by the lease; the quorum's outdated marks", cmdDRBD},
		{"witness", "-c FILE [--check]", "run (or check the file of) a raft witness: a voter that holds no VIPs", cmdWitness},
		{"lab", "up|status|down", "a throwaway lab of network namespaces on this machine", cmdLab},
		{"drill", "SCENARIO [--lab NAME]", "fault drills with a verdict (lab, or --live on a node)", cmdDrill},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "leasehold: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: leasehold COMMAND [ARGS]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %-28s %s\n", c.name, c.args, c.help)
	}
}

func cmdVersion(_ []string, stdout, _ io.Writer) int {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(stdout, "leasehold %s\n", v)
	return 0
}

// parseInterspersed parses args with fs, flags before or after the
// positional arguments, and returns those; ok is false on a flag error
// (fs has reported it).
func parseInterspersed(fs *flag.FlagSet, args []string) (pos []string, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		if fs.NArg() == 0 {
			return pos, true
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
}
