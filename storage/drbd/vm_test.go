package drbd_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/vm"
	"github.com/leasehold/leasehold/lab/vm/image"
	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/test/lhtest"
	"github.com/leasehold/leasehold/test/nstest"
)

// The VM test runs Resource.Promote/Demote against real DRBD 8.4 (the
// guest kernel's in-tree 8.4.11, drbd-utils from the host) in two qemu
// VMs: this package's test binary, built static, runs inside each guest
// as TestGuestDRBD with a phase in guestPhaseEnv; the host orders the
// phases between the VMs.

const (
	guestPhaseEnv   = "LEASEHOLD_DRBD_GUEST_PHASE"
	guestPayloadEnv = "LEASEHOLD_DRBD_GUEST_PAYLOAD"
	guestTest       = "/usr/local/bin/drbd.test"
	guestService    = "/etc/leasehold/svc.sh"
	guestServiceLog = "/run/svc.log"
)

// guestConfig is the resource as the guest test configures it: busybox's
// mount and umount (the image has no util-linux or systemd).
func guestConfig() drbd.Config {
	p := drbd.DefaultPaths()
	p.Mount, p.Umount = "/bin/mount", "/bin/umount"
	return drbd.Config{Resource: "r0", Device: "/dev/drbd0", Mount: "/srv", FSType: "ext4", KillHolders: true,
		Services: []drbd.Service{{Script: guestService}}, Paths: p, StepTimeout: 30 * time.Second}
}

