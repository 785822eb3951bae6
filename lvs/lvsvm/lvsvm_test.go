package lvsvm_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/vm"
	"github.com/leasehold/leasehold/lab/vm/image"
	"github.com/leasehold/leasehold/test/lhtest"
	"github.com/leasehold/leasehold/test/nstest"
)

// ipvsModules are loaded at boot: IPVS and the schedulers the tests use.
const ipvsModules = "ip_vs,ip_vs_rr,ip_vs_wrr,ip_vs_lc,ip_vs_sh"

// builtImage is an image built once for the package's tests.
type builtImage struct {
	once sync.Once
	img  image.Image
	skip string
	err  error
}

// get builds the image with extra files the first time, and skips or
// fails the test when it cannot be had.
func (b *builtImage) get(t *testing.T, extra ...image.File) image.Image {
	t.Helper()
	b.once.Do(func() { b.img, b.skip, b.err = buildImage(t.TempDir(), extra...) })
	return checkImage(t, b.img, b.skip, b.err)
}

var guestImage builtImage

// needImage builds (once, or finds in the image cache) an image with the
// guest agent, leasehold and lvs's test binary, from a kernel package
// already in the cache (never downloading one).
func needImage(t *testing.T) image.Image {
	t.Helper()
	if testing.Short() {
		t.Skip("boots VMs: not under -short")
	}
	return guestImage.get(t)
}

func checkImage(t *testing.T, img image.Image, skip string, err error) image.Image {
	t.Helper()
	if skip != "" {
		skipOrFail(t, skip)
	}
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// buildImage builds the tests' image with extra files (e.g. keepalived).
func buildImage(tmp string, extra ...image.File) (image.Image, string, error) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return image.Image{}, err.Error(), nil
	}
	cache, err := image.DefaultCacheDir()
	if err != nil {
		return image.Image{}, err.Error(), nil
	}
	debs, _ := filepath.Glob(filepath.Join(cache, "linux-image-[0-9]*.deb"))
	if len(debs) == 0 {
		return image.Image{}, "no linux-image-*.deb in " + cache + " (make deps fetches it)", nil
	}
	guest, err := lhtest.GuestBinaries()
	if err != nil {
		return image.Image{}, "", err
	}
	build := exec.Command("go", "test", "-c", "-o", filepath.Join(tmp, "lvs.test"), "github.com/leasehold/leasehold/lvs")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return image.Image{}, "", fmt.Errorf("build lvs.test: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := image.Build(ctx, image.Options{CacheDir: cache, KernelDeb: debs[len(debs)-1], Files: append([]image.File{
		{Src: filepath.Join(guest, "leasehold-lab-guest")}, {Src: filepath.Join(guest, "leasehold")}, {Src: filepath.Join(tmp, "lvs.test")}}, extra...)})
	return img, "", err
}

// startVM starts c in a short run directory of its own (qemu's socket
// paths) and waits until its agent answers; it is stopped at cleanup,
// its console logged if the test failed.
func startVM(ctx context.Context, t *testing.T, c vm.Config) *vm.VM {
	t.Helper()
	dir, err := os.MkdirTemp("", "lvsvm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c.Dir = filepath.Join(dir, "vm")
	v, err := vm.Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s console:\n%s", c.Name, v.Console())
		}
		v.Stop()
	})
	if err := v.WaitReady(ctx); err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return v
}

// skipOrFail skips for a missing prerequisite, or fails under
// LEASEHOLD_STRICT=1 (as the lab's own VM tests do).
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	nstest.Require(t, false, why)
}

// TestIPVSInAGuestKernel boots one VM with ip_vs and runs lvs's kernel
// tests there as root: OpenIPVS finds the generic netlink family, and the
// moby/ipvs Kernel round-trips services (address and fwmark, persistence,
// schedulers) and real servers (weights, DR and TUN) through the real
// table in a fresh network namespace.
func TestIPVSInAGuestKernel(t *testing.T) {
	img := needImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	v := startVM(ctx, t, vm.Config{Name: "lvs1", Kernel: img.Kernel, Initrd: img.Initrd, Append: "lh.modules=" + ipvsModules})
	out, rc, err := v.Exec(ctx, "/usr/local/bin/lvs.test -test.v -test.run '^(TestOpenIPVSNeedsTheFamily|TestIPVSRoundTrip)$'", 2*time.Minute)
	t.Logf("in the guest (rc %d):\n%s", rc, out)
	if err != nil || rc != 0 {
		t.Fatalf("lvs kernel tests in the guest: rc %d, %v", rc, err)
	}
	if !strings.Contains(out, "--- PASS: TestIPVSRoundTrip") {
		t.Fatal("TestIPVSRoundTrip did not run and pass in the guest (skipped?)")
	}
}

// directorAndRealServer boots a director VM (d1 at dAddr, e.g.
// 10.66.0.1/24, with IPVS, share on /share) and a real-server VM
// (rsAppend its kernel command line) on one new segment, at once.
func directorAndRealServer(ctx context.Context, t *testing.T, img image.Image, share, dAddr, rsAppend string) (d, r *vm.VM, segment string) {
	t.Helper()
	segment = vm.NewMcastGroup()
	var wg sync.WaitGroup
	wg.Go(func() {
		d = startVM(ctx, t, vm.Config{Name: "d1", Kernel: img.Kernel, Initrd: img.Initrd, Share: share,
			Append: "lh.ip0=" + dAddr + " lh.modules=" + ipvsModules, NICs: []vm.NIC{{ID: "l2", MAC: directorMAC, Mcast: segment}}})
	})
	wg.Go(func() {
		r = startVM(ctx, t, vm.Config{Name: "rs", Kernel: img.Kernel, Initrd: img.Initrd,
			Append: rsAppend, NICs: []vm.NIC{{ID: "l2", MAC: rsMAC, Mcast: segment}}})
	})
	wg.Wait()
	if d == nil || r == nil {
		t.FailNow()
	}
	return d, r, segment
}

// directorMAC is the single director's (the pair's n1 has it too).
const directorMAC = "52:54:00:66:00:01"

// mustExec runs script in v (1 min at most) and returns its output,
// trimmed; a failure ends the test.
func mustExec(ctx context.Context, t *testing.T, v *vm.VM, script string) string {
	t.Helper()
	out, rc, err := v.Exec(ctx, script, time.Minute)
	if err != nil || rc != 0 {
		t.Fatalf("%s: rc %d %v\n%s", script, rc, err, out)
	}
	return strings.TrimSpace(out)
}
