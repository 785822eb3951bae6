package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// kernelMeta is the metapackage that depends on the current kernel package.
const kernelMeta = "linux-image-amd64"

// FetchKernel returns the path of the .deb of the kernel package that
// linux-image-amd64 currently depends on (as `apt-cache depends` says,
// e.g. linux-image-6.1.0-56-amd64). A .deb of that package already in
// cacheDir is reused (the cache is keyed by file name); otherwise
// `apt-get download` fetches it there. Nothing is installed.
func FetchKernel(ctx context.Context, cacheDir string) (string, error) {
	pkg, err := kernelPackage(ctx)
	if err != nil {
		return "", err
	}
	if p, ok := cachedDeb(cacheDir, pkg); ok {
		return p, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	// Download into a private directory, then move: a concurrent caller
	// never sees a partial .deb under the final name.
	tmp, err := os.MkdirTemp(cacheDir, ".download-")
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(tmp)
	if _, err := run(ctx, tmp, "apt-get", "download", pkg); err != nil {
		return "", err
	}
	p, ok := cachedDeb(tmp, pkg)
	if !ok {
		return "", fmt.Errorf("image: apt-get download %s left no %s_*.deb in %s", pkg, pkg, tmp)
	}
	dst := filepath.Join(cacheDir, filepath.Base(p))
	if err := os.Rename(p, dst); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	return dst, nil
}

// kernelPackage resolves linux-image-amd64 to the versioned kernel package.
func kernelPackage(ctx context.Context) (string, error) {
	out, err := run(ctx, "", "apt-cache", "depends", kernelMeta)
	if err != nil {
		return "", fmt.Errorf("%w (is %s known to apt? run apt-get update)", err, kernelMeta)
	}
	if pkg, ok := versionedKernel(out); ok {
		return pkg, nil
	}
	return "", fmt.Errorf("image: apt-cache depends %s names no linux-image-<version> package (apt has no such package; run apt-get update?)", kernelMeta)
}

// versionedKernel finds "Depends: linux-image-<digit>…" in the output of
// apt-cache depends.
func versionedKernel(aptDepends []byte) (string, bool) {
	const prefix = "linux-image-"
	sc := bufio.NewScanner(bytes.NewReader(aptDepends))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.TrimPrefix(f[0], "|") != "Depends:" {
			continue
		}
		if v, ok := strings.CutPrefix(f[1], prefix); ok && v != "" && v[0] >= '0' && v[0] <= '9' {
			return f[1], true
		}
	}
	return "", false
}

// cachedDeb finds dir/pkg_*.deb.
func cachedDeb(dir, pkg string) (string, bool) {
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(m) == 0 {
		return "", false
	}
	return m[len(m)-1], true
}

// kernelTree is an unpacked kernel package.
type kernelTree struct {
	Root    string // CacheDir/kroot/<deb name>
	Version string // e.g. 6.1.0-56-amd64
	Modules string // Root/lib/modules/Version
}

// unpackKernel unpacks deb (dpkg-deb -x) into cacheDir/kroot/<deb name>,
// once: later calls find it there. It unpacks into a temporary directory
// and renames it, so a concurrent build sees all of it or nothing.
func unpackKernel(ctx context.Context, cacheDir, deb string, log *slog.Logger) (kernelTree, error) {
	root := filepath.Join(cacheDir, "kroot", strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if _, err := os.Stat(root); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return kernelTree{}, fmt.Errorf("image: %w", err)
		}
		log.Info("unpacking kernel package", "deb", deb, "dir", root)
		if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
			return kernelTree{}, fmt.Errorf("image: %w", err)
		}
		tmp, err := os.MkdirTemp(filepath.Dir(root), ".unpack-")
		if err != nil {
			return kernelTree{}, fmt.Errorf("image: %w", err)
		}
		defer os.RemoveAll(tmp)
		if _, err := run(ctx, "", "dpkg-deb", "-x", deb, tmp); err != nil {
			return kernelTree{}, err
		}
		if err := os.Rename(tmp, root); err != nil && !isExist(err) {
			return kernelTree{}, fmt.Errorf("image: %w", err)
		}
	}
	for _, mods := range []string{"lib/modules", "usr/lib/modules"} {
		ents, err := os.ReadDir(filepath.Join(root, mods))
		if err != nil || len(ents) == 0 {
			continue
		}
		if len(ents) > 1 {
			return kernelTree{}, fmt.Errorf("image: %s has %d kernel versions in %s, want one", deb, len(ents), mods)
		}
		v := ents[0].Name()
		return kernelTree{Root: root, Version: v, Modules: filepath.Join(root, mods, v)}, nil
	}
	return kernelTree{}, fmt.Errorf("image: %s has no lib/modules/<version> (not a linux-image package?)", deb)
}

// vmlinuz returns the path of the compressed kernel (bzImage).
func (k kernelTree) vmlinuz() string {
	return filepath.Join(k.Root, "boot", "vmlinuz-"+k.Version)
}

// xzMagic starts an xz stream.
var xzMagic = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}

// vmlinux returns the uncompressed ELF kernel, extracted once from the
// xz-compressed bzImage into k.Root/vmlinux. It returns "" and the reason
// when that is impossible (no CONFIG_PVH=y, not xz, xz missing): the
// caller then boots the bzImage.
func (k kernelTree) vmlinux(ctx context.Context) (string, error) {
	out := filepath.Join(k.Root, "vmlinux")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	cfg, err := os.ReadFile(filepath.Join(k.Root, "boot", "config-"+k.Version))
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	if !bytes.Contains(cfg, []byte("\nCONFIG_PVH=y\n")) {
		return "", fmt.Errorf("image: kernel %s lacks CONFIG_PVH=y: cannot boot an uncompressed vmlinux", k.Version)
	}
	z, err := os.ReadFile(k.vmlinuz())
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	off := bytes.Index(z, xzMagic)
	if off < 0 {
		return "", fmt.Errorf("image: %s holds no xz stream", k.vmlinuz())
	}
	tmp, err := os.CreateTemp(k.Root, ".vmlinux-")
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	defer os.Remove(tmp.Name())
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "xz", "-dc")
	cmd.Stdin = bytes.NewReader(z[off:])
	cmd.Stdout = tmp
	cmd.Stderr = &stderr
	runErr := cmd.Run() // data after the xz stream makes xz fail: judge by the output
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	if ok, _ := hasELFMagic(tmp.Name()); !ok {
		return "", fmt.Errorf("image: xz -dc of %s from offset %d gave no ELF file (xz: %v: %s)",
			k.vmlinuz(), off, runErr, strings.TrimSpace(stderr.String()))
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	return out, nil
}

// run runs a host tool and returns its stdout; the error names the
// command and carries its stderr.
func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("image: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// isExist reports whether a rename failed because the target exists (a
// concurrent build got there first).
func isExist(err error) bool {
	return errors.Is(err, os.ErrExist) || errors.Is(err, syscall.ENOTEMPTY)
}
