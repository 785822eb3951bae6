package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestImagePath(t *testing.T) {
	for in, want := range map[string]string{
		"/lib64/ld-linux-x86-64.so.2":     "/usr/lib64/ld-linux-x86-64.so.2",
		"/lib/x86_64-linux-gnu/libc.so.6": "/usr/lib/x86_64-linux-gnu/libc.so.6",
		"/sbin/drbdadm":                   "/usr/sbin/drbdadm",
		"/bin/x":                          "/usr/bin/x",
		"/usr/local/bin/leasehold":        "/usr/local/bin/leasehold",
		"/library/x":                      "/library/x",
		"etc/../lib/x":                    "/usr/lib/x",
	} {
		if got := imagePath(in); got != want {
			t.Errorf("imagePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVersionedKernel(t *testing.T) {
	out := "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n  Recommends: firmware\n"
	if got, ok := versionedKernel([]byte(out)); !ok || got != "linux-image-6.1.0-56-amd64" {
		t.Errorf("got %q %v", got, ok)
	}
	for _, out := range []string{"", "linux-image-amd64\n  Depends: linux-image-amd64-signed\n", "N: Unable to locate package\n"} {
		if got, ok := versionedKernel([]byte(out)); ok {
			t.Errorf("%q: got %q, want none", out, got)
		}
	}
}

// sharedLibs must find what ldd finds (the vdso aside, each file once).
func TestSharedLibsMatchesLdd(t *testing.T) {
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("no ldd")
	}
	for _, bin := range []string{"/usr/sbin/drbdsetup", "/usr/sbin/ipvsadm", "/bin/sh"} {
		if _, err := os.Stat(bin); err != nil {
			continue
		}
		out, err := exec.Command("ldd", bin).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", bin, err)
		}
		var want []string
		for _, p := range regexp.MustCompile(`(?m)(/\S+) \(0x`).FindAllStringSubmatch(string(out), -1) {
			want = append(want, realPath(t, p[1]))
		}
		libs, err := sharedLibs(bin)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range libs {
			got = append(got, realPath(t, l))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: sharedLibs %q, ldd %q", bin, got, want)
		}
	}
}

func realPath(t *testing.T, p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSharedLibsNotELF(t *testing.T) {
	p := filepath.Join(t.TempDir(), "script")
	must(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755))
	if libs, err := sharedLibs(p); err != nil || len(libs) != 0 {
		t.Errorf("script: libs %q err %v, want none", libs, err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	must(t, os.WriteFile(empty, nil, 0o644))
	if libs, err := sharedLibs(empty); err != nil || len(libs) != 0 {
		t.Errorf("empty file: libs %q err %v, want none", libs, err)
	}
}

func hostToolsPresent(t *testing.T) {
	t.Helper()
	for _, p := range append([]string{busyboxBin, "/usr/sbin/drbdadm", "/usr/sbin/ipvsadm"}, drbd84...) {
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, "host tool missing: %v", err)
		}
	}
}

// Files land at Dest (usr-merged, mode kept) and their content is part of
// the input hash.
func TestBaseTreeFilesAndHash(t *testing.T) {
	hostToolsPresent(t)
	dir := t.TempDir()
	agent := filepath.Join(dir, "agent")
	must(t, os.WriteFile(agent, []byte("#!/bin/sh\nexit 0\n"), 0o700))
	files := []File{{Src: agent, Dest: "/usr/local/bin/leasehold-lab-guest"}, {Src: agent, Dest: "/sbin/agent2"}, {Src: agent}}
	tr, err := baseTree(files)
	must(t, err)
	for _, name := range []string{"usr/local/bin/leasehold-lab-guest", "usr/sbin/agent2", "usr/local/bin/agent"} {
		e, ok := tr[name]
		if !ok || e.Perm != 0o700 || e.Src != agent {
			t.Errorf("%s: %+v, want a 0700 copy of %s", name, e, agent)
		}
	}
	for _, name := range []string{"init", "usr/bin/busybox", "usr/sbin/drbdadm", "usr/lib/drbd/drbdsetup-84",
		"usr/lib64/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/libc.so.6", "etc/drbd.d/global_common.conf"} {
		if _, ok := tr[name]; !ok {
			t.Errorf("no /%s in the image", name)
		}
	}
	if !strings.Contains(string(tr["etc/drbd.d/global_common.conf"].Data), "usage-count no") {
		t.Error("global_common.conf lacks usage-count no")
	}

	h1, err := inputHash(tr, "k.deb", 1, moduleRoots(nil))
	must(t, err)
	h2, err := inputHash(tr, "k.deb", 1, moduleRoots(nil))
	must(t, err)
	if h1 != h2 {
		t.Fatal("same inputs, different hashes")
	}
	for what, h := range map[string]func() (string, error){
		"deb size": func() (string, error) { return inputHash(tr, "k.deb", 2, moduleRoots(nil)) },
		"module":   func() (string, error) { return inputHash(tr, "k.deb", 1, moduleRoots([]string{"dummy"})) },
		"file": func() (string, error) {
			must(t, os.WriteFile(agent, []byte("#!/bin/sh\nexit 1\n"), 0o700))
			return inputHash(tr, "k.deb", 1, moduleRoots(nil))
		},
	} {
		if got, err := h(); err != nil || got == h1 {
			t.Errorf("changing the %s: hash %s err %v, want a new hash", what, got, err)
		}
	}

	if _, err := baseTree([]File{{Src: agent, Dest: "relative/x"}}); err == nil {
		t.Error("a relative Dest was accepted")
	}
	if _, err := baseTree([]File{{Src: agent, Dest: "/usr/lib"}}); err == nil {
		t.Error("a Dest that is a directory was accepted")
	}
	if _, err := baseTree([]File{{Src: filepath.Join(dir, "nope"), Dest: "/x"}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing Src: err %v, want one naming it", err)
	}
}

func TestModuleRoots(t *testing.T) {
	got := moduleRoots([]string{"dm-mod", "drbd", "", "dm_mod"})
	if len(got) != len(DefaultModules)+1 || got[len(got)-1] != "dm_mod" {
		t.Errorf("moduleRoots = %q", got)
	}
}
