package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/config"
)

func TestConfigImportCommand(t *testing.T) {
	src := "../../config/keepalived/testdata/nginx-001-backup.conf"
	out := filepath.Join(t.TempDir(), "lb2.yaml")
	var stdout, stderr bytes.Buffer
	// Flags after the file name work too.
	code := cmdConfigImport([]string{"import-keepalived", src, "-o", out, "--quorum", "raft"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, w := range []string{
		"warning: " + src + ":26: virtual_ipaddress: 192.168.0.174: label eth0:0 dropped",
		"note: quorum.backend is still none: a commented raft section",
		"1 instance(s) converted to " + out,
	} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
		}
	}
	c, err := config.Load(out)
	if err != nil {
		t.Fatalf("written file does not load: %v", err)
	}
	if c.Instance["VI_1"].Priority != 99 {
		t.Errorf("VI_1 = %+v", c.Instance["VI_1"])
	}
	// No silent overwrite.
	stderr.Reset()
	if code := cmdConfigImport([]string{"-o", out, src}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "use --force") {
		t.Errorf("overwrite: exit %d, %s", code, stderr.String())
	}
	stderr.Reset()
	if code := cmdConfigImport([]string{"--force", "-o", out, src}, &stdout, &stderr); code != 0 {
		t.Errorf("--force: exit %d, %s", code, stderr.String())
	}

	// stdout, and errors with file:line.
	stdout.Reset()
	stderr.Reset()
	if code := cmdConfigImport([]string{"../../config/keepalived/testdata/lvs-003-master.conf"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "virtual_router_id: 51") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	stderr.Reset()
	bad := "../../config/keepalived/testdata/bad-unknown-block.conf"
	if code := cmdConfigImport([]string{bad}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), bad+":4: vrrp_instanse") {
		t.Errorf("bad input: exit %d, %s", code, stderr.String())
	}
	if code := cmdConfigImport(nil, &stdout, &stderr); code != 2 {
		t.Errorf("no file: exit %d", code)
	}
	if code := cmdConfigImport([]string{"--quorum", "zk", src}, &stdout, &stderr); code != 1 {
		t.Errorf("--quorum zk: exit %d", code)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}

// The command reads includes relative to the file, takes --config-id for
// @ID lines, and counts the LVS blocks it did not convert.
func TestConfigImportIncludesConditionalsLVS(t *testing.T) {
	corpus := "../../config/keepalived/testdata/corpus/families/"
	var stdout, stderr bytes.Buffer
	if code := cmdConfigImport([]string{corpus + "include.conf"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "  VI_2:") {
		t.Errorf("include: exit %d\n%s\n%s", code, stderr.String(), stdout.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := cmdConfigImport([]string{corpus + "conditional.conf"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "--config-id") {
		t.Errorf("no --config-id: exit %d\n%s", code, stderr.String())
	}
	stderr.Reset()
	if code := cmdConfigImport([]string{"--config-id", "lb1", corpus + "conditional.conf"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "priority: 150") {
		t.Errorf("--config-id lb1: exit %d\n%s\n%s", code, stderr.String(), stdout.String())
	}
	stderr.Reset()
	if code := cmdConfigImport([]string{corpus + "lvs-mixed.conf"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "1 virtual server(s) converted with lvs_mode all") ||
		!strings.Contains(stdout.String(), "virtual_server:\n  - ip: 192.0.2.10") {
		t.Errorf("LVS: exit %d\n%s", code, stderr.String())
	}
}
