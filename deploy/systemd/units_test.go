// Package systemd holds leasehold's systemd units; this test checks them.
package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/deploy/examples/examplestest"
	"github.com/leasehold/leasehold/test/lhtest"
)

// unit is a parsed unit file: section → key → values (in order).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not KEY=VALUE inside a section: %q", path, n, l)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestDaemonUnit(t *testing.T) {
	u := parseUnit(t, "leasehold.service")
	want := map[string]string{
		"Type":             "notify",
		"WatchdogSec":      "5s",
		"KillSignal":       "SIGTERM",
		"Restart":          "on-failure",
		"ExecStart":        "/usr/sbin/leasehold run -c /etc/leasehold/leasehold.yaml",
		"ExecReload":       "/bin/kill -HUP $MAINPID",
		"ProtectSystem":    "strict",
		"ReadWritePaths":   "/run/leasehold /var/lib/leasehold",
		"RuntimeDirectory": "leasehold",
		"StateDirectory":   "leasehold",
		"NoNewPrivileges":  "yes",
	}
	for k, v := range want {
		if got := u.get("Service", k); got != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	// The stop budget is 10 s: systemd must not SIGKILL inside it.
	stop, err := time.ParseDuration(u.get("Service", "TimeoutStopSec"))
	if err != nil || stop <= 10*time.Second {
		t.Errorf("TimeoutStopSec=%q: want a duration above the 10 s stop budget", u.get("Service", "TimeoutStopSec"))
	}
	for _, key := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		caps := strings.Fields(u.get("Service", key))
		for _, c := range []string{"CAP_NET_ADMIN", "CAP_NET_RAW"} {
			if !contains(caps, c) {
				t.Errorf("%s=%v lacks %s", key, caps, c)
			}
		}
	}
	fams := strings.Fields(u.get("Service", "RestrictAddressFamilies"))
	for _, f := range []string{"AF_NETLINK", "AF_PACKET", "AF_INET", "AF_INET6", "AF_UNIX"} {
		if !contains(fams, f) {
			t.Errorf("RestrictAddressFamilies=%v lacks %s (netlink, raw VRRP/ARP, status socket)", fams, f)
		}
	}
	if u.get("Service", "PrivateDevices") == "yes" {
		t.Error("PrivateDevices=yes hides /dev/watchdog")
	}
	if u.get("Install", "WantedBy") != "multi-user.target" {
		t.Error("[Install] WantedBy=multi-user.target missing")
	}
}

func TestWitnessUnit(t *testing.T) {
	u := parseUnit(t, "leasehold-witness.service")
	if got := u.get("Service", "ExecStart"); got != "/usr/sbin/leasehold witness -c /etc/leasehold/witness.yaml" {
		t.Errorf("ExecStart=%q", got)
	}
	if u.get("Service", "Restart") != "on-failure" || u.get("Service", "ProtectSystem") != "strict" {
		t.Error("witness: want Restart=on-failure and ProtectSystem=strict")
	}
	if caps := u.get("Service", "CapabilityBoundingSet"); caps != "" {
		t.Errorf("witness CapabilityBoundingSet=%q: it needs no capabilities", caps)
	}
}

// systemd's own parser: unknown keys, bad values and missing executables
// are reported. ExecStart's binary is swapped for a stub so the check does
// not depend on an installed leasehold.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("LEASEHOLD_STRICT") == "1" {
			t.Fatal("systemd-analyze not installed (LEASEHOLD_STRICT=1)")
		}
		t.Skip("systemd-analyze not installed: the unit files were only checked by TestDaemonUnit/TestWitnessUnit")
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "leasehold")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, name := range []string{"leasehold.service", "leasehold-witness.service"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/sbin/leasehold", stub)), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	out, err := exec.Command(sa, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Each unit's ExecStartPre, run as systemd would run it, accepts the file
// the package installs for it: the annotated leasehold.yaml and every node
// example for leasehold.service, every witness example for
// leasehold-witness.service. (A witness file fails `config check`: the
// witness unit must check it with `witness --check`.) Site programs such
// as /opt/check_nginx.sh are replaced by a stub (examplestest).
func TestExecStartPreAcceptsExamples(t *testing.T) {
	bin, err := lhtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	nodes, _ := filepath.Glob("../examples/*.yaml")
	witnesses, _ := filepath.Glob("../examples/witness/*.yaml")
	if len(nodes) == 0 || len(witnesses) == 0 {
		t.Fatalf("examples: %d node files, %d witness files", len(nodes), len(witnesses))
	}
	cases := []struct {
		unit, installed string
		files           []string
	}{
		{"leasehold.service", "/etc/leasehold/leasehold.yaml", append([]string{"../leasehold.yaml"}, nodes...)},
		{"leasehold-witness.service", "/etc/leasehold/witness.yaml", witnesses},
	}
	for _, tc := range cases {
		pre := strings.Fields(parseUnit(t, tc.unit).get("Service", "ExecStartPre"))
		if len(pre) < 2 || !slices.Contains(pre, tc.installed) {
			t.Errorf("%s: ExecStartPre=%q does not check %s", tc.unit, strings.Join(pre, " "), tc.installed)
			continue
		}
		for _, f := range tc.files {
			args := slices.Clone(pre[1:])
			args[slices.Index(args, tc.installed)] = examplestest.WithStubPrograms(t, f)
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				t.Errorf("%s: ExecStartPre on %s: leasehold %s: %v\n%s", tc.unit, f, strings.Join(args, " "), err, out)
			}
		}
	}
}
