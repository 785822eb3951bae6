package image

import (
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// entryKind says what an archive entry is.
type entryKind int

const (
	kindDir entryKind = iota
	kindFile
	kindSymlink
	kindCharDev
)

// entry is one member of the initramfs. Name is the path inside the image
// without a leading slash. A file's content comes from Data, or, when Src
// is set, from that host file (read when the archive is written).
type entry struct {
	Name string
	Kind entryKind
	Perm fs.FileMode // permission bits only (0o7777)
	Data []byte      // file content or symlink target
	Src  string      // host file with the content, instead of Data
	Dev  [2]uint32   // major, minor of a device node
}

// tree is the image being assembled, keyed by Name.
type tree map[string]*entry

// dir adds directory name and all its parents (0755).
func (t tree) dir(name string) {
	for name != "." && name != "" && name != "/" {
		if _, ok := t[name]; !ok {
			t[name] = &entry{Name: name, Kind: kindDir, Perm: 0o755}
		}
		name = path.Dir(name)
	}
}

// add puts e into the tree, with the parents of its name as directories.
func (t tree) add(e entry) {
	e.Name = strings.TrimPrefix(path.Clean("/"+e.Name), "/")
	t.dir(path.Dir(e.Name))
	t[e.Name] = &e
}

// sorted returns the entries ordered by name; a directory comes before its
// contents because a prefix sorts first.
func (t tree) sorted() []*entry {
	es := make([]*entry, 0, len(t))
	for _, e := range t {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.Name, b.Name) })
	return es
}

// content returns the bytes of a file or symlink entry.
func (e *entry) content() ([]byte, error) {
	if e.Src == "" {
		return e.Data, nil
	}
	b, err := os.ReadFile(e.Src)
	if err != nil {
		return nil, fmt.Errorf("image: reading %s for /%s: %w", e.Src, e.Name, err)
	}
	return b, nil
}

// newc mode bits (see cpio(5)).
const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioCharDev = 0o020000
)

// writeCpio writes the tree as a newc ("070701") cpio archive: entries
// sorted by name, inode numbers 1, 2, 3… in that order, uid/gid 0, mtime 0,
// then the TRAILER!!! entry. The same tree gives the same bytes.
func writeCpio(w io.Writer, t tree) error {
	cw := &cpioWriter{w: w}
	for i, e := range t.sorted() {
		var mode, nlink uint32
		var data []byte
		switch e.Kind {
		case kindDir:
			mode, nlink = cpioDir, 2
		case kindFile, kindSymlink:
			b, err := e.content()
			if err != nil {
				return err
			}
			data = b
			mode, nlink = cpioFile, 1
			if e.Kind == kindSymlink {
				mode = cpioSymlink
			}
		case kindCharDev:
			mode, nlink = cpioCharDev, 1
		default:
			return fmt.Errorf("image: /%s: unknown entry kind %d", e.Name, e.Kind)
		}
		mode |= uint32(e.Perm & 0o7777)
		if err := cw.write(e.Name, uint32(i+1), mode, nlink, e.Dev, data); err != nil {
			return err
		}
	}
	return cw.write("TRAILER!!!", 0, 0, 1, [2]uint32{}, nil)
}

type cpioWriter struct {
	w   io.Writer
	off int64
}

func (c *cpioWriter) write(name string, ino, mode, nlink uint32, dev [2]uint32, data []byte) error {
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, dev[0], dev[1], len(name)+1, 0)
	buf := make([]byte, 0, len(hdr)+len(name)+8)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad4(buf, c.off)
	if err := c.put(buf); err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	if err := c.put(data); err != nil {
		return err
	}
	return c.put(pad4(nil, c.off))
}

func (c *cpioWriter) put(b []byte) error {
	n, err := c.w.Write(b)
	c.off += int64(n)
	if err != nil {
		return fmt.Errorf("image: writing cpio archive: %w", err)
	}
	return nil
}

// pad4 appends NUL bytes to b so that off+len(b) is a multiple of 4.
func pad4(b []byte, off int64) []byte {
	for (off+int64(len(b)))%4 != 0 {
		b = append(b, 0)
	}
	return b
}
