package image

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// libDirs are the directories searched for a DT_NEEDED library after the
// object's own RUNPATH/RPATH, in the order of Debian's x86_64 ld.so (its
// built-in multiarch paths, then the classic ones). /usr/local is left
// out: the guest's loader has no ld.so.cache to find it there.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// imagePath maps a host path to its place in the usr-merged image, where
// /bin, /sbin, /lib and /lib64 are symlinks into /usr.
func imagePath(p string) string {
	p = filepath.Clean("/" + p)
	for _, top := range []string{"/bin/", "/sbin/", "/lib/", "/lib64/"} {
		if strings.HasPrefix(p, top) {
			return "/usr" + p
		}
	}
	return p
}

// sharedLibs returns the host paths of the dynamic loader and every shared
// library that the ELF file at p needs, transitively, as ldd would list
// them (each file once). A file that is not ELF, or is a static
// executable, needs none.
func sharedLibs(p string) ([]string, error) {
	var out []string
	// Files are told apart by their real path: libc's DT_NEEDED
	// ld-linux-x86-64.so.2 is the interpreter under another name, which
	// the loader already has in memory.
	seen := map[string]bool{}
	first := func(p string) bool {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			real = p
		}
		if seen[real] {
			return false
		}
		seen[real] = true
		return true
	}
	var visit func(p string, top bool) error
	visit = func(p string, top bool) error {
		if top {
			isELF, err := hasELFMagic(p)
			if err != nil || !isELF {
				return err // not ELF: a script or data file needs nothing
			}
		}
		f, err := elf.Open(p)
		if err != nil {
			return fmt.Errorf("image: reading ELF %s: %w", p, err)
		}
		defer f.Close()
		for _, prog := range f.Progs {
			if prog.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err != nil {
				return fmt.Errorf("image: reading the interpreter of %s: %w", p, err)
			}
			interp := strings.TrimRight(string(b), "\x00")
			if first(interp) {
				out = append(out, interp)
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("image: reading DT_NEEDED of %s: %w", p, err)
		}
		dirs := runPath(f, filepath.Dir(p))
		for _, lib := range needed {
			lp, err := findLib(lib, dirs, f.Class, f.Machine)
			if err != nil {
				return fmt.Errorf("image: %s needs %s: %w", p, lib, err)
			}
			if !first(lp) {
				continue
			}
			out = append(out, lp)
			if err := visit(lp, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(p, true); err != nil {
		return nil, err
	}
	return out, nil
}

// hasELFMagic reports whether the file at p starts with \x7fELF.
func hasELFMagic(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("image: reading %s: %w", p, err)
	}
	return string(magic[:]) == elf.ELFMAG, nil
}

// runPath returns the object's DT_RUNPATH (or DT_RPATH) directories,
// $ORIGIN expanded, followed by libDirs.
func runPath(f *elf.File, origin string) []string {
	var dirs []string
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				d = strings.ReplaceAll(d, "${ORIGIN}", origin)
				d = strings.ReplaceAll(d, "$ORIGIN", origin)
				if d != "" {
					dirs = append(dirs, d)
				}
			}
		}
	}
	return append(dirs, libDirs...)
}

// findLib finds lib in dirs, skipping files of another ELF class or machine
// (e.g. i386 libraries in /lib).
func findLib(lib string, dirs []string, class elf.Class, machine elf.Machine) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, lib)
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		ok := f.Class == class && f.Machine == machine
		f.Close()
		if ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %s", strings.Join(dirs, ":"))
}
