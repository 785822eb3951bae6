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
