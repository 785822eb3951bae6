package image

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"time"
)

// File is a host file copied into the image with its mode. A dynamic ELF
// executable brings its loader and shared libraries along.
type File struct {
	Src  string // host path (symlinks are followed)
	Dest string // absolute path in the image; default /usr/local/bin/<base of Src>
}

// Options says what goes into an image. The zero value is valid.
type Options struct {
	CacheDir  string       // default: os.UserCacheDir()/leasehold/vm
	KernelDeb string       // path of a linux-image-*.deb; default: FetchKernel(ctx, CacheDir)
	Files     []File       // extra payload (the leasehold binary, the guest agent…)
	Modules   []string     // module names beyond DefaultModules
	Log       *slog.Logger // default: discard
}

// Image is a built image: boot it with qemu -kernel Kernel -initrd Initrd.
type Image struct {
	Kernel        string   // uncompressed vmlinux (PVH boot), or the bzImage vmlinuz if it cannot be extracted
	Initrd        string   // initramfs: newc cpio, gzip
	KernelVersion string   // e.g. 6.1.0-56-amd64
	Hash          string   // hex sha256 of all inputs; names CacheDir/images/<Hash>
	Modules       []string // modules included, dependencies first
}

// initScript is the image's /init (busybox sh); see doc.go for its kernel
// command line parameters and console markers.
//
//go:embed init.sh
var initScript []byte

// formatVersion changes whenever Build lays out images differently, so
// that images cached by an older Build are not reused.
const formatVersion = "leasehold-vm-image 2"

// Output file names inside CacheDir/images/<hash>/.
const (
	initrdName   = "initrd.cpio.gz"
	manifestName = "image.json"
)

// Build builds the image described by o, or returns the cached one: the
// output lives in CacheDir/images/<hash>/ and is reused when all of it is
// there. The directory appears by rename, complete or not at all.
func Build(ctx context.Context, o Options) (Image, error) {
	start := time.Now()
	o, err := o.withDefaults(ctx)
	if err != nil {
		return Image{}, err
	}
	roots := moduleRoots(o.Modules)
	t, err := baseTree(o.Files)
	if err != nil {
		return Image{}, err
	}
	deb, err := os.Stat(o.KernelDeb)
	if err != nil {
		return Image{}, fmt.Errorf("image: kernel package: %w", err)
	}
	hash, err := inputHash(t, filepath.Base(o.KernelDeb), deb.Size(), roots)
	if err != nil {
		return Image{}, err
	}
	imagesDir := filepath.Join(o.CacheDir, "images")
	dir := filepath.Join(imagesDir, hash)
	if img, err := loadImage(dir); err == nil {
		o.Log.Debug("vm image cached", "dir", dir)
		return img, nil
	}

	k, err := unpackKernel(ctx, o.CacheDir, o.KernelDeb, o.Log)
	if err != nil {
		return Image{}, err
	}
	if err := os.MkdirAll(imagesDir, 0o755); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	stage, err := os.MkdirTemp(imagesDir, ".build-")
	if err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(stage)

	mods, err := addModules(ctx, t, k, roots, filepath.Join(stage, "depmod"))
	if err != nil {
		return Image{}, err
	}
	out := filepath.Join(stage, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	if err := writeInitrd(filepath.Join(out, initrdName), t); err != nil {
		return Image{}, err
	}
	kernel, err := k.vmlinux(ctx)
	if err != nil {
		o.Log.Warn("booting the compressed kernel", "err", err)
		kernel = k.vmlinuz()
	}
	if err := linkOrCopy(kernel, filepath.Join(out, filepath.Base(kernel))); err != nil {
		return Image{}, err
	}
	m := manifest{Kernel: filepath.Base(kernel), KernelVersion: k.Version, Hash: hash, Modules: mods}
	b, _ := json.MarshalIndent(m, "", "\t")
	if err := os.WriteFile(filepath.Join(out, manifestName), append(b, '\n'), 0o644); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	if err := os.Rename(out, dir); err != nil && !isExist(err) {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	img, err := loadImage(dir) // ours, or a concurrent build's identical one
	if err != nil {
		return Image{}, err
	}
	o.Log.Info("vm image built", "dir", dir, "kernel", k.Version, "modules", len(mods), "took", time.Since(start))
	return img, nil
}

func (o Options) withDefaults(ctx context.Context) (Options, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return o, err
		}
		o.CacheDir = d
	}
	if o.KernelDeb == "" {
		deb, err := FetchKernel(ctx, o.CacheDir)
		if err != nil {
			return o, err
		}
		o.KernelDeb = deb
	}
	return o, nil
}

