package daemon

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func writePlanFile(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "leasehold.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testdata/bad holds files that must be refused; each names on its first
// line ("# want: KEY") the key its error must name. config check, run and
// reload all refuse them (they share Load); cmd/leasehold's test runs
// check and run on the same files.

var errLine = regexp.MustCompile(`\.yaml:\d+: `)

func TestPlanRefusesBadFilesNamingFileLineKey(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) < 10 {
		t.Fatalf("only %d bad files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			key, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatalf("first line %q: want \"# want: KEY\"", first)
			}
			_, err = Load(f)
			if err == nil {
				t.Fatal("accepted")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), f+":") || !strings.Contains(err.Error(), key) || !errLine.MatchString(err.Error()) {
				t.Fatalf("err = %v\nwant file:line and key %q", err, key)
			}
		})
	}
}

func TestPlanOfAGoodFile(t *testing.T) {
	p, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !p.LeaseMode() || p.Quorum.TTL != 2*time.Second || p.Raft.ID != "lb1" || len(p.RaftClients) != 3 ||
		p.RaftClients[0] != "127.0.0.1:7101" {
		t.Fatalf("plan: lease %v ttl %v raft %q clients %v", p.LeaseMode(), p.Quorum.TTL, p.Raft.ID, p.RaftClients)
	}
	ic, ok := p.Instances["VI_1"]
	if !ok || ic.Machine.VRID != 51 || ic.Machine.Priority != 120 || ic.Machine.AdvertInterval != 100*time.Millisecond {
		t.Fatalf("instance: %+v", ic.Machine)
	}
	if p.Watchdog.Needed {
		t.Fatal("watchdog needed with fencing.watchdog off")
	}
	d, ok := p.DRBD["VI_1"]
	if !ok || d.Resource != "r0" || d.Device != "/dev/drbd0" || d.Mount != "/srv" || d.FSType != "ext4" || d.MountOptions != "noatime" ||
		len(d.Services) != 1 || d.Services[0].Unit != "nginx.service" || p.Config.Instance["VI_1"].DRBD.AfterSplitBrain != "manual" {
		t.Fatalf("drbd: %+v", d)
	}
	if g, dc, err := p.DRBDGroup("r0"); err != nil || g != "VI_1" || dc.Device != "/dev/drbd0" {
		t.Fatalf("DRBDGroup(r0) = %q %+v %v", g, dc, err)
	}
	if _, _, err := p.DRBDGroup("r9"); err == nil || !strings.Contains(err.Error(), "r9") || !strings.Contains(err.Error(), "configured: r0") {
		t.Fatalf("DRBDGroup(r9): %v", err)
	}
}

// A drbd section alone (no hooks) makes the watchdog needed: DRBD Primary
// is a resource the kernel fence cannot withdraw.
func TestPlanDRBDNeedsTheWatchdog(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(good), "status:", "fencing: {watchdog: auto}\nstatus:", 1)
	body = strings.Replace(body, "  ttl: 2s\n", "  ttl: 4s\n", 1)
	p, err := Load(writePlanFile(t, t.TempDir(), body))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Watchdog.Needed || p.Watchdog.Timeout < time.Second {
		t.Fatalf("watchdog %+v", p.Watchdog)
	}
	// good.yaml itself (watchdog off, the default 300 ms demote budget of a
	// 2 s lease): loaded, with warnings naming both keys.
	p, err = Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(p.Warnings, "\n")
	if !strings.Contains(w, "fencing.watchdog: off with vrrp_instance.VI_1.drbd") || !strings.Contains(w, "quorum.demote_budget: 300ms with vrrp_instance.VI_1.drbd") {
		t.Fatalf("warnings:\n%s", w)
	}
}

func TestPlanWatchdogFitsInsideTheLease(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(good), "    virtual_ipaddress:", "    promote: [{path: /bin/true}]\n    virtual_ipaddress:", 1)
	body = strings.Replace(body, "status:", "fencing: {watchdog: auto}\nstatus:", 1)
	body = strings.Replace(body, "  ttl: 2s\n", "  ttl: 4s\n", 1)
	p, err := Load(writePlanFile(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	o := p.Quorum
	if !p.Watchdog.Needed || p.Watchdog.Timeout < time.Second || p.Watchdog.Timeout > o.TTL-o.Drift-o.Margin-o.DemoteBudget {
		t.Fatalf("watchdog %+v with ttl %v", p.Watchdog, o.TTL)
	}
	// auto with a lease too short: a warning naming the key, no error.
	body = strings.Replace(body, "  ttl: 4s\n", "  ttl: 1s\n", 1)
	p, err = Load(writePlanFile(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	if p.Watchdog.Needed || !strings.Contains(strings.Join(p.Warnings, "\n"), "fencing.watchdog") {
		t.Fatalf("watchdog %+v warnings %v", p.Watchdog, p.Warnings)
	}
}

// auth_type HMAC: the key file must not be open to others and must hold at
// least 16 bytes; a good one reaches the instance's configuration. Errors
// name the file, line and key.
func TestPlanHMACKeyFile(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "vrrp.key")
	conf := writePlanFile(t, dir, strings.Replace(string(good), "    virtual_ipaddress: [10.0.0.100/24]",
		"    virtual_ipaddress: [10.0.0.100/24]\n    authentication: {auth_type: HMAC, key_file: "+keyFile+"}", 1))
	for _, c := range []struct {
		key  string
		mode os.FileMode
		want string // "" = accepted
	}{
		{"0123456789abcdef\n", 0o600, ""},
		{"0123456789abcdef", 0o640, ""},
		{"0123456789abcdef", 0o644, "mode 0644"},
		{"0123456789abcdef", 0o602, "mode 0602"},
		{"short\n", 0o600, "key of 5 bytes"},
	} {
		if err := os.WriteFile(keyFile, []byte(c.key), c.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(keyFile, c.mode); err != nil {
			t.Fatal(err)
		}
		p, err := Load(conf)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("mode %04o: %v", c.mode, err)
		case c.want == "" && string(p.Instances["VI_1"].HMACKey) != "0123456789abcdef":
			t.Errorf("mode %04o: key %q", c.mode, p.Instances["VI_1"].HMACKey)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) ||
			!strings.Contains(err.Error(), "vrrp_instance.VI_1.authentication.key_file") || !errLine.MatchString(err.Error())):
			t.Errorf("mode %04o, key %q: err %v, want %q naming file, line and key", c.mode, c.key, err, c.want)
		}
	}
}

