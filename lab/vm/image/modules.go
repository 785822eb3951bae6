package image

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultModules are the modules every image carries (with their
// dependencies): virtio devices, crc32c for DRBD under -cpu qemu64, DRBD,
// IPVS and its common schedulers, softdog, 9p, ext4 and nf_tables.
var DefaultModules = []string{
	"virtio_pci", "virtio_net", "virtio_blk", "virtio_console", "crc32c_generic",
	"drbd", "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_sh", "softdog",
	"9p", "9pnet_virtio", "af_packet", "ext4", "nfnetlink", "nf_tables",
}

// modName normalises a module name as the kernel does ('-' and '_' are the same).
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleFile is one module chosen for the image.
type moduleFile struct {
	Name string
	Rel  string // path below lib/modules/KVER, uncompressed (".ko")
	Data []byte // the uncompressed module
}

// moduleIndex knows where each module of a kernel tree lives.
type moduleIndex struct {
	dir     string            // .../lib/modules/KVER
	files   map[string]string // name -> path relative to dir
	builtin map[string]bool
}

// readModuleIndex lists the modules below dir/kernel (.ko, .ko.xz, .ko.zst)
// and reads dir/modules.builtin.
func readModuleIndex(dir string) (*moduleIndex, error) {
	ix := &moduleIndex{dir: dir, files: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := d.Name()
		i := strings.Index(base, ".ko")
		if d.IsDir() || i < 0 || !isModuleSuffix(base[i:]) {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		ix.files[modName(base[:i])] = rel
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image: listing kernel modules: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			base := filepath.Base(sc.Text())
			if i := strings.Index(base, ".ko"); i > 0 {
				ix.builtin[modName(base[:i])] = true
			}
		}
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("image: %w", err)
	}
	return ix, nil
}

func isModuleSuffix(s string) bool { return s == ".ko" || s == ".ko.xz" || s == ".ko.zst" }

// closure returns roots and everything they depend on, dependencies first,
// each once. Built-in modules are skipped; an unknown module is an error
// naming it and the module that wanted it.
func (ix *moduleIndex) closure(ctx context.Context, roots []string) ([]moduleFile, error) {
	var out []moduleFile
	seen := map[string]bool{}
	var visit func(name, from string) error
	visit = func(name, from string) error {
		name = modName(name)
		if seen[name] {
			return nil
		}
		seen[name] = true
		rel, ok := ix.files[name]
		if !ok {
			if ix.builtin[name] {
				return nil
			}
			if from != "" {
				return fmt.Errorf("image: module %s (needed by %s) not found in %s", name, from, ix.dir)
			}
			return fmt.Errorf("image: module %s not found in %s (neither a .ko file nor in modules.builtin)", name, ix.dir)
		}
		data, err := readModule(ctx, filepath.Join(ix.dir, rel))
		if err != nil {
			return err
		}
		deps, err := moduleDepends(data)
		if err != nil {
			return fmt.Errorf("image: module %s (%s): %w", name, rel, err)
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		i := strings.Index(rel, ".ko")
		out = append(out, moduleFile{Name: name, Rel: rel[:i+3], Data: data})
		return nil
	}
	for _, r := range roots {
		if err := visit(r, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readModule returns the uncompressed bytes of a .ko, .ko.xz (via xz) or
// .ko.zst (via zstd) file.
func readModule(ctx context.Context, p string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(p, ".ko.xz"):
		tool = "xz"
	case strings.HasSuffix(p, ".ko.zst"):
		tool = "zstd"
	default:
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		return b, nil
	}
	if _, err := exec.LookPath(tool); err != nil {
		return nil, fmt.Errorf("image: module %s is compressed and %s is not installed: %w", p, tool, err)
	}
	return run(ctx, "", tool, "-dc", p)
}

// moduleDepends returns the names in a module's "depends=" .modinfo field.
// It reads the .modinfo section when the module parses as ELF, else it
// scans the whole file for a NUL-separated "depends=" string.
func moduleDepends(ko []byte) ([]string, error) {
	info := ko
	if f, err := elf.NewFile(bytes.NewReader(ko)); err == nil {
		sec := f.Section(".modinfo")
		if sec == nil {
			return nil, fmt.Errorf("no .modinfo section")
		}
		if info, err = sec.Data(); err != nil {
			return nil, fmt.Errorf("reading .modinfo: %w", err)
		}
	}
	var deps []string
	for _, field := range bytes.Split(info, []byte{0}) {
		v, ok := bytes.CutPrefix(field, []byte("depends="))
		if !ok {
			continue
		}
		for _, d := range strings.Split(string(v), ",") {
			if d = strings.TrimSpace(d); d != "" {
				deps = append(deps, d)
			}
		}
	}
	return deps, nil
}
