// Package deb builds leasehold's Debian package (build.sh, run by make
// deb); this test builds it, installs it on this machine, checks what it
// installed and purges it.
package deb

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/test/nstest"
)

// installed is every path the package puts on the machine (or its
// scripts create), absent before the test and after it.
var installed = []string{
	"/usr/sbin/leasehold",
	"/lib/systemd/system/leasehold.service",
	"/lib/systemd/system/leasehold-witness.service",
	"/etc/leasehold",
	"/usr/share/doc/leasehold",
	"/usr/share/leasehold",
	"/usr/share/man/man8/leasehold.8.gz",
	"/usr/share/man/man5/leasehold.yaml.5.gz",
	"/var/lib/leasehold",
	"/etc/systemd/system/multi-user.target.wants/leasehold.service",
	"/etc/systemd/system/multi-user.target.wants/leasehold-witness.service",
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func present() []string {
	var p []string
	for _, f := range installed {
		if _, err := os.Lstat(f); err == nil {
			p = append(p, f)
		}
	}
	return p
}

// make deb, dpkg -i, what is installed (conffiles, units systemd accepts,
// the version, man pages, nothing enabled), dpkg --purge, and the machine
// as it was.
func TestInstallVerifyPurge(t *testing.T) {
	nstest.Require(t, os.Geteuid() == 0, "needs root: dpkg -i")
	for _, tool := range []string{"make", "dpkg", "dpkg-deb", "systemd-analyze"} {
		_, err := exec.LookPath(tool)
		nstest.Require(t, err == nil, tool+" is not installed")
	}
	nstest.Require(t, exec.Command("dpkg-query", "-W", "leasehold").Run() != nil,
		"a leasehold package is installed on this machine: the test would replace it")
	p := present()
	nstest.Require(t, len(p) == 0, "the package's paths exist on this machine, the test would disturb them: "+strings.Join(p, " "))

	out := t.TempDir()
	deb := strings.TrimSpace(lastLine(run(t, "make", "-s", "-C", "../..", "deb", "DEB_OUT="+out)))
	if !strings.HasPrefix(filepath.Base(deb), "leasehold_") || !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("make deb printed %q, want the .deb's path", deb)
	}
	version := run(t, "dpkg-deb", "-f", deb, "Version")
	version = strings.TrimSpace(version)
	if want := "leasehold_" + version + "_" + strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Architecture")) + ".deb"; filepath.Base(deb) != want {
		t.Errorf("package file %s, want %s", filepath.Base(deb), want)
	}

	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "leasehold").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge leasehold: %v\n%s", err, out)
		}
		if p := present(); len(p) > 0 {
			t.Errorf("left behind after purge: %v", p)
		}
	})
	run(t, "dpkg", "-i", deb)

	conffiles := run(t, "dpkg-query", "-W", "-f", "${Conffiles}", "leasehold")
	for _, f := range []string{"leasehold.yaml", "nginx-pair-lb1.yaml", "witness.yaml"} {
		if !strings.Contains(conffiles, "/etc/leasehold/examples/"+f+" ") {
			t.Errorf("conffiles lack /etc/leasehold/examples/%s:\n%s", f, conffiles)
		}
	}
	// Nothing enabled, no live config: the units cannot start unconfigured.
	for _, f := range []string{"/etc/leasehold/leasehold.yaml", "/etc/leasehold/witness.yaml",
		"/etc/systemd/system/multi-user.target.wants/leasehold.service"} {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("%s exists after install: the package must not configure or enable anything", f)
		}
	}

	units := []string{"/lib/systemd/system/leasehold.service", "/lib/systemd/system/leasehold-witness.service"}
	if out := run(t, "systemd-analyze", append([]string{"verify"}, units...)...); strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify %v:\n%s", units, out)
	}

	// The version and commit make deb stamped: the package's version and,
	// in a git checkout, HEAD.
	got := run(t, "/usr/sbin/leasehold", "version")
	fields := strings.Fields(run(t, "./version.sh"))
	if want := "leasehold " + version + " (commit " + fields[1] + ","; !strings.HasPrefix(got, want) {
		t.Errorf("leasehold version: %q, want it to start with %q", got, want)
	}
	if head, err := exec.Command("git", "-c", "safe.directory=*", "rev-parse", "HEAD").Output(); err == nil &&
		!strings.HasPrefix(string(head), strings.TrimSuffix(fields[1], "-dirty")) {
		t.Errorf("leasehold version: %q, but HEAD is %s", got, head)
	}
	run(t, "/usr/sbin/leasehold", "witness", "--check", "-c", "/etc/leasehold/examples/witness.yaml")

	if _, err := exec.LookPath("man"); err == nil {
		for _, page := range []string{"/usr/share/man/man8/leasehold.8.gz", "/usr/share/man/man5/leasehold.yaml.5.gz"} {
			cmd := exec.Command("man", "--warnings", "-l", page)
			cmd.Env = append(os.Environ(), "MANWIDTH=80")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 || !strings.Contains(stdout.String(), "\nNAME\n") {
				t.Errorf("man --warnings -l %s: %v\n%s\n%s", page, err, stderr.String(), stdout.String())
			}
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
