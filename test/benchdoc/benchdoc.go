// Package benchdoc writes benchmark figures into docs/benchmarks.md: one
// section per benchmark, replaced in place on every run, each stamped with
// the machine and the date.
package benchdoc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Machine describes this machine in one line.
func Machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %d GiB", (kb+512*1024)/(1024*1024))
	}
	return fmt.Sprintf("%d × %s%s, Linux %s, %s", runtime.NumCPU(), model, mem, kernel, runtime.Version())
}

// Record replaces (or appends) section name in the markdown file at path
// with title and body, stamped with Machine() and the date.
func Record(path, name, title, body string) error {
	begin, end := "<!-- BEGIN "+name+" -->", "<!-- END "+name+" -->"
	sec := fmt.Sprintf("%s\n## %s\n\n_Measured %s on %s._\n\n%s\n%s",
		begin, title, time.Now().UTC().Format("2006-01-02 15:04 MST"), Machine(), strings.TrimSpace(body), end)
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		old = []byte("# Benchmarks\n\nFigures written by `make bench…` targets; each section is replaced when its benchmark runs again.\n")
	} else if err != nil {
		return err
	}
	s := string(old)
	if i, j := strings.Index(s, begin), strings.Index(s, end); i >= 0 && j > i {
		s = s[:i] + sec + s[j+len(end):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + sec + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
