package keepalived

import (
	"strings"
	"testing"

	"github.com/leasehold/leasehold/config"
)

const lvsSyncBase = `vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.168.1.99
    }
%s}
virtual_server 192.168.1.99 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.168.1.11 80 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`

// lvs_sync_daemon (keepalived 2's global form and the older instance
// form) is written commented; uncommented with a quorum it is the sync
// daemon config.Parse resolves, following the instance.
func TestImportLVSSyncDaemon(t *testing.T) {
	for _, tc := range []struct {
		name, global, instance string
		iface                  string
		id                     uint8
		maxlen                 uint16
		group                  string
	}{
		{"global", "global_defs {\n   lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8848 ttl 2 group 224.0.0.81\n}\n", "", "eth1", 7, 1400, "224.0.0.81"},
		{"instance", "", "    lvs_sync_daemon_interface eth2\n", "eth2", 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, err := Import("ka.conf", []byte(tc.global+strings.Replace(lvsSyncBase, "%s", tc.instance, 1)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if im.Config.LVS.Sync != nil {
				t.Fatal("the sync daemon is written for real under backend none")
			}
			var lines []string
			on := false
			for _, l := range strings.Split(string(im.YAML), "\n") {
				switch {
				case strings.HasPrefix(l, "# lvs_sync_daemon:"):
					on, l = true, "lvs_sync_daemon:"
				case on && strings.HasPrefix(l, "  # "):
					l = "  " + strings.TrimPrefix(l, "  # ")
				default:
					on = false
				}
				lines = append(lines, l)
			}
			y := strings.Replace(strings.Join(lines, "\n"), "  backend: none\n", "  backend: etcd\n  etcd: {endpoints: [\"https://10.9.0.1:2379\"]}\n", 1)
			c, err := config.Parse("leasehold.yaml", []byte(y))
			if err != nil {
				t.Fatalf("uncommented: %v\n%s", err, y)
			}
			s := c.LVS.Sync
			if s == nil || s.Interface != tc.iface || s.Group != "VI_1" || s.SyncID != tc.id || s.MaxLen != tc.maxlen ||
				tc.group != "" && s.McastAddr.String() != tc.group {
				t.Fatalf("sync daemon %+v\n%s", s, y)
			}
			found := false
			for _, w := range im.Warnings {
				found = found || strings.Contains(w.Error(), "lvs_sync_daemon: written commented")
			}
			if !found {
				t.Errorf("no warning says it is commented: %v", im.Warnings)
			}
		})
	}
}

func TestImportLVSSyncDaemonRefusals(t *testing.T) {
	for line, want := range map[string]string{
		"lvs_sync_daemon eth1":                        "want INTERFACE VRRP_INSTANCE",
		"lvs_sync_daemon eth1 VI_1 id 300":            `id "300": want a whole number 0-255`,
		"lvs_sync_daemon eth1 VI_1 group 10.0.0.1":    `group "10.0.0.1": want a multicast address`,
		"lvs_sync_daemon eth1 VI_1 speed 9":           `unknown option "speed"`,
		"lvs_sync_daemon eth1 VI_1 id":                "id needs a value",
		"lvs_sync_daemon eth1 VI_1 id 1 id 2":         "id given twice",
		"lvs_sync_daemon averyveryverylongname0 VI_1": "at most 15 characters",
	} {
		_, err := Import("ka.conf", []byte("global_defs {\n   "+line+"\n}\n"+strings.Replace(lvsSyncBase, "%s", "", 1)), Options{})
		if err == nil || !strings.Contains(err.Error(), "ka.conf:2") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want ka.conf:2 and %q", line, err, want)
		}
	}
	// An instance that does not exist, or no virtual server: a warning, not written.
	im, err := Import("ka.conf", []byte("global_defs {\n   lvs_sync_daemon eth1 VI_9\n}\n"+strings.Replace(lvsSyncBase, "%s", "", 1)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(im.YAML), "lvs_sync_daemon:") || !strings.Contains(strings.Join(warnStrings(im), "\n"), "no vrrp_instance VI_9") {
		t.Errorf("sync daemon for a missing instance:\n%s\n%v", im.YAML, im.Warnings)
	}
}

func warnStrings(im *Imported) []string {
	var s []string
	for _, w := range im.Warnings {
		s = append(s, w.Error())
	}
	return s
}
