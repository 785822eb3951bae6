// Package docs holds leasehold's documentation; this test keeps its links
// (and the README's) pointing at files in the repository.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	link    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#+ (.+)$`)
	notSlug = regexp.MustCompile(`[^a-z0-9 \-]`)
)

// slug is GitHub's anchor for a heading.
func slug(h string) string {
	return strings.ReplaceAll(notSlug.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), ""), " ", "-")
}

// Every relative link in README.md and docs/*.md names a file (or
// directory) in the repository, and its #anchor a heading of that file;
// no link is an absolute path (a file on the author's machine).
func TestLinks(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.md")
	files = append(files, "../README.md")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			if filepath.IsAbs(path) {
				t.Errorf("%s: link %q is an absolute path: link files in the repository, relatively", f, target)
				continue
			}
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), path)
			}
			abs, _ := filepath.Abs(dest)
			if rel, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %q leaves the repository", f, target)
				continue
			}
			if _, err := os.Stat(dest); err != nil {
				t.Errorf("%s: link %q: %v", f, target, err)
				continue
			}
			if anchor == "" {
				continue
			}
			db, _ := os.ReadFile(dest)
			found := false
			for _, h := range heading.FindAllStringSubmatch(string(db), -1) {
				found = found || slug(h[1]) == anchor
			}
			if !found {
				t.Errorf("%s: link %q: no heading in %s has the anchor #%s", f, target, dest, anchor)
			}
		}
	}
}
