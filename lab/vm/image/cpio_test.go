package image

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioMember is one entry as read back from a newc archive.
type cpioMember struct {
	Name                 string
	Ino, Mode, UID, GID  uint64
	Nlink, Mtime         uint64
	RdevMajor, RdevMinor uint64
	Data                 string
}

// readCpio parses a newc archive up to TRAILER!!! and checks the padding.
func readCpio(t *testing.T, b []byte) []cpioMember {
	t.Helper()
	var out []cpioMember
	off := 0
	field := func(i int) uint64 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+6+8*i+8]), 16, 32)
		if err != nil {
			t.Fatalf("offset %d: field %d: %v", off, i, err)
		}
		return v
	}
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("offset %d: no newc header", off)
		}
		m := cpioMember{Ino: field(0), Mode: field(1), UID: field(2), GID: field(3), Nlink: field(4),
			Mtime: field(5), RdevMajor: field(9), RdevMinor: field(10)}
		size, nameSize := int(field(6)), int(field(11))
		name := b[off+110 : off+110+nameSize]
		if name[nameSize-1] != 0 {
			t.Fatalf("offset %d: name not NUL-terminated", off)
		}
		m.Name = string(name[:nameSize-1])
		off = align4(off + 110 + nameSize)
		m.Data = string(b[off : off+size])
		off = align4(off + size)
		if m.Name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, m)
	}
}

func align4(n int) int { return (n + 3) &^ 3 }

func testTree(t *testing.T, dir string) tree {
	t.Helper()
	src := filepath.Join(dir, "hello.sh")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	tr := tree{}
	tr.dir("usr/bin")
	tr.add(entry{Name: "bin", Kind: kindSymlink, Perm: 0o777, Data: []byte("usr/bin")})
	tr.add(entry{Name: "/usr/bin/hello", Kind: kindFile, Perm: 0o750, Src: src})
	tr.add(entry{Name: "etc/a-b", Kind: kindFile, Perm: 0o644, Data: []byte("12345")})
	tr.add(entry{Name: "etc/a/b", Kind: kindFile, Perm: 0o600, Data: nil})
	tr.add(entry{Name: "dev/console", Kind: kindCharDev, Perm: 0o600, Dev: [2]uint32{5, 1}})
	return tr
}

func TestCpioRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := writeCpio(&buf, testTree(t, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, m := range readCpio(t, buf.Bytes()) {
		if m.Ino != uint64(i+1) || m.UID != 0 || m.GID != 0 || m.Mtime != 0 {
			t.Errorf("%s: ino %d uid %d gid %d mtime %d, want ino %d and zeros", m.Name, m.Ino, m.UID, m.GID, m.Mtime, i+1)
		}
		got = append(got, fmt.Sprintf("%s %o %d %d:%d %q", m.Name, m.Mode, m.Nlink, m.RdevMajor, m.RdevMinor, m.Data))
	}
	want := []string{
		`bin 120777 1 0:0 "usr/bin"`,
		`dev 40755 2 0:0 ""`,
		`dev/console 20600 1 5:1 ""`,
		`etc 40755 2 0:0 ""`,
		`etc/a 40755 2 0:0 ""`,
		`etc/a-b 100644 1 0:0 "12345"`,
		`etc/a/b 100600 1 0:0 ""`,
		`usr 40755 2 0:0 ""`,
		`usr/bin 40755 2 0:0 ""`,
		`usr/bin/hello 100750 1 0:0 "#!/bin/sh\necho hi\n"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("archive:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The system's cpio must agree.
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("no cpio tool to cross-check with")
	}
	cmd := exec.Command("cpio", "-it", "--quiet")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -it: %v: %s", err, out)
	}
	var names []string
	for _, w := range want {
		names = append(names, strings.Fields(w)[0])
	}
	if got := strings.TrimSpace(string(out)); got != strings.Join(names, "\n") {
		t.Errorf("cpio -it lists:\n%s\nwant:\n%s", got, strings.Join(names, "\n"))
	}
}

// Two trees with the same content, read from different host files, give
// the same compressed bytes, and the gzip header has no time or name.
func TestCpioGzDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := writeCpioGz(&a, testTree(t, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	if err := writeCpioGz(&b, testTree(t, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same tree, different archives")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header: time %v name %q, want neither", zr.ModTime, zr.Name)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Fatal(err)
	}
}

func TestCpioMissingSource(t *testing.T) {
	tr := tree{}
	tr.add(entry{Name: "x", Kind: kindFile, Perm: 0o644, Src: filepath.Join(t.TempDir(), "gone")})
	err := writeCpio(io.Discard, tr)
	if err == nil || !strings.Contains(err.Error(), "gone") || !strings.Contains(err.Error(), "/x") {
		t.Errorf("err = %v, want one naming the source and /x", err)
	}
}
