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
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version and commit are set by the build (make build, make deb:
// -ldflags "-X main.version=... -X main.commit=..."); without them
// `leasehold version` reads what the Go toolchain recorded.
var version, commit = "", ""

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
	switch {
	case len(args) == 0:
		usage(stderr)
		return exitUsage
	case isHelp(args[0]):
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "leasehold: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: leasehold COMMAND [ARGS]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %-28s %s\n", c.name, c.args, c.help)
	}
	fmt.Fprintln(w, "\nleasehold COMMAND --help describes a command. Exit status: 0 ok, 1 failed, 2 usage error.")
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprintln(stdout, "usage: leasehold version\n\nprints the version, the commit it was built from and the Go toolchain")
			return 0
		}
		fmt.Fprintln(stderr, "usage: leasehold version")
		return 2
	}
	v, c, goVersion := buildVersion(version, commit)
	fmt.Fprintf(stdout, "leasehold %s (commit %s, %s)\n", v, c, goVersion)
	return 0
}

// buildVersion is the version and commit the linker set, else what the
// toolchain recorded: the module version (go install ...@vX) and the VCS
// revision (a build inside a git checkout), else "devel" and "unknown".
func buildVersion(v, c string) (string, string, string) {
	goVersion := "go?"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c, goVersion
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}
