package vm

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/vm/image"
	"github.com/leasehold/leasehold/test/lhtest"
	"github.com/leasehold/leasehold/test/nstest"
)

// vmImage is what the integration tests boot, built (or found in the
// image cache) by the first test that needs it.
var vmImage struct {
	once           sync.Once
	kernel, initrd string
	skip           string // a prerequisite is missing
	err            error  // the build failed
}

// setupImage builds the guest agent and an image carrying it from a
// kernel package already in the default cache (never downloading one).
func setupImage() {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		vmImage.skip = err.Error()
		return
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		vmImage.skip = err.Error()
		return
	}
	cacheDir := filepath.Join(cache, "leasehold", "vm")
	debs, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-[0-9]*.deb"))
	if len(debs) == 0 {
		vmImage.skip = "no linux-image-*.deb in " + cacheDir + " (fetch one with image.FetchKernel)"
		return
	}
	bin, err := lhtest.GuestBinaries()
	if err != nil {
		vmImage.err = err
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := image.Build(ctx, image.Options{CacheDir: cacheDir, KernelDeb: debs[len(debs)-1],
		Files: []image.File{{Src: filepath.Join(bin, "leasehold-lab-guest")}}})
	vmImage.kernel, vmImage.initrd, vmImage.err = img.Kernel, img.Initrd, err
}

func needImage(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots VMs: not under -short")
	}
	vmImage.once.Do(setupImage)
	nstest.Require(t, vmImage.skip == "", vmImage.skip)
	if vmImage.err != nil {
		t.Fatalf("no image: %v", vmImage.err)
	}
}

