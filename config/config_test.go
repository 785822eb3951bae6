package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `
node: {name: lb1}
quorum: {backend: none}
vrrp_instance:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    priority: 120
    advert_int: 1
    authentication: {auth_type: PASS, auth_pass: "keepsync123"}
    virtual_ipaddress: [192.168.10.100, "192.168.10.101/24 dev eth1"]
  VI_6:
    interface: eth0
    virtual_router_id: 52
    advert_int: 0.1
    virtual_ipaddress: ["fd00::100/64"]
`

func TestParseGood(t *testing.T) {
	c, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	v1 := c.Instance["VI_1"]
	if v1.Version != 2 || v1.Priority != 120 || v1.AdvertInt.D() != time.Second || v1.State != "BACKUP" {
		t.Errorf("VI_1 = %+v", v1)
	}
	if string(v1.AuthKey[:]) != "keepsync" {
		t.Errorf("auth key %q, want the first 8 bytes", v1.AuthKey)
	}
	if len(v1.VIPs) != 2 || v1.VIPs[0].Prefix.String() != "192.168.10.100/32" || v1.VIPs[1].Dev != "eth1" {
		t.Errorf("VIPs = %+v", v1.VIPs)
	}
	v6 := c.Instance["VI_6"]
	if v6.Version != 3 || !v6.IPv6 || v6.AdvertInt.D() != 100*time.Millisecond || v6.Priority != DefaultPriority {
		t.Errorf("VI_6 = %+v", v6)
	}
	warned := strings.Join(c.Warnings, "\n")
	for _, w := range []string{"NO split-brain protection", "truncated to \"keepsync\""} {
		if !strings.Contains(warned, w) {
			t.Errorf("warnings %q lack %q", warned, w)
		}
	}
}

// With a quorum the kernel fence is required unless the file says
// otherwise; plain VRRP (backend none) has nothing to fence with.
func TestFenceDefault(t *testing.T) {
	raft := "quorum: {backend: raft, raft: {bind: 10.0.0.1:7946, client_bind: 10.0.0.1:7947, data_dir: /tmp/r,\n" +
		"  peers: [{id: lb1, addr: 10.0.0.1:7946, client: 10.0.0.1:7947}, {id: lb2, addr: 10.0.0.2:7946, client: 10.0.0.2:7947},\n" +
		"          {id: w, addr: 10.0.0.3:7946, client: 10.0.0.3:7947}]}}\n"
	etcd := "quorum: {backend: etcd, etcd: {endpoints: [\"http://10.0.0.5:2379\"]}}\n"
	instance := "vrrp_instance: {VI_1: {interface: eth0, virtual_router_id: 51, virtual_ipaddress: [192.168.10.100]}}\n"
	for _, tc := range []struct{ quorum, fencing, want string }{
		{raft, "", "required"},
		{etcd, "", "required"},
		{"quorum: {backend: none}\n", "", "auto"},
		{raft, "fencing: {nftables: auto}\n", "auto"},
		{etcd, "fencing: {nftables: off}\n", "off"},
		{"quorum: {backend: none}\n", "fencing: {nftables: required}\n", "required"},
	} {
		c, err := Parse("f.yaml", []byte("node: {name: lb1}\n"+tc.quorum+tc.fencing+instance))
		if err != nil {
			t.Fatal(err)
		}
		if c.Fencing.NFTables != tc.want {
			t.Errorf("%s%s: fencing.nftables %q, want %q", tc.quorum, tc.fencing, c.Fencing.NFTables, tc.want)
		}
	}
}

