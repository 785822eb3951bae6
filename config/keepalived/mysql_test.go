package keepalived

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/config"
)

// TestMySQLProposalIsUsable: the proposed mysql section of seed 002 and of
// a vrrp_script check, uncommented, with the lines marked SUPPLY filled in
// and a quorum, is a mysql section config.Parse accepts (the resource's
// own rules included: it reads the credentials file).
func TestMySQLProposalIsUsable(t *testing.T) {
	dir := t.TempDir()
	cred := filepath.Join(dir, "mysql.cnf")
	if err := os.WriteFile(cred, []byte("[client]\nuser = leasehold\npassword = x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, inst, local string }{
		{"testdata/mysql-002-master.conf", "VI_1", "address: \"192.168.0.202:3306\""},
		{"testdata/corpus/families/mysql-script-raft.conf", "DB", "socket: /run/mysqld/mysqld.sock"},
	} {
		im, err := importFile(t, tc.file, Options{Quorum: config.BackendRaft})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		var section []string
		on := false
		for _, l := range strings.Split(string(im.YAML), "\n") {
			switch {
			case strings.TrimSpace(l) == "# mysql:":
				on = true
			case on && !strings.HasPrefix(l, "    #   "):
				on = false
			}
			if !on {
				continue
			}
			l = strings.Replace(l, "    # ", "    ", 1)
			l = strings.Replace(l, "/etc/leasehold/mysql.cnf", cred, 1)
			l = strings.Replace(l, "HOST:3306", "192.168.0.203:3306", 1)
			section = append(section, l)
		}
		if len(section) < 4 || !strings.Contains(strings.Join(section, "\n"), tc.local) {
			t.Fatalf("%s: no usable proposal in\n%s", tc.file, im.YAML)
		}
		// The import with a quorum filled in (as the operator would) and
		// the section under the instance.
		y := strings.Replace(string(im.YAML), "  backend: none\n", "  backend: etcd\n  etcd: {endpoints: [\"https://10.9.0.1:2379\"]}\n", 1)
		y = strings.Replace(y, "  "+tc.inst+":", "  "+tc.inst+":\n"+strings.Join(section, "\n"), 1)
		c, err := config.Parse("leasehold.yaml", []byte(y))
		if err != nil {
			t.Fatalf("%s: the filled-in proposal does not parse: %v\n%s", tc.file, err, y)
		}
		m := c.Instance[tc.inst].MySQL
		if m == nil || m.CredentialsFile != cred || m.Check.Weight != 0 || m.Check.Interval.D() == 0 {
			t.Errorf("%s: mysql section %+v", tc.file, m)
		}
	}
}