// moduleRoots is DefaultModules plus extra, normalised, each once.
func moduleRoots(extra []string) []string {
	var roots []string
	seen := map[string]bool{}
	for _, m := range append(append([]string{}, DefaultModules...), extra...) {
		if m = modName(m); m != "" && !seen[m] {
			seen[m] = true
			roots = append(roots, m)
		}
	}
	return roots
}

// manifest is CacheDir/images/<hash>/image.json.
type manifest struct {
	Kernel        string // file name next to the manifest
	KernelVersion string
	Hash          string
	Modules       []string
}

// loadImage returns the image in dir if the manifest, the kernel and the
// initrd are all there.
func loadImage(dir string) (Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Image{}, fmt.Errorf("image: %s: %w", filepath.Join(dir, manifestName), err)
	}
	img := Image{
		Kernel:        filepath.Join(dir, m.Kernel),
		Initrd:        filepath.Join(dir, initrdName),
		KernelVersion: m.KernelVersion,
		Hash:          m.Hash,
		Modules:       m.Modules,
	}
	for _, p := range []string{img.Kernel, img.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return Image{}, fmt.Errorf("image: incomplete image: %w", err)
		}
	}
	return img, nil
}

// hostTools are copied to /usr/sbin (with their libraries); mke2fs is
// e2fsprogs', as busybox's cannot make a journal. drbd-utils 9 runs the
// 8.4 flavours from /usr/lib/drbd when /proc/drbd says 8.4.
var (
	hostTools  = []string{"drbdadm", "drbdsetup", "drbdmeta", "ipvsadm", "mke2fs"}
	drbd84     = []string{"/usr/lib/drbd/drbdadm-84", "/usr/lib/drbd/drbdsetup-84"}
	busyboxBin = "/bin/busybox"
)

// Fixed small files of the image.
var etcFiles = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
	"etc/group":  "root:x:0:\n",
	"etc/hosts":  "127.0.0.1 localhost\n",
	"etc/drbd.conf": "include \"drbd.d/global_common.conf\";\n" +
		"include \"drbd.d/*.res\";\n",
	"etc/drbd.d/global_common.conf": "global { usage-count no; }\n" +
		"common { net { protocol C; } }\n",
}

// baseTree is everything but the kernel modules: the usr-merged layout,
// /init, /etc, busybox, the DRBD and IPVS tools and files, each dynamic
// executable with its libraries.
func baseTree(files []File) (tree, error) {
	t := tree{}
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/local/bin",
		"usr/local/sbin", "etc/drbd.d", "dev", "proc", "sys", "run", "tmp", "var/lib/drbd",
		"root", "mnt", "share"} {
		t.dir(d)
	}
	for link, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib",
		"lib64": "usr/lib64", "var/run": "../run", "var/lock": "../run/lock"} {
		t.add(entry{Name: link, Kind: kindSymlink, Perm: 0o777, Data: []byte(target)})
	}
	t.add(entry{Name: "dev/console", Kind: kindCharDev, Perm: 0o600, Dev: [2]uint32{5, 1}})
	t.add(entry{Name: "init", Kind: kindFile, Perm: 0o755, Data: initScript})
	for name, s := range etcFiles {
		t.add(entry{Name: name, Kind: kindFile, Perm: 0o644, Data: []byte(s)})
	}
	if err := addHostFile(t, busyboxBin, "/usr/bin/busybox"); err != nil {
		return nil, err
	}
	for _, name := range hostTools {
		p, err := exec.LookPath(name)
		if err != nil {
			p = "/usr/sbin/" + name // not on PATH for non-root users
		}
		if err := addHostFile(t, p, "/usr/sbin/"+name); err != nil {
			return nil, err
		}
	}
	for _, p := range drbd84 {
		if err := addHostFile(t, p, p); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		dest := f.Dest
		if dest == "" {
			dest = "/usr/local/bin/" + filepath.Base(f.Src)
		}
		if !path.IsAbs(dest) {
			return nil, fmt.Errorf("image: file %s: destination %q is not absolute", f.Src, dest)
		}
		if err := addHostFile(t, f.Src, dest); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// addHostFile copies host file src to dest (mode kept) and, if it is a
// dynamic ELF executable, its loader and libraries to their usr-merged
// places. A later file replaces an earlier one at the same place.
func addHostFile(t tree, src, dest string) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("image: host file for %s: %w", dest, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("image: host file %s for %s is not a regular file", src, dest)
	}
	name := imagePath(dest)[1:]
	if e, ok := t[name]; ok && e.Kind == kindDir {
		return fmt.Errorf("image: %s: destination %s is a directory in the image", src, dest)
	}
	t.add(entry{Name: name, Kind: kindFile, Perm: st.Mode().Perm(), Src: src})
	libs, err := sharedLibs(src)
	if err != nil {
		return err
	}
	for _, lib := range libs {
		ln := imagePath(lib)[1:]
		if _, ok := t[ln]; ok {
			continue
		}
		st, err := os.Stat(lib)
		if err != nil {
			return fmt.Errorf("image: library of %s: %w", src, err)
		}
		t.add(entry{Name: ln, Kind: kindFile, Perm: st.Mode().Perm(), Src: lib})
	}
	return nil
}

