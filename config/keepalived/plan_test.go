package keepalived

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/script"
)

// checkPlan builds the plan `config check` and `run` build from the
// imported YAML, with every script and notify program replaced by an
// executable stub under a temporary directory (the plan checks that they
// exist and are safe): nothing that imports may fail it.
func checkPlan(t *testing.T, im *Imported) {
	t.Helper()
	c, err := config.Parse("leasehold.yaml", im.YAML)
	if err != nil {
		t.Fatalf("the YAML does not parse again: %v", err)
	}
	dir := t.TempDir()
	stub := func(cmd *string) {
		if *cmd == "" {
			return
		}
		argv, err := script.Split(*cmd)
		if err != nil {
			t.Fatalf("%q: %v", *cmd, err)
		}
		p := filepath.Join(dir, argv[0])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		*cmd = script.Join(append([]string{p}, argv[1:]...))
	}
	notify := func(n *config.NotifyScripts) {
		for _, cmd := range []*string{&n.NotifyMaster, &n.NotifyBackup, &n.NotifyFault, &n.NotifyStop, &n.Notify} {
			stub(cmd)
		}
	}
	for _, s := range c.Script {
		stub(&s.Script)
	}
	for _, in := range c.Instance {
		notify(&in.NotifyScripts)
	}
	for _, g := range c.Sync {
		notify(&g.NotifyScripts)
	}
	// The virtual servers as config.Parse resolved them (the plan reads
	// these).
	stubCmd := func(cmd *script.Command) {
		if cmd != nil {
			path := cmd.Path
			stub(&path)
			cmd.Path = path
		}
	}
	for i := range c.LVS.Services {
		s := &c.LVS.Services[i]
		stubCmd(s.QuorumUp)
		stubCmd(s.QuorumDown)
		for _, r := range s.Reals {
			for _, ck := range r.Checks {
				stubCmd(ck.Command)
			}
			stubCmd(r.NotifyUp)
			stubCmd(r.NotifyDown)
		}
	}
	if _, err := daemon.NewPlan(c); err != nil {
		t.Fatalf("imported, but the plan refuses it: %v\n%s", err, im.YAML)
	}
}
