package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckAndRunAgree: whatever `config check` refuses, `run` refuses with
// the same message (file, line and key), before it touches anything; the
// bad files are all refused. A file check accepts is not run here (it
// would start a daemon): both go through daemon.Load.
func TestCheckAndRunAgree(t *testing.T) {
	bad, _ := filepath.Glob("../../daemon/testdata/bad/*.yaml")
	if len(bad) < 10 {
		t.Fatalf("%d bad files", len(bad))
	}
	examples, _ := filepath.Glob("../../deploy/examples/*.yaml")
	examples = append(examples, "../../deploy/leasehold.yaml")
	good := "../../daemon/testdata/good.yaml"
	for _, f := range append(append(bad, examples...), good) {
		var cout, cerr bytes.Buffer
		ccode := cmdConfig([]string{"check", f}, &cout, &cerr)
		if f == good || (ccode == 0 && !strings.Contains(f, "/bad/")) {
			if ccode != 0 {
				t.Errorf("%s: check exit %d: %s", f, ccode, cerr.String())
			}
			continue
		}
		var rout, rerr bytes.Buffer
		rcode := cmdRun([]string{"-c", f}, &rout, &rerr)
		if ccode != 1 || rcode != 1 {
			t.Errorf("%s: check exit %d, run exit %d; want 1 and 1", f, ccode, rcode)
			continue
		}
		if cerr.String() != rerr.String() || !strings.HasPrefix(cerr.String(), f+":") {
			t.Errorf("%s: check and run disagree:\ncheck: %s\nrun:   %s", f, cerr.String(), rerr.String())
		}
	}
}

// The witness unit checks its file with `witness --check` (config check
// wants VRRP instances and says where to look instead).
func TestWitnessCheck(t *testing.T) {
	f := "../../deploy/examples/witness/witness.yaml"
	var out, errb bytes.Buffer
	if code := cmdWitnessCtx(t.Context(), []string{"--check", "-c", f}, &out, &errb); code != 0 {
		t.Fatalf("witness --check: exit %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := cmdConfig([]string{"check", f}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "leasehold witness --check") {
		t.Fatalf("config check of a witness file: exit %d: %s", code, errb.String())
	}
}
