package image

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeKo builds a minimal ELF64 relocatable object with a .modinfo section
// holding fields, and a .rodata section holding a decoy "depends=" string
// that must not be read.
func fakeKo(t *testing.T, fields ...string) []byte {
	t.Helper()
	modinfo := []byte(strings.Join(fields, "\x00") + "\x00")
	rodata := []byte("\x00depends=decoy\x00")
	shstr := []byte("\x00.modinfo\x00.rodata\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	offModinfo := uint64(ehsize)
	offRodata := offModinfo + uint64(len(modinfo))
	offShstr := offRodata + uint64(len(rodata))
	shoff := (offShstr + uint64(len(shstr)) + 7) &^ 7

	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shoff, Ehsize: ehsize, Shentsize: shentsize, Shnum: 4, Shstrndx: 3,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	must(t, binary.Write(&b, binary.LittleEndian, hdr))
	b.Write(modinfo)
	b.Write(rodata)
	b.Write(shstr)
	b.Write(make([]byte, int(shoff)-b.Len()))
	secs := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: offModinfo, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_PROGBITS), Off: offRodata, Size: uint64(len(rodata)), Addralign: 1},
		{Name: 18, Type: uint32(elf.SHT_STRTAB), Off: offShstr, Size: uint64(len(shstr)), Addralign: 1},
	}
	for _, s := range secs {
		must(t, binary.Write(&b, binary.LittleEndian, s))
	}
	return b.Bytes()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestModuleDepends(t *testing.T) {
	for _, tc := range []struct {
		name string
		ko   []byte
		want []string
	}{
		{"elf", fakeKo(t, "license=GPL", "depends=lru_cache,libcrc32c", "vermagic=6.1"), []string{"lru_cache", "libcrc32c"}},
		{"elf-none", fakeKo(t, "depends=", "name=softdog"), nil},
		{"raw", []byte("junk\x00depends=a,b-c\x00intree=Y\x00"), []string{"a", "b-c"}},
		{"raw-start", []byte("depends=x\x00"), []string{"x"}},
		{"raw-not-a-field", []byte("xdepends=x\x00"), nil},
	} {
		got, err := moduleDepends(tc.ko)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: depends %q, want %q", tc.name, got, tc.want)
		}
	}
}

// writeModTree lays out a kernel's lib/modules/V with the given modules
// (name -> depends field) and modules.builtin lines.
func writeModTree(t *testing.T, mods map[string]string, builtin ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lib", "modules", "6.1.0-1-amd64")
	for name, deps := range mods {
		p := filepath.Join(dir, "kernel", "drivers", name+".ko")
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, fakeKo(t, "depends="+deps, "name="+name), 0o644))
	}
	must(t, os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(strings.Join(builtin, "\n")+"\n"), 0o644))
	return dir
}

func closureNames(t *testing.T, dir string, roots ...string) ([]string, error) {
	t.Helper()
	ix, err := readModuleIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := ix.closure(context.Background(), roots)
	var names []string
	for _, m := range mods {
		names = append(names, m.Name+":"+m.Rel)
	}
	return names, err
}

func TestModuleClosure(t *testing.T) {
	dir := writeModTree(t, map[string]string{
		"drbd":       "lru_cache,libcrc32c",
		"lru_cache":  "",
		"libcrc32c":  "crc-helper",
		"crc-helper": "",
		"softdog":    "watchdog",
		"watchdog":   "",
		"unused":     "",
	}, "kernel/net/packet/af_packet.ko")
	got, err := closureNames(t, dir, "drbd", "af-packet", "softdog", "lru_cache")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"lru_cache:kernel/drivers/lru_cache.ko",
		"crc_helper:kernel/drivers/crc-helper.ko",
		"libcrc32c:kernel/drivers/libcrc32c.ko",
		"drbd:kernel/drivers/drbd.ko",
		"watchdog:kernel/drivers/watchdog.ko",
		"softdog:kernel/drivers/softdog.ko",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("closure:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestModuleClosureMissing(t *testing.T) {
	dir := writeModTree(t, map[string]string{"ip_vs": "nf_conntrack"})
	if _, err := closureNames(t, dir, "nosuchmod"); err == nil || !strings.Contains(err.Error(), "module nosuchmod not found") {
		t.Errorf("err = %v, want one naming nosuchmod", err)
	}
	if _, err := closureNames(t, dir, "ip_vs"); err == nil || !strings.Contains(err.Error(), "nf_conntrack (needed by ip_vs)") {
		t.Errorf("err = %v, want one naming nf_conntrack and ip_vs", err)
	}
}

func TestModuleClosureCompressed(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		skipOrFail(t, "no xz: %v", err)
	}
	dir := writeModTree(t, map[string]string{"watchdog": ""})
	p := filepath.Join(dir, "kernel", "drivers", "softdog.ko")
	ko := fakeKo(t, "depends=watchdog")
	must(t, os.WriteFile(p, ko, 0o644))
	if out, err := exec.Command("xz", p).CombinedOutput(); err != nil { // leaves softdog.ko.xz
		t.Fatalf("xz: %v: %s", err, out)
	}
	ix, err := readModuleIndex(dir)
	must(t, err)
	mods, err := ix.closure(context.Background(), []string{"softdog"})
	must(t, err)
	if len(mods) != 2 || mods[1].Rel != "kernel/drivers/softdog.ko" || !bytes.Equal(mods[1].Data, ko) {
		t.Errorf("got %d modules, last %q (%d bytes), want watchdog then softdog.ko decompressed", len(mods), mods[len(mods)-1].Rel, len(mods[len(mods)-1].Data))
	}
}