// inputHash hashes everything an image is made of: the format version,
// the kernel package's name and size, the module roots and every entry of
// the base tree with its content (the init script, the tools and their
// libraries, Options.Files).
func inputHash(t tree, debName string, debSize int64, roots []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\nkernel %s %d\n", formatVersion, debName, debSize)
	for _, m := range roots {
		fmt.Fprintf(h, "module %s\n", m)
	}
	for _, e := range t.sorted() {
		var sum [sha256.Size]byte
		if e.Kind == kindFile || e.Kind == kindSymlink {
			b, err := e.content()
			if err != nil {
				return "", err
			}
			sum = sha256.Sum256(b)
		}
		fmt.Fprintf(h, "entry %q %d %o %d,%d %x\n", e.Name, e.Kind, e.Perm, e.Dev[0], e.Dev[1], sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// addModules adds the closure of roots to t under usr/lib/modules/KVER,
// with the modules.dep & co. that `busybox depmod` writes for them in
// work, and returns the module names, dependencies first.
func addModules(ctx context.Context, t tree, k kernelTree, roots []string, work string) ([]string, error) {
	ix, err := readModuleIndex(k.Modules)
	if err != nil {
		return nil, err
	}
	mods, err := ix.closure(ctx, roots)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(work, "lib", "modules", k.Version)
	imgDir := path.Join("usr/lib/modules", k.Version)
	var names []string
	for _, m := range mods {
		p := filepath.Join(dir, m.Rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		if err := os.WriteFile(p, m.Data, 0o644); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		t.add(entry{Name: path.Join(imgDir, filepath.ToSlash(m.Rel)), Kind: kindFile, Perm: 0o644, Data: m.Data})
		names = append(names, m.Name)
	}
	for _, f := range []string{"modules.builtin", "modules.builtin.modinfo", "modules.order"} {
		b, err := os.ReadFile(filepath.Join(k.Modules, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
	}
	if _, err := run(ctx, "", busyboxBin, "depmod", "-b", work, k.Version); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		t.add(entry{Name: path.Join(imgDir, e.Name()), Kind: kindFile, Perm: 0o644, Data: b})
	}
	return names, nil
}

// writeInitrd writes t as a gzip-compressed cpio archive to p. The gzip
// header carries no name and no time: same tree, same bytes.
func writeInitrd(p string, t tree) error {
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	if err := writeCpioGz(f, t); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("image: writing %s: %w", p, err)
	}
	return nil
}

func writeCpioGz(w io.Writer, t tree) error {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := writeCpio(zw, t); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("image: compressing the initrd: %w", err)
	}
	return nil
}

// linkOrCopy hard-links src to dst, or copies it if that fails (another
// file system).
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}

// DefaultCacheDir is where images and the kernel package are cached by
// default: the user's cache directory (XDG_CACHE_HOME, ~/.cache) under
// leasehold/vm.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("image: no cache directory: %w", err)
	}
	return filepath.Join(d, "leasehold", "vm"), nil
}