func TestParseErrorsNameFileLineKey(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key", "quorum: {backend: none}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 5\n    priorty: 100\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:6: priorty: unknown key"},
		{"vrid range", "quorum: {backend: none}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 256\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:5: vrrp_instance.VI_1.virtual_router_id: 256: want 1-255"},
		{"v2 fraction", "quorum: {backend: none}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 5\n    advert_int: 0.5\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:6: vrrp_instance.VI_1.advert_int: 500ms: VRRPv2 needs whole seconds"},
		{"v3 range", "quorum: {backend: none}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    version: 3\n    virtual_router_id: 5\n    advert_int: 41\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:7: vrrp_instance.VI_1.advert_int: 41s: VRRPv3 needs 0.01-40.95 s"},
		{"ipv6 v2", "quorum: {backend: none}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    version: 2\n    virtual_router_id: 5\n    virtual_ipaddress: [\"fd00::1\"]\n",
			"bad.yaml:5: vrrp_instance.VI_1.version: 2 with IPv6 addresses"},
		{"no backend", "vrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress: [10.0.0.1]\n",
			"quorum.backend: required"},
		{"bad vip", "quorum: {backend: none}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress:\n      - 10.0.0.300\n",
			"bad.yaml:7: vrrp_instance.VI_1.virtual_ipaddress[0]: \"10.0.0.300\" is not an IP address"},
		{"bad type", "quorum: {backend: none}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: five\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:5: vrrp_instance.VI_1.virtual_router_id: cannot unmarshal !!str `five`"},
		{"fraction for an integer", "quorum: {backend: none}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 5\n    priority: 100.5\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:6: vrrp_instance.VI_1.priority: 100.5: want a whole number"},
		{"fraction in a list", "quorum: {backend: none}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 5\n    garp_master_repeat: 1e1\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:6: vrrp_instance.VI_1.garp_master_repeat: 1e1: want a whole number"},
		{"bad type in a flow mapping", "quorum: {backend: none}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 5\n    authentication: {auth_type: PASS, auth_pass: [x]}\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:6: vrrp_instance.VI_1.authentication.auth_pass: cannot unmarshal !!seq into string"},
		{"long value shortened", "quorum: {backend: none}\nvrrp_instance:\n  VI_1: {interface: eth0, virtual_router_id: 5, priority: averyveryverylongvalue, virtual_ipaddress: [10.0.0.1]}\n",
			"bad.yaml:3: vrrp_instance.VI_1.priority: cannot unmarshal !!str `averyve...` into int"},
		{"dup vrid", "quorum: {backend: none}\nvrrp_instance:\n  A:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress: [10.0.0.1]\n  B:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress: [10.0.0.2]\n",
			"bad.yaml:9: vrrp_instance.B.virtual_router_id: VRID 5 on eth0 is also used by instance A"},
		{"status not local", "quorum: {backend: none}\nstatus: {listen: \"10.0.0.1:80\"}\nvrrp_instance:\n  A:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:2: status.listen: 10.0.0.1 is not a loopback address"},
		{"v3 auth", "quorum: {backend: none}\nvrrp_instance:\n  A:\n    interface: eth0\n    version: 3\n    virtual_router_id: 5\n    authentication: {auth_type: PASS, auth_pass: x}\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:7: vrrp_instance.A.authentication: VRRPv3 has no authentication"},
		{"hmac relative key", "quorum: {backend: none}\nvrrp_instance:\n  A:\n    interface: eth0\n    version: 3\n    virtual_router_id: 5\n    authentication: {auth_type: HMAC, key_file: vrrp.key}\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:7: vrrp_instance.A.authentication.key_file: \"vrrp.key\": want an absolute path"},
		{"hmac with auth_pass", "quorum: {backend: none}\nvrrp_instance:\n  A:\n    interface: eth0\n    virtual_router_id: 5\n    authentication: {auth_type: HMAC, auth_pass: x, key_file: /k}\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:6: vrrp_instance.A.authentication.auth_pass: not used with auth_type HMAC"},
		{"key_file without hmac", "quorum: {backend: none}\nvrrp_instance:\n  A:\n    interface: eth0\n    virtual_router_id: 5\n    authentication: {auth_type: PASS, auth_pass: x, key_file: /k}\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:6: vrrp_instance.A.authentication.key_file: key_file given without auth_type HMAC"},
		{"sync notify relative", "quorum: {backend: none}\nvrrp_instance:\n  A:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress: [10.0.0.1]\n  B:\n    interface: eth0\n    virtual_router_id: 6\n    virtual_ipaddress: [10.0.0.2]\nvrrp_sync_group:\n  G:\n    group: [A, B]\n    notify: notify.sh\n",
			"bad.yaml:14: vrrp_sync_group.G.notify: \"notify.sh\": an absolute path is required"},
		{"script unbalanced quote", "quorum: {backend: none}\nvrrp_script:\n  chk:\n    script: \"/bin/sh -c 'exit 0\"\nvrrp_instance:\n  A:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:4: vrrp_script.chk.script: \"/bin/sh -c 'exit 0\": script: bad command line: missing terminating ' for the quote at byte 11"},
		{"script relative", "quorum: {backend: none}\nvrrp_script:\n  chk:\n    script: \"'bash' -c true\"\nvrrp_instance:\n  A:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress: [10.0.0.1]\n",
			"bad.yaml:4: vrrp_script.chk.script: \"'bash' -c true\": an absolute path is required"},
		{"notify trailing backslash", "quorum: {backend: none}\nvrrp_instance:\n  A:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress: [10.0.0.1]\n    notify_master: '/usr/local/bin/vrrp.sh MASTER\\'\n",
			"bad.yaml:7: vrrp_instance.A.notify_master: \"/usr/local/bin/vrrp.sh MASTER\\\\\": script: bad command line: backslash at the end"},
		{"duplicate instance", "quorum: {backend: none}\nvrrp_instance:\n  A:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress: [10.0.0.1]\n  A:\n    interface: eth1\n",
			"bad.yaml:7: vrrp_instance.A: also given at line 3"},
		{"unknown key in a flow mapping", "quorum: {backend: none, ttl: 2s, tll: 3s}\nvrrp_instance:\n  A: {interface: eth0, virtual_router_id: 5, virtual_ipaddress: [10.0.0.1]}\n",
			"bad.yaml:1: tll: unknown key"},
		{"syntax", "quorum: {backend: none\n", "bad.yaml:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// Command lines with arguments and quotes, as keepalived's own samples
// write them, pass validation (and run as split: see script.Split).
func TestParseCommandLines(t *testing.T) {
	const y = `
quorum: {backend: none}
vrrp_script:
  chk_http:
    script: "/bin/bash -c '</dev/tcp/127.0.0.1/80'"
vrrp_instance:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    virtual_ipaddress: [10.0.0.1]
    track_script: [chk_http]
    notify_master: "/usr/local/bin/vrrp.sh MASTER VI_1"
    notify: '"/opt/my scripts/notify.sh" --log /var/log/vrrp'
`
	c, err := Parse("ok.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if in := c.Instance["VI_1"]; in.NotifyMaster != "/usr/local/bin/vrrp.sh MASTER VI_1" {
		t.Errorf("notify_master %q", in.NotifyMaster)
	}
}

func TestDeployExampleIsValid(t *testing.T) {
	files, _ := filepath.Glob("../deploy/*.yaml")
	more, _ := filepath.Glob("../deploy/examples/*.yaml")
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no example configs found in deploy/")
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat("../deploy/leasehold.yaml"); err != nil {
		t.Error("deploy/leasehold.yaml, the annotated example, is missing")
	}
}
