package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/test/freeport"
)

// TestCLI: every command and subcommand answers --help with its usage on
// stdout and exit 0; usage errors exit 2 before any work (no root, no
// network, no lab needed); run-time failures exit 1 and say what failed.
func TestCLI(t *testing.T) {
	dir := t.TempDir()
	refused := freeport.Addr(t) // nothing listens there
	type row struct {
		args   []string
		code   int
		output string // in stdout (code 0) or stderr
	}
	var rows []row
	for _, c := range commands() {
		rows = append(rows, row{[]string{c.name, "--help"}, 0, "usage: leasehold " + c.name})
	}
	for _, help := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"config", "check", "--help"}, {"config", "import-keepalived", "--help"}, {"vrrp", "dump", "--help"},
		{"lease", "ls", "--help"}, {"lease", "inspect", "-h"}, {"lease", "watch", "--help"}, {"lease", "history", "--help"},
		{"lab", "up", "--help"}, {"lab", "status", "--help"}, {"lab", "down", "--help"},
		{"drill", "all", "--help"}, {"drill", "help"}, {"witness", "-h"}, {"run", "-h"}, {"status", "-h"},
	} {
		rows = append(rows, row{help, 0, "usage: leasehold"})
	}
	rows = append(rows,
		// Usage errors: 2, and the usage.
		row{nil, 2, "usage: leasehold"},
		row{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		row{[]string{"version", "extra"}, 2, "usage: leasehold version"},
		row{[]string{"run", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		row{[]string{"run", "/etc/leasehold/leasehold.yaml"}, 2, "goes after -c"},
		row{[]string{"run", "-log-level", "loud"}, 2, "-log-level"},
		row{[]string{"config"}, 2, "usage: leasehold config check FILE"},
		row{[]string{"config", "lint", "f"}, 2, `unknown subcommand "lint"`},
		row{[]string{"config", "check"}, 2, "want exactly one FILE"},
		row{[]string{"config", "check", "a", "b"}, 2, "want exactly one FILE"},
		row{[]string{"config", "import-keepalived"}, 2, "usage: leasehold config import-keepalived"},
		row{[]string{"status", "--bogus"}, 2, "flag provided but not defined"},
		row{[]string{"status", "extra"}, 2, `unexpected argument "extra"`},
		row{[]string{"witness", "extra"}, 2, `unexpected argument "extra"`},
		row{[]string{"vrrp"}, 2, "usage: leasehold vrrp dump"},
		row{[]string{"vrrp", "dump"}, 2, "--iface is required"},
		row{[]string{"lease"}, 2, "usage: leasehold lease"},
		row{[]string{"lease", "grab", "--etcd", "http://" + refused}, 2, `unknown subcommand "grab"`},
		row{[]string{"lease", "ls"}, 2, "name the quorum"},
		row{[]string{"lease", "ls", "VI_1", "--raft", refused}, 2, "want no GROUP"},
		row{[]string{"lease", "inspect", "--raft", refused}, 2, "want exactly one GROUP"},
		row{[]string{"lease", "watch", "a", "b", "--raft", refused}, 2, "at most one GROUP"},
		row{[]string{"lease", "ls", "--raft", refused, "--etcd", "http://" + refused}, 2, "name the quorum once"},
		row{[]string{"lease", "ls", "--raft", refused, "--timeout", "0s"}, 2, "--timeout"},
		row{[]string{"lab"}, 2, "usage: leasehold lab"},
		row{[]string{"lab", "build"}, 2, `unknown subcommand "build"`},
		row{[]string{"lab", "up", "--nodes", "9", "--dir", dir}, 2, "--nodes 9"},
		row{[]string{"lab", "up", "--quorum", "zk", "--dir", dir}, 2, `--quorum "zk"`},
		row{[]string{"lab", "up", "--lab", "Bad Name", "--dir", dir}, 2, "Bad Name"},
		row{[]string{"lab", "up", "extra", "--dir", dir}, 2, `unexpected argument "extra"`},
		row{[]string{"lab", "down", "--all", "--lab", "x", "--dir", dir}, 2, "exclude each other"},
		row{[]string{"drill"}, 2, "want exactly one SCENARIO"},
		row{[]string{"drill", "meteor", "--dir", dir}, 2, `unknown scenario "meteor"`},
		row{[]string{"drill", "kill9", "freeze", "--dir", dir}, 2, "want exactly one SCENARIO"},
		row{[]string{"drill", "all", "--runs", "0", "--dir", dir}, 2, "--runs 0"},
		row{[]string{"drill", "freeze", "--duration", "-1s", "--dir", dir}, 2, "--duration -1s"},
		row{[]string{"drill", "soak", "--dir", dir}, 2, "--duration is required"},
		row{[]string{"drill", "freeze", "--live"}, 2, "--yes-disrupt"},
		// Run-time failures: 1, naming what failed.
		row{[]string{"config", "check", filepath.Join(dir, "missing.yaml")}, 1, "missing.yaml"},
		row{[]string{"witness", "--check", "-c", filepath.Join(dir, "missing.yaml")}, 1, "missing.yaml"},
		row{[]string{"status", "--socket", filepath.Join(dir, "no.sock")}, 1, "no.sock"},
		row{[]string{"lease", "ls", "--raft", refused}, 1, "the quorum (raft " + refused + ") is unreachable"},
		row{[]string{"lease", "history", "VI_1", "--etcd", "http://" + refused}, 1, "is unreachable"},
		row{[]string{"version"}, 0, "leasehold "},
	)
	for _, r := range rows {
		t.Run(strings.Join(r.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			start := time.Now()
			code := dispatch(r.args, &out, &errb)
			where := &errb
			if r.code == 0 {
				where = &out
			}
			if code != r.code || !strings.Contains(where.String(), r.output) {
				t.Errorf("leasehold %q: exit %d, want %d with %q in its output\nstdout: %s\nstderr: %s",
					r.args, code, r.code, r.output, out.String(), errb.String())
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("leasehold %q took %v: errors must be fast", r.args, d)
			}
		})
	}
}

// status --socket takes a plain path (and unix:PATH, as status.listen is
// written).
func TestStatusSocketPath(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(daemon.StatusDoc{Node: "lb1", Quorum: "raft"})
	})}
	go srv.Serve(ln)
	defer srv.Close()
	for _, spec := range []string{sock, "unix:" + sock} {
		var out, errb bytes.Buffer
		if code := dispatch([]string{"status", "--socket", spec}, &out, &errb); code != 0 || !strings.Contains(out.String(), "node lb1, quorum raft") {
			t.Errorf("status --socket %s: exit %d\n%s%s", spec, code, out.String(), errb.String())
		}
	}
	for spec, want := range map[string]string{"/run/x.sock": "unix:/run/x.sock", "x.sock": "unix:x.sock",
		"unix:/a": "unix:/a", "127.0.0.1:9": "127.0.0.1:9", "./a:b": "unix:./a:b"} {
		if got := statusSpec(spec); got != want {
			t.Errorf("statusSpec(%q) = %q, want %q", spec, got, want)
		}
	}
}

// lab down is idempotent: a lab that is not up is already down.
func TestLabDownIdempotent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("lab down needs root (it says so and exits 1)")
	}
	dir := t.TempDir()
	for _, args := range [][]string{{"--lab", "gone"}, {"--lab", "gone"}, {"--all"}, {}} {
		var out, errb bytes.Buffer
		if code := dispatch(append([]string{"lab", "down", "--dir", dir}, args...), &out, &errb); code != 0 || !strings.Contains(out.String(), "no lab to remove") {
			t.Errorf("lab down %q on an empty directory: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
	}
}
