package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/leasehold/leasehold/config/keepalived"
	"github.com/leasehold/leasehold/node/notify"
	"github.com/leasehold/leasehold/script/scripttest"
)

// keepalived's own samples, imported, checked and then run as `leasehold
// run` builds them: a notify script with arguments gets them, and
// `script "bash -c '</dev/tcp/...'"` passes against an open port. Before
// one runner split both, run refused the first and the second exited 127.
func TestImportedCommandLinesRun(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	ln := scripttest.OpenPort(t)
	dir := scripttest.Dir(t)
	argv := filepath.Join(dir, "argv")
	vrrpSh := scripttest.Write(t, dir, "vrrp.sh", `printf '<%s>' "$@" >> "`+argv+`"`)
	conf := fmt.Sprintf(`vrrp_script chk_tcp {
    script "bash -c '</dev/tcp/127.0.0.1/%d'"
    interval 1
    init_fail
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.0.0.1
    }
    track_script {
        chk_tcp
    }
    notify_master "%s MASTER VI_1"
}
`, ln.Addr().(*net.TCPAddr).Port, vrrpSh)
	imp, err := keepalived.Import("keepalived.conf", []byte(conf), keepalived.Options{LookPath: exec.LookPath})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "leasehold.yaml")
	if err := os.WriteFile(path, imp.YAML, 0o644); err != nil {
		t.Fatal(err)
	}
	// The plan is what `config check` builds.
	plan, err := Load(path)
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, imp.YAML)
	}
	c := plan.Config
	d := &Daemon{plan: plan, cfg: c, log: slog.New(slog.NewTextHandler(t.Output(), nil)), notifiers: map[string]notifier{}}
	tr, err := d.newTracked(c.Instance["VI_1"])
	if err != nil {
		t.Fatalf("run refuses what config check accepted: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- tr.tracker.Run(ctx) }()
	go func() { done <- tr.notif.Run(ctx) }()
	defer func() { cancel(); <-done; <-done }()

	tr.notif.Notify(notify.Master, 100, 0)
	limit := time.After(10 * time.Second)
	for healthy := false; !healthy; {
		select {
		case s := <-tr.tracker.Updates():
			healthy = !s.Fault
		case <-limit:
			t.Fatal("bash -c '</dev/tcp/...' against an open port never passed")
		}
	}
	for tr.notif.Counters().Runs == 0 {
		select {
		case <-limit:
			t.Fatal("notify_master did not run")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if b, _ := os.ReadFile(argv); string(b) != "<MASTER><VI_1>" {
		t.Errorf("notify_master got arguments %q, want <MASTER><VI_1>", b)
	}
}