// TestGuestDRBD is the guest side: it does nothing unless run in a VM by
// TestVMPromoteDemote.
func TestGuestDRBD(t *testing.T) {
	phase := os.Getenv(guestPhaseEnv)
	if phase == "" {
		t.Skip("the guest side of TestVMPromoteDemote")
	}
	r, err := drbd.New(guestConfig(), drbd.OS{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	payload := []byte(os.Getenv(guestPayloadEnv))
	switch phase {
	case "refuse":
		err := r.Promote(ctx, 1)
		if !errors.Is(err, drbd.ErrRefused) || !strings.Contains(err.Error(), "Inconsistent") {
			t.Fatalf("promoting an Inconsistent disk: %v", err)
		}
		t.Logf("refused: %v", err)
		if s, err := r.State(); err != nil || s.Role != drbd.Secondary {
			t.Fatalf("after the refusal: %v %v", s, err)
		}
	case "write":
		if err := r.Promote(ctx, 1); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create("/srv/lh-data")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(payload); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		// A holder of the mount: kill_holders must get it out of the way.
		holder := exec.Command("/bin/sh", "-c", "cd /srv && exec sleep 600")
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		held := make(chan error, 1)
		go func() { held <- holder.Wait() }()
		f.Close()
		time.Sleep(200 * time.Millisecond) // let the holder cd into /srv
		if err := r.Demote(ctx, 1); err != nil {
			dbg, _ := exec.Command("/bin/sh", "-c", "ls -l /proc/*/cwd | grep srv").CombinedOutput()
			t.Fatalf("%v\nholders:\n%s", err, dbg)
		}
		checkDemoted(t, r)
		select {
		case err := <-held:
			t.Logf("the mount's holder: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("the mount's holder is still running after the demote")
		}
	case "read":
		if err := r.Promote(ctx, 2); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile("/srv/lh-data")
		if err != nil || string(got) != string(payload) {
			t.Fatalf("read back %q (%v), want %q", got, err, payload)
		}
		if err := r.Demote(ctx, 2); err != nil {
			t.Fatal(err)
		}
		checkDemoted(t, r)
	case "start":
		// Left Primary and mounted by an earlier run: Start demotes it.
		if s, err := r.State(); err != nil || s.Role != drbd.Primary {
			t.Fatalf("before start: %v %v", s, err)
		}
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		checkDemoted(t, r)
	case "watch-cpu":
		// What following the minor costs: the Watcher's reads for 5 s.
		w := drbd.NewWatcher(drbd.OS{}, guestConfig().Paths.ProcDRBD, 0, 0)
		before := cpuTime(t, syscall.RUSAGE_SELF)
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		w.Run(wctx)
		self := cpuTime(t, syscall.RUSAGE_SELF) - before
		// And one drbdadm call, for comparison.
		before = cpuTime(t, syscall.RUSAGE_CHILDREN)
		if out, err := exec.Command("/usr/sbin/drbdadm", "cstate", "r0").CombinedOutput(); err != nil {
			t.Fatalf("drbdadm cstate: %v: %s", err, out)
		}
		t.Logf("CPU: watcher 5 s at %v: %v; one drbdadm cstate: %v", drbd.DefaultWatchInterval, self, cpuTime(t, syscall.RUSAGE_CHILDREN)-before)
	default:
		t.Fatalf("unknown phase %q", phase)
	}
	if b, err := os.ReadFile(guestServiceLog); err == nil {
		t.Logf("service log: %q", b)
	}
}

func checkDemoted(t *testing.T, r *drbd.Resource) {
	t.Helper()
	if s, err := r.State(); err != nil || s.Role != drbd.Secondary {
		t.Fatalf("after demote: %v %v", s, err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if _, mounted := drbd.MountSource(mi, "/srv"); err != nil || mounted {
		t.Fatalf("/srv still mounted after demote (%v)", err)
	}
}

func cpuTime(t *testing.T, who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// needVMs skips (or, with LEASEHOLD_STRICT=1, fails) without qemu, the
// host's drbd-utils or a cached kernel package, and builds the image.
func needVMs(t *testing.T) image.Image {
	t.Helper()
	if testing.Short() {
		t.Skip("boots two VMs: not under -short")
	}
	missing := func(format string, args ...any) {
		t.Helper()
		nstest.Require(t, false, fmt.Sprintf(format, args...))
	}
	for _, tool := range []string{"qemu-system-x86_64", "drbdadm"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing("missing host tool: %v", err)
		}
	}
	cacheDir, err := image.DefaultCacheDir()
	if err != nil {
		missing("no cache dir: %v", err)
	}
	debs, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-[0-9]*.deb"))
	if len(debs) == 0 {
		missing("no linux-image-*.deb in %s (make deps fetches it)", cacheDir)
	}
	bin, err := lhtest.GuestBinaries()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "test", "-c", "-o", filepath.Join(dir, "drbd.test"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the guest test: %v\n%s", err, out)
	}
	img, err := image.Build(t.Context(), image.Options{CacheDir: cacheDir, KernelDeb: debs[len(debs)-1], Files: []image.File{
		{Src: filepath.Join(bin, "leasehold-lab-guest")},
		{Src: filepath.Join(dir, "drbd.test"), Dest: guestTest},
	}})
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	return img
}

// drbdRes is r0 between vm1 and vm2, tuned for the lab (fast failure
// detection, a fixed resync rate).
const drbdRes = `resource r0 {
	protocol C;
	device /dev/drbd0;
	disk /dev/vda;
	meta-disk internal;
	net { ping-int 2; connect-int 2; }
	disk { c-plan-ahead 0; resync-rate 100M; }
	on vm1 { address 10.66.0.1:7789; }
	on vm2 { address 10.66.0.2:7789; }
}
`

// setupGuest writes r0 and the service script, creates DRBD's metadata
// and brings r0 up.
const setupGuest = `set -e
cat > /etc/drbd.d/r0.res <<'EOF'
` + drbdRes + `EOF
mkdir -p /etc/leasehold /srv
cat > ` + guestService + ` <<'EOF'
#!/bin/sh
echo "$1 epoch=$LEASEHOLD_EPOCH" >> ` + guestServiceLog + `
EOF
chmod 0755 ` + guestService + `
drbdadm create-md --force r0 >/dev/null 2>&1
drbdadm up r0
`

func TestVMPromoteDemote(t *testing.T) {
	img := needVMs(t)
	mcast := vm.NewMcastGroup()
	dir := t.TempDir()
	var vms [2]*vm.VM
	var errs [2]error
	var wg sync.WaitGroup
	for i := range vms {
		name := fmt.Sprintf("vm%d", i+1)
		c := vm.Config{Name: name, Kernel: img.Kernel, Initrd: img.Initrd, Dir: filepath.Join(dir, name),
			Disk: filepath.Join(dir, name+".img"), DiskMiB: 32,
			Append: fmt.Sprintf("lh.ip0=10.66.0.%d/24 lh.modules=drbd,ext4", i+1),
			NICs:   []vm.NIC{{ID: "l2", MAC: fmt.Sprintf("52:54:00:66:00:%02x", i+1), Mcast: mcast}}}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			if vms[i], errs[i] = vm.Start(ctx, c); errs[i] == nil {
				errs[i] = vms[i].WaitReady(ctx)
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, v := range vms {
			if v == nil {
				continue
			}
			if t.Failed() {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				t.Logf("dmesg:\n%s\nconsole:\n%s", v.Dmesg(ctx), v.Console())
				cancel()
			}
			v.Stop()
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	vm1, vm2 := vms[0], vms[1]
	run := func(v *vm.VM, script string) string {
		t.Helper()
		out, rc, err := v.Exec(t.Context(), script, 90*time.Second)
		if err != nil || rc != 0 {
			t.Fatalf("%s: rc %d, %v:\n%s", script, rc, err, out)
		}
		return out
	}
	// waitProc polls /proc/drbd (not drbdadm: ~130 ms CPU per call under TCG).
	waitProc := func(v *vm.VM, pattern string) {
		t.Helper()
		run(v, fmt.Sprintf("i=0; until grep -q '%s' /proc/drbd; do i=$((i+1)); [ $i -lt 300 ] || { cat /proc/drbd; exit 1; }; sleep 0.1; done", pattern))
	}
	phase := func(v *vm.VM, name, payload string) {
		t.Helper()
		out := run(v, fmt.Sprintf("%s=%s %s=%s %s -test.run '^TestGuestDRBD$' -test.v 2>&1", guestPhaseEnv, name, guestPayloadEnv, payload, guestTest))
		if !strings.Contains(out, "--- PASS: TestGuestDRBD") {
			t.Fatalf("phase %s did not pass:\n%s", name, out)
		}
		t.Logf("phase %s:\n%s", name, out)
	}

	for _, v := range vms {
		run(v, setupGuest)
	}
	for _, v := range vms {
		waitProc(v, "cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent")
	}
	// Never synced: the resource refuses to promote, and says why.
	phase(vm1, "refuse", "")

	// Skip the initial sync (both sides are empty), make a filesystem;
	// `drbdsetup events` records the change, for ParseEvent.
	events := run(vm1, "timeout 3 drbdsetup events all > /run/events 2>&1 & sleep 1; "+
		"drbdadm -- --clear-bitmap new-current-uuid r0; wait; cat /run/events")
	checkEvents(t, events)
	for _, v := range vms {
		waitProc(v, "ds:UpToDate/UpToDate")
	}
	run(vm1, "drbdadm primary r0 && mke2fs -q /dev/drbd0 && drbdadm secondary r0")

	b := make([]byte, 16)
	rand.Read(b)
	payload := hex.EncodeToString(b)
	phase(vm1, "write", payload)
	waitProc(vm2, "ro:Secondary/Secondary ds:UpToDate/UpToDate")
	phase(vm2, "read", payload)
	run(vm2, "drbdadm primary r0 && mount -t ext4 /dev/drbd0 /srv")
	phase(vm2, "start", "")
	phase(vm1, "watch-cpu", "")
}

// checkEvents parses real `drbdsetup events` output: every line parses;
// the initial state and the change to UpToDate are there.
func checkEvents(t *testing.T, out string) {
	t.Helper()
	var initial, uptodate bool
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		ev, err := drbd.ParseEvent(line)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if ev.Minor != 0 && ev.Kind != drbd.EventNoVolumes {
			continue
		}
		initial = initial || ev.Kind == drbd.EventState && ev.Resource == "r0" && ev.State.Disk == drbd.Inconsistent
		uptodate = uptodate || ev.Kind == drbd.EventStateNew && ev.State.Disk == drbd.UpToDate
	}
	if !initial || !uptodate {
		t.Errorf("events: initial Inconsistent state %v, change to UpToDate %v:\n%s", initial, uptodate, out)
	}
	t.Logf("drbdsetup events:\n%s", out)
}
