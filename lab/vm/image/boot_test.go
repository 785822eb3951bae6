package image

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/test/nstest"
)

// skipOrFail skips the test, or fails it when LEASEHOLD_STRICT=1 asks for
// every test to run.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	nstest.Require(t, false, fmt.Sprintf(format, args...))
}

// testKernelDeb finds a kernel .deb already in the default cache directory
// (the test never downloads one).
func testKernelDeb(t *testing.T) (cacheDir, deb string) {
	t.Helper()
	d, err := os.UserCacheDir()
	if err != nil {
		skipOrFail(t, "no cache dir: %v", err)
	}
	cacheDir = filepath.Join(d, "leasehold", "vm")
	m, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-[0-9]*.deb"))
	if len(m) == 0 {
		skipOrFail(t, "no linux-image-*.deb in %s (fetch one with image.FetchKernel)", cacheDir)
	}
	return cacheDir, m[len(m)-1]
}

// The real initramfs, assembled twice from separate work directories,
// is byte-identical.
func TestInitrdReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("unpacks the kernel package")
	}
	hostToolsPresent(t)
	cacheDir, deb := testKernelDeb(t)
	ctx := context.Background()
	k, err := unpackKernel(ctx, cacheDir, deb, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var outs [2]bytes.Buffer
	for i := range outs {
		tr, err := baseTree(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := addModules(ctx, tr, k, moduleRoots(nil), t.TempDir()); err != nil {
			t.Fatal(err)
		}
		if err := writeCpioGz(&outs[i], tr); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(outs[0].Bytes(), outs[1].Bytes()) {
		t.Errorf("two builds differ: %d and %d bytes", outs[0].Len(), outs[1].Len())
	}
}

// Two concurrent builds of a new image both succeed with the same result,
// and nothing half-built is left behind.
func TestBuildConcurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images")
	}
	hostToolsPresent(t)
	cacheDir, deb := testKernelDeb(t)
	payload := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(payload, []byte(t.Name()+time.Now().String()), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{CacheDir: cacheDir, KernelDeb: deb, Files: []File{{Src: payload, Dest: "/root/payload"}}}
	var imgs [2]Image
	var errs [2]error
	var wg sync.WaitGroup
	for i := range imgs {
		wg.Go(func() { imgs[i], errs[i] = Build(context.Background(), o) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(imgs[0].Initrd)) })
	if !reflect.DeepEqual(imgs[0], imgs[1]) {
		t.Errorf("concurrent builds differ:\n%+v\n%+v", imgs[0], imgs[1])
	}
	if left, _ := filepath.Glob(filepath.Join(cacheDir, "images", ".build-*")); len(left) != 0 {
		t.Errorf("left behind: %q", left)
	}
}

// FetchKernel reuses a .deb already in the cache; the test never downloads.
func TestFetchKernelCached(t *testing.T) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		skipOrFail(t, "no apt-cache: %v", err)
	}
	cacheDir, _ := testKernelDeb(t)
	pkg, err := kernelPackage(context.Background())
	if err != nil {
		skipOrFail(t, "apt does not know the kernel: %v", err)
	}
	want, ok := cachedDeb(cacheDir, pkg)
	if !ok {
		t.Skipf("%s is not in %s; not downloading it in a test", pkg, cacheDir)
	}
	got, err := FetchKernel(context.Background(), cacheDir)
	if err != nil || got != want {
		t.Errorf("FetchKernel = %q, %v; want %q", got, err, want)
	}
}

func TestBuildBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	for _, tool := range []string{"qemu-system-x86_64", "dpkg-deb", "xz", busyboxBin, "drbdadm", "ipvsadm"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "missing host tool: %v", err)
		}
	}
	cacheDir, deb := testKernelDeb(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	start := time.Now()
	img, err := Build(ctx, Options{CacheDir: cacheDir, KernelDeb: deb})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build: %v (kernel %s, %d modules, hash %.12s)", time.Since(start), img.KernelVersion, len(img.Modules), img.Hash)
	start = time.Now()
	again, err := Build(ctx, Options{CacheDir: cacheDir, KernelDeb: deb})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cached build: %v", time.Since(start))
	if again.Initrd != img.Initrd || again.Kernel != img.Kernel || again.Hash != img.Hash {
		t.Errorf("second build gave %+v, want the cached %+v", again, img)
	}
	if st, err := os.Stat(img.Initrd); err == nil {
		t.Logf("initrd %s: %d bytes; kernel %s", img.Initrd, st.Size(), img.Kernel)
	}

	console := filepath.Join(t.TempDir(), "console.log")
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-cpu", "qemu64",
		"-smp", "1", "-m", "256", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", img.Kernel, "-initrd", img.Initrd,
		"-append", "console=ttyS0 quiet panic=-1 lh.name=t1 lh.modules=drbd,ip_vs,softdog,nf_tables",
		"-serial", "file:"+console)
	var qout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qout, &qout
	start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting qemu: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // only the qemu this test started
			<-exited
		}
	}()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(console)
			t.Fatalf("qemu exited before @@VM-READY (%v): %s\nconsole:\n%s", err, qout.String(), log)
		case <-deadline:
			log, _ := os.ReadFile(console)
			t.Fatalf("no @@VM-READY t1 within 60 s; console:\n%s", log)
		case <-tick.C:
		}
		log, _ := os.ReadFile(console)
		if !bytes.Contains(log, []byte("@@VM-READY t1 ")) {
			continue
		}
		t.Logf("boot: %v until @@VM-READY", time.Since(start))
		if bytes.Contains(log, []byte("@@MODPROBE-FAILED")) {
			t.Errorf("a module failed to load; console:\n%s", log)
		}
		if testing.Verbose() {
			t.Logf("console:\n%s", log)
		}
		return
	}
}
