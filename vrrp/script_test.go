package vrrp_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Script files shared by the scenario tests (testdata/scenarios for one
// Machine, testdata/segment for hosts on a vrrptest.Segment).

// runScripts runs fn as a subtest for every testdata/dir/*.txt; there must
// be at least least of them.
func runScripts(t *testing.T, dir string, least int, fn func(t *testing.T, file string)) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < least {
		t.Fatalf("found %d scripts in testdata/%s, want at least %d", len(files), dir, least)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { fn(t, f) })
	}
}

// readScript calls exec for each command of file, one a line ('#' starts
// a comment), keeping *line at the current line, until exec returns
// false. It reports whether the script ran to its end.
func readScript(t *testing.T, file string, line *int, exec func(cmd string, args []string) bool) bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		*line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if !exec(fields[0], fields[1:]) {
			return false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return true
}