// startVMs starts and readies VMs in parallel; they are stopped at cleanup,
// after their consoles and kernel logs were logged if the test failed.
func startVMs(t *testing.T, cfgs ...Config) []*VM {
	t.Helper()
	vms := make([]*VM, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, c := range cfgs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			v, err := Start(ctx, c)
			if err != nil {
				errs[i] = err
				return
			}
			vms[i] = v
			errs[i] = v.WaitReady(ctx)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, v := range vms {
			if v == nil {
				continue
			}
			if t.Failed() {
				select {
				case <-v.Exited():
				default:
					ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
					t.Logf("%s dmesg:\n%s", v.cfg.Name, v.Dmesg(ctx))
					cancel()
				}
				t.Logf("%s console:\n%s", v.cfg.Name, v.Console())
			}
			if err := v.Stop(); err != nil {
				t.Errorf("stop %s: %v", v.cfg.Name, err)
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("vm %s: %v", cfgs[i].Name, err)
		}
	}
	for _, v := range vms {
		t.Logf("%s: ready after %v (%s)", v.cfg.Name, v.BootTime().Round(time.Millisecond), readyLine(v))
	}
	return vms
}

func readyLine(v *VM) string {
	for _, l := range strings.Split(v.Console(), "\n") {
		if strings.HasPrefix(l, readyMarker) {
			return l
		}
	}
	return "no " + readyMarker
}

func mustExec(t *testing.T, v *VM, script string) string {
	t.Helper()
	out, rc, err := v.Exec(t.Context(), script, 20*time.Second)
	if err != nil || rc != 0 {
		t.Fatalf("%s: %s: rc %d, %v\n%s", v.cfg.Name, script, rc, err, out)
	}
	return out
}

// eventually retries script in v until it exits 0 (want true) or not.
func eventually(t *testing.T, v *VM, script string, want bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out, rc, err := v.Exec(t.Context(), script, 10*time.Second)
		if err == nil && (rc == 0) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: rc %d, %v after %v, want success=%v\n%s", v.cfg.Name, script, rc, err, within, want, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTwoVMs(t *testing.T) {
	needImage(t)
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox on the host for the guestfwd relay")
	}
	// A host service that only the user-net NIC's guestfwd reaches.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "hello from the host\n")
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	mcast := NewMcastGroup()
	dir := t.TempDir()
	vms := startVMs(t,
		Config{
			Name: "vm1", Kernel: vmImage.kernel, Initrd: vmImage.initrd, Dir: filepath.Join(dir, "vm1"),
			Append: "lh.ip0=10.66.0.1/24 lh.ip1=10.0.2.15/24 lh.gw1=10.0.2.2",
			NICs: []NIC{
				{ID: "l2", MAC: "52:54:00:66:00:01", Mcast: mcast},
				{ID: "up", MAC: "52:54:00:66:01:01", User: &UserNet{GuestFwd: []GuestFwd{
					{Addr: "10.0.2.100:7000", Cmd: fmt.Sprintf("%s nc 127.0.0.1 %d", busybox, port)},
				}}},
			},
		},
		Config{
			Name: "vm2", Kernel: vmImage.kernel, Initrd: vmImage.initrd, Dir: filepath.Join(dir, "vm2"),
			Append: "lh.ip0=10.66.0.2/24",
			NICs:   []NIC{{ID: "l2", MAC: "52:54:00:66:00:02", Mcast: mcast}},
			Disk:   filepath.Join(dir, "vm2.disk"), DiskMiB: 16,
		},
	)
	vm1, vm2 := vms[0], vms[1]

	t.Run("ping", func(t *testing.T) {
		mustExec(t, vm1, "ping -c 1 -W 2 10.66.0.2")
		if err := vm1.SetLink(t.Context(), "l2", false); err != nil {
			t.Fatal(err)
		}
		if out, rc, err := vm1.Exec(t.Context(), "ping -c 1 -W 1 10.66.0.2", 10*time.Second); err != nil || rc == 0 {
			t.Errorf("ping with vm1's link down: rc %d, %v, want a failure\n%s", rc, err, out)
		}
		if err := vm1.SetLink(t.Context(), "l2", true); err != nil {
			t.Fatal(err)
		}
		eventually(t, vm1, "ping -c 1 -W 1 10.66.0.2", true, 10*time.Second)
		if err := vm1.SetLink(t.Context(), "nonexistent", false); err == nil {
			t.Errorf("SetLink of an unknown NIC: no error")
		}
	})

	t.Run("guestfwd", func(t *testing.T) {
		out := mustExec(t, vm1, "nc 10.0.2.100 7000 </dev/null")
		if out != "hello from the host\n" {
			t.Errorf("through guestfwd: %q", out)
		}
		// restrict=on: nothing else on the host is reachable.
		if out, rc, _ := vm1.Exec(t.Context(), fmt.Sprintf("timeout 3 nc 10.0.2.2 %d </dev/null", port), 10*time.Second); rc == 0 && out != "" {
			t.Errorf("host port %d reachable past restrict=on: %q", port, out)
		}
	})

	t.Run("spawn", func(t *testing.T) {
		ctx := t.Context()
		p, err := vm2.Spawn(ctx, []string{"sleep", "100"}, "/tmp/sleep.log")
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := vm2.Alive(ctx, p); !ok || err != nil {
			t.Fatalf("alive = %v, %v", ok, err)
		}
		if err := vm2.Signal(ctx, Proc{PID: p.PID, StartTime: p.StartTime + 1}, syscall.SIGKILL); err == nil {
			t.Errorf("signal with a wrong start time: no error")
		}
		if err := vm2.Signal(ctx, p, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for ok := true; ok; {
			if ok, err = vm2.Alive(ctx, p); err != nil {
				t.Fatal(err)
			}
			if ok && time.Now().After(deadline) {
				t.Fatal("sleep alive 5 s after SIGTERM")
			}
		}
	})

	t.Run("reconnect", func(t *testing.T) {
		vm1.agent.close() // as if the host side dropped ctl.sock
		if out := mustExec(t, vm1, "echo back"); out != "back\n" {
			t.Errorf("exec after the agent connection dropped: %q", out)
		}
	})

	t.Run("reset", func(t *testing.T) {
		mustExec(t, vm2, "echo persisted | dd of=/dev/vda conv=fsync 2>/dev/null")
		if err := vm2.Reset(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := vm2.WaitReady(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Logf("vm2: ready after reset in %v", vm2.BootTime().Round(time.Millisecond))
		if out := mustExec(t, vm2, "head -c 9 /dev/vda; cut -d' ' -f1 /proc/uptime"); !strings.HasPrefix(out, "persisted") {
			t.Errorf("disk after reset: %q", out)
		}
	})

	t.Run("powercut", func(t *testing.T) {
		before := time.Now()
		if err := vm2.PowerCut(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-vm2.Exited():
		default:
			t.Fatal("PowerCut returned, Exited not closed")
		}
		if at := vm2.ExitedAt(); at.Before(before) {
			t.Errorf("ExitedAt %v before the power cut at %v", at, before)
		}
		if _, _, err := vm2.Exec(t.Context(), "true", time.Second); err == nil {
			t.Errorf("exec after power cut: no error")
		}
		if err := vm2.Stop(); err != nil {
			t.Errorf("stop after power cut: %v", err)
		}
	})
}
