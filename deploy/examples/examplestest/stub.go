// Package examplestest lets tests check the example configurations on a
// machine that lacks their site-specific programs.
package examplestest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/script"
)

// WithStubPrograms returns path, or a copy of it in a temporary directory
// in which every program the file names — vrrp_script checks, promote,
// demote and fence_peer hooks, notify scripts — is one stub that exits 0,
// and every MySQL credentials file one stub file (mode 0600):
// /opt/check_nginx.sh is not on this machine, and `config check` wants
// each to exist. The rest of the file is judged as written.
func WithStubPrograms(t testing.TB, path string) string {
	t.Helper()
	c, err := config.LoadQuorum(path)
	if err != nil {
		t.Fatal(err)
	}
	var programs, credentials []string
	cmdline := func(line string) {
		if line == "" {
			return
		}
		argv, err := script.Split(line)
		if err != nil || len(argv) == 0 {
			t.Fatalf("%s: command line %q: %v", path, line, err)
		}
		programs = append(programs, argv[0])
	}
	notify := func(n config.NotifyScripts) {
		for _, l := range []string{n.NotifyMaster, n.NotifyBackup, n.NotifyFault, n.NotifyStop, n.Notify} {
			cmdline(l)
		}
	}
	for _, s := range c.Script {
		cmdline(s.Script)
	}
	for _, g := range c.Sync {
		notify(g.NotifyScripts)
	}
	for _, in := range c.Instance {
		notify(in.NotifyScripts)
		if m := in.MySQL; m != nil {
			for _, f := range []string{m.CredentialsFile, m.PeerCredentialsFile} {
				if f != "" {
					credentials = append(credentials, f)
				}
			}
		}
		for _, hs := range [][]config.Hook{in.Promote, in.Demote, in.FencePeer} {
			for _, h := range hs {
				programs = append(programs, h.Path)
			}
		}
	}
	if len(programs) == 0 && len(credentials) == 0 {
		return path
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "stub.sh")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "credentials.cnf")
	if err := os.WriteFile(creds, []byte("[client]\nuser = leasehold\npassword = stub\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, p := range programs {
		text = strings.ReplaceAll(text, p, stub)
	}
	for _, p := range credentials {
		text = strings.ReplaceAll(text, p, creds)
	}
	out := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