// A mysql section: the plan carries the resource's configuration with its
// check, the watchdog is needed (a writable MySQL is a resource the kernel
// fence cannot withdraw), and with the watchdog off the plan warns naming
// the section.
func TestPlanMySQL(t *testing.T) {
	dir := t.TempDir()
	cred := filepath.Join(dir, "mysql.cnf")
	if err := os.WriteFile(cred, []byte("[client]\nuser = root\npassword = secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := string(good)
	base = base[:strings.Index(base, "    drbd:")]
	body := base + "    mysql:\n      socket: /run/mysqld/mysqld.sock\n      credentials_file: " + cred +
		"\n      catchup_timeout: 0.4\n      catchup_policy: promote_anyway\n      peer: 10.0.0.2:3306\n      check: {interval: 0.5, weight: -20, fall: 2, max_lag: 5s}\n"
	p, err := Load(writePlanFile(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := p.MySQL["VI_1"]
	if !ok || m.Socket != "/run/mysqld/mysqld.sock" || m.CatchupTimeout != 400*time.Millisecond || m.CatchupPolicy != "promote_anyway" ||
		m.Peer != "10.0.0.2:3306" || m.Check.Interval != 500*time.Millisecond || m.Check.Weight != -20 || m.Check.Fall != 2 || m.Check.MaxLag != 5*time.Second {
		t.Fatalf("mysql: %+v", m)
	}
	if w := strings.Join(p.Warnings, "\n"); !strings.Contains(w, "fencing.watchdog: off with vrrp_instance.VI_1.mysql") {
		t.Fatalf("warnings:\n%s", w)
	}
	body = strings.Replace(body, "status:", "fencing: {watchdog: auto}\nstatus:", 1)
	body = strings.Replace(body, "  ttl: 2s\n", "  ttl: 4s\n", 1)
	if p, err = Load(writePlanFile(t, dir, body)); err != nil {
		t.Fatal(err)
	}
	if !p.Watchdog.Needed {
		t.Fatalf("watchdog %+v", p.Watchdog)
	}
	// Defaults from the promotion step (ttl 4s: 2s): catch-up half of it,
	// the peer fence a quarter; a catch-up that does not fit is refused.
	body = strings.Replace(body, "      catchup_timeout: 0.4\n", "", 1)
	if p, err = Load(writePlanFile(t, dir, body)); err != nil {
		t.Fatal(err)
	}
	if m := p.MySQL["VI_1"]; m.CatchupTimeout != time.Second || m.PeerTimeout != 500*time.Millisecond {
		t.Fatalf("catch-up %v, peer %v", m.CatchupTimeout, m.PeerTimeout)
	}
	body = strings.Replace(body, "      catchup_policy:", "      catchup_timeout: 10s\n      catchup_policy:", 1)
	_, err = Load(writePlanFile(t, dir, body))
	if err == nil || !strings.Contains(err.Error(), "vrrp_instance.VI_1.mysql.catchup_timeout: catchup_timeout 10s + peer_timeout 500ms do not fit") {
		t.Fatalf("a catch-up longer than the promotion step: %v", err)
	}
}

// An unset fencing.margin grows with the TTL (TTL/10, at least 50 ms);
// one the file sets is kept.
func TestPlanFenceMarginScalesWithTheTTL(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ttl, set string
		want     time.Duration
	}{
		{"2s", "", 200 * time.Millisecond},
		{"3s", "", 300 * time.Millisecond},
		{"400ms", "", 50 * time.Millisecond},
		{"3s", "50ms", 50 * time.Millisecond},
	} {
		body := strings.Replace(string(good), "  ttl: 2s\n", "  ttl: "+tc.ttl+"\n", 1)
		if tc.set != "" {
			body = strings.Replace(body, "status:", "fencing: {margin: "+tc.set+"}\nstatus:", 1)
		}
		p, err := Load(writePlanFile(t, t.TempDir(), body))
		if err != nil {
			t.Fatalf("ttl %s margin %q: %v", tc.ttl, tc.set, err)
		}
		if got := p.Config.Fencing.Margin.D(); got != tc.want {
			t.Errorf("ttl %s margin %q: fencing.margin %v, want %v", tc.ttl, tc.set, got, tc.want)
		}
	}
}
