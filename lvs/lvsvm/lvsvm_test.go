package lvsvm_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/vm"
	"github.com/leasehold/leasehold/lab/vm/image"
	"github.com/leasehold/leasehold/test/lhtest"
)

// skipOrFail skips for a missing prerequisite, or fails under
// LEASEHOLD_STRICT=1 (as the lab's own VM tests do).
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("LEASEHOLD_STRICT") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// TestIPVSInAGuestKernel boots one VM with ip_vs and runs lvs's kernel
// tests there as root: OpenIPVS finds the generic netlink family, and the
// moby/ipvs Kernel round-trips services (address and fwmark, persistence,
// schedulers) and real servers (weights, DR and TUN) through the real
// table in a fresh network namespace.
func TestIPVSInAGuestKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM: not under -short")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		skipOrFail(t, err.Error())
	}
	cache, err := image.DefaultCacheDir()
	if err != nil {
		skipOrFail(t, err.Error())
	}
	debs, _ := filepath.Glob(filepath.Join(cache, "linux-image-[0-9]*.deb"))
	if len(debs) == 0 {
		skipOrFail(t, "no linux-image-*.deb in "+cache+" (make deps fetches it)")
	}
	guest, err := lhtest.GuestBinaries()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "test", "-c", "-o", filepath.Join(bin, "lvs.test"), "github.com/leasehold/leasehold/lvs")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build lvs.test: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	img, err := image.Build(ctx, image.Options{CacheDir: cache, KernelDeb: debs[len(debs)-1],
		Files: []image.File{{Src: filepath.Join(guest, "leasehold-lab-guest")}, {Src: filepath.Join(bin, "lvs.test")}}})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "lvsvm-") // short: qemu's socket paths
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	v, err := vm.Start(ctx, vm.Config{Name: "lvs1", Kernel: img.Kernel, Initrd: img.Initrd, Dir: dir,
		Append: "lh.modules=ip_vs,ip_vs_rr,ip_vs_wrr,ip_vs_lc,ip_vs_sh"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatalf("%v\n%s", err, v.Console())
	}
	out, rc, err := v.Exec(ctx, "/usr/local/bin/lvs.test -test.v -test.run '^(TestOpenIPVSNeedsTheFamily|TestIPVSRoundTrip)$'", 2*time.Minute)
	t.Logf("in the guest (rc %d):\n%s", rc, out)
	if err != nil || rc != 0 {
		t.Fatalf("lvs kernel tests in the guest: rc %d, %v", rc, err)
	}
	if !strings.Contains(out, "--- PASS: TestIPVSRoundTrip") {
		t.Fatal("TestIPVSRoundTrip did not run and pass in the guest (skipped?)")
	}
}
