package keepalived

import (
	"github.com/leasehold/leasehold/config"

	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/script"
)

func importFile(t *testing.T, path string, opt Options) (*Imported, error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Import(path, b, opt)
}

func warningText(im *Imported) string {
	var b strings.Builder
	for _, w := range im.Warnings {
		b.WriteString(w.Error())
		b.WriteString("\n")
	}
	return b.String()
}

// The keepalived.conf files of the seed documents, both nodes of each pair,
// as published (typos, trailing comments, tabs and full-width punctuation
// in comments kept).
func TestImportSeeds(t *testing.T) {
	type want struct {
		file                 string
		node, state, iface   string
		vrid, prio           int
		vip                  string
		auth                 string // "" = none
		nopreempt, hasScript bool
		warnings             []string // substrings, each must appear with file:line
	}
	strictAuth := "dropped: keepalived ignores authentication in strict mode"
	cases := []want{
		// vrrp_strict: keepalived starts a non-owner (priority < 255) as BACKUP.
		{"nginx-000-master.conf", "LVS_01", "BACKUP", "ens33", 51, 120, "192.168.10.100/32", "", false, true,
			[]string{":15: vrrp_strict: not converted", ":27: state: instance VI_1: state MASTER: keepalived in strict mode (line 15) starts as BACKUP", ":18: vrrp_iptables: not converted", ":32: authentication: instance VI_1: " + strictAuth, ":5: notification_email: not converted"}},
		{"nginx-000-backup.conf", "LVS_02", "BACKUP", "ens33", 51, 100, "192.168.10.100/32", "", false, true,
			[]string{":13: vrrp_strict", ":28: authentication: instance VI_1: " + strictAuth}},
		// nopreempt with state MASTER: keepalived clears it (this node preempts).
		{"nginx-001-master.conf", "master", "MASTER", "eth0", 254, 100, "192.168.0.174/32", "1111", false, true,
			[]string{":26: virtual_ipaddress: 192.168.0.174: label eth0:0 dropped", ":13: nopreempt: instance VI_1: dropped: keepalived clears nopreempt with state MASTER"}},
		{"nginx-001-backup.conf", "backup", "BACKUP", "eth0", 254, 99, "192.168.0.174/32", "1111", true, true,
			[]string{":26: virtual_ipaddress: 192.168.0.174: label eth0:0 dropped"}},
		// router_id LVS_DEVEL (keepalived's sample, on both nodes) is not node.name.
		{"nginx-002-test221.conf", "", "MASTER", "eth0", 51, 100, "172.16.22.219/32", "aiker>co", false, true,
			[]string{":22: vrrp_instance.VI_1.authentication.auth_pass: longer than 8 characters", ":6: smtp_server: not converted",
				":8: router_id: router_id LVS_DEVEL is keepalived's sample value, most likely the same on every node: NOT used as node.name"}},
		{"nginx-002-test222.conf", "", "BACKUP", "eth0", 51, 90, "172.16.22.219/32", "aiker>co", false, true,
			[]string{":22: vrrp_instance.VI_1.authentication.auth_pass: longer than 8 characters"}},
		{"lvs-003-master.conf", "LVS_11", "BACKUP", "enp0s3", 51, 101, "192.168.1.99/32", "", false, false,
			[]string{":27: lvs_mode: lvs_mode all written", ":17: authentication: instance VI_1: " + strictAuth}},
		{"lvs-003-backup.conf", "LVS_12", "BACKUP", "enp0s3", 51, 100, "192.168.1.99/32", "", false, false,
			[]string{":26: lvs_mode: lvs_mode all written", ":38: nb_get_retry: virtual_server 192.168.1.99 80: real_server 192.168.1.13 80: TCP_CHECK: nb_get_retry: keepalived 2.2.7 knows it only in HTTP_GET and SSL_GET"}},
		{"mysql-002-master.conf", "MYSQL_HA", "BACKUP", "eth0", 51, 100, "192.168.0.204/32", "1111", true, false,
			[]string{":26: virtual_server: block \"virtual_server 192.168.0.204 3306\" is not closed", ":26: virtual_server: virtual_server 192.168.0.204 3306: no lb_kind keepalived accepts: it forwards by NAT"}},
		{"mysql-002-backup.conf", "MYSQL_HA", "BACKUP", "eth0", 51, 90, "192.168.0.204/32", "1111", false, false,
			[]string{":28: virtual_server: virtual_server 192.168.0.204 3306: no lb_kind keepalived accepts: it forwards by NAT"}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			im, err := importFile(t, path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// The output stands on its own: config.Parse accepts it again.
			c, err := config.Parse("again.yaml", im.YAML)
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, im.YAML)
			}
			in := c.Instance["VI_1"]
			if in == nil || len(c.Instance) != 1 {
				t.Fatalf("instances %v, want VI_1 only", c.Names())
			}
			if tc.node != "" && c.Node.Name != tc.node || in.State != tc.state || in.Interface != tc.iface ||
				in.VirtualRouterID != tc.vrid || in.Priority != tc.prio || in.NoPreempt != tc.nopreempt || in.Version != 2 {
				t.Errorf("node %q instance %+v", c.Node.Name, in)
			}
			if len(in.VIPs) != 1 || in.VIPs[0].Prefix.String() != tc.vip {
				t.Errorf("VIPs %+v, want %s", in.VIPs, tc.vip)
			}
			if got := strings.TrimRight(string(in.AuthKey[:]), "\x00"); got != tc.auth {
				t.Errorf("auth key %q, want %q", got, tc.auth)
			}
			if tc.hasScript != (len(in.TrackScript) == 1 && len(c.Script) == 1) {
				t.Errorf("track_script %v, vrrp_script %v", in.TrackScript, c.Script)
			}
			if c.Quorum.Backend != config.BackendNone {
				t.Errorf("backend %q", c.Quorum.Backend)
			}
			warned := warningText(im)
			for _, w := range tc.warnings {
				if !strings.Contains(warned, path+w) {
					t.Errorf("warnings lack %q:\n%s", path+w, warned)
				}
			}
			// Every warning about the source names a line of it.
			for _, w := range im.Warnings {
				if w.File == path && w.Line == 0 {
					t.Errorf("warning without a line: %v", w)
				}
			}
		})
	}
}

func TestImportMalformed(t *testing.T) {
	cases := []struct{ file, want string }{
		{"bad-unknown-block.conf", ":4: vrrp_instanse: unknown block \"vrrp_instanse\""},
		{"bad-missing-brace.conf", ":8: vrrp_instance: vrrp_instance inside vrrp_instance VI_1 (line 1): a '}' is missing above this line"},
		{"bad-include.conf", ":4: include: include /etc/keepalived/conf.d/*.conf: this import reads no other files"},
		{"bad-fullwidth.conf", ":1: (syntax): full-width '｛' (U+FF5B): did you mean \"{\"?"},
		{"bad-quote.conf", ":2: (syntax): unterminated quoted string"},
		// Seed 004 pasted its code boxes with line numbers.
		{"bad-004-linenumbers.conf", ":1: (syntax): line starts with \"1 |\": copied from a web page with its line numbers?"},
		// Seed 000 as the blog shows it, on one line: "#id" comments out
		// the rest, global_defs never closes.
		{"bad-000-flattened.conf", ":1: global_defs: block \"global_defs\" is not closed before the end of the file"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			im, err := importFile(t, path, Options{})
			if err == nil {
				t.Fatalf("no error; output:\n%s", im.YAML)
			}
			if !strings.Contains(err.Error(), path+tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, path+tc.want)
			}
		})
	}
}

const kaMixed = `! everything else the importer knows
global_defs {
    router_id lb9
    vrrp_version 3
    vrrp_garp_master_delay 2
    vrrp_garp_master_repeat 3
    lvs_id old_name
}
vrrp_sync_group G1 {
    group {
        V4
        V6
    }
    notify_master "/etc/keepalived/master.sh"
    sync_group_tracking_weight
}
vrrp_instance V4
{
    state MASTER
    interface eth1
    virtual_router_id 10
    advert_int 0.5
    authentication { auth_type PASS
        auth_pass secret }
    virtual_ipaddress {
        10.1.0.10/24 dev eth1 label eth1:vip brd 10.1.0.255
        10.1.0.11
    }
    unicast_src_ip 10.1.0.1
    unicast_peer {
        10.1.0.2 min_ttl 255
    }
    track_interface {
        eth2 weight -20
    }
    track_script {
        chk_web weight 10
        chk_missing
    }
    notify_backup "nsenter.sh backup # not a comment"
    notify_fault /etc/keepalived/fault.sh root
    priorty 150
    priority 100
    priority 110
    mcast_src_ip 10.1.0.1
}
vrrp_instance V6 {
    interface eth1
    virtual_router_id 11
    priority 255
    preempt_delay 5
    virtual_ipaddress {
        fd00::10/64
    }
}
vrrp_script chk_web {
    script "curl -fsS http://127.0.0.1/"
    interval 2
    weight -30
    fall 2
    rise 2
}
static_ipaddress {
    192.168.200.16/24 dev eth0
}
`

func TestImportKeepalivedSemantics(t *testing.T) {
	look := func(prog string) (string, error) {
		if prog == "curl" || prog == "nsenter.sh" {
			return "/usr/bin/" + prog, nil
		}
		return "", errors.New("not found")
	}
	im, err := Import("mixed.conf", []byte(kaMixed), Options{LookPath: look})
	if err != nil {
		t.Fatal(err)
	}
	c := im.Config
	v4, v6 := c.Instance["V4"], c.Instance["V6"]
	if v4 == nil || v6 == nil {
		t.Fatalf("instances %v\n%s", c.Names(), im.YAML)
	}
	// vrrp_version 3 applies to both; MASTER without priority would be 255
	// but V4 has one (the last of its three lines wins).
	// Both are in sync group G1, not both owners: keepalived starts them
	// as BACKUP.
	if v4.Version != 3 || v4.Priority != 110 || v4.State != "BACKUP" || v4.AdvertInt.D().Seconds() != 0.5 {
		t.Errorf("V4 = %+v", v4)
	}
	if v4.AuthKey != [8]byte{} {
		t.Errorf("VRRPv3 instance kept authentication %q", v4.AuthKey)
	}
	if len(v4.VIPs) != 2 || v4.VIPs[0].Prefix.String() != "10.1.0.10/24" || v4.VIPs[0].Dev != "eth1" {
		t.Errorf("V4 VIPs %+v", v4.VIPs)
	}
	if v4.Src.String() != "10.1.0.1" || len(v4.Peers) != 1 || v4.Peers[0].String() != "10.1.0.2" {
		t.Errorf("V4 unicast %v -> %v", v4.Src, v4.Peers)
	}
	if len(v4.Tracks) != 1 || v4.Tracks[0] != (config.TrackIface{Name: "eth2", Weight: -20}) {
		t.Errorf("V4 tracks %+v", v4.Tracks)
	}
	// The per-instance weight: a copy of the script with it.
	if len(v4.TrackScript) != 1 || v4.TrackScript[0] != "chk_web_w10" || c.Script["chk_web_w10"] == nil || c.Script["chk_web_w10"].Weight != 10 ||
		c.Script["chk_web_w10"].Script != c.Script["chk_web"].Script {
		t.Errorf("V4 track_script %v, scripts %v", v4.TrackScript, c.Script)
	}
	if v4.NotifyBackup != "/usr/bin/nsenter.sh backup # not a comment" || v4.NotifyFault != "/etc/keepalived/fault.sh" {
		t.Errorf("notify %q %q", v4.NotifyBackup, v4.NotifyFault)
	}
	if d := v4.GarpMasterDelay.D().Seconds(); d != 2 || *v4.GarpMasterRepeat != 3 {
		t.Errorf("garp %v %d (global defaults)", d, *v4.GarpMasterRepeat)
	}
	if !v6.IPv6 || v6.Version != 3 || v6.State != "BACKUP" || v6.PreemptDelay != 0 {
		t.Errorf("V6 = %+v (priority 255 starts as MASTER, so keepalived clears preempt_delay; the sync group then starts it as BACKUP)", v6)
	}
	s := c.Script["chk_web"]
	if s == nil || s.Script != "/usr/bin/curl -fsS http://127.0.0.1/" || s.Weight != -30 || s.Fall != 2 || s.Interval.D().Seconds() != 2 {
		t.Errorf("vrrp_script %+v", s)
	}
	warned := warningText(im)
	for _, w := range []string{
		"mixed.conf:7: lvs_id: global_defs lvs_id: not converted",
		"mixed.conf:22: advert_int", // none: v3 keeps 0.5
		"mixed.conf:26: virtual_ipaddress: 10.1.0.10/24: label eth1:vip dropped",
		"mixed.conf:26: virtual_ipaddress: 10.1.0.10/24: option brd 10.1.0.255 dropped",
		"mixed.conf:23: authentication: instance V4: dropped: VRRPv3 has no authentication",
		"mixed.conf:31: unicast_peer: peer 10.1.0.2: options \"min_ttl 255\" not converted",
		"mixed.conf:37: track_script: instance V4: chk_web weight 10: converted as vrrp_script chk_web_w10, a copy of chk_web with that weight",
		"mixed.conf:38: track_script: chk_missing: no vrrp_script of that name: dropped",
		"mixed.conf:40: notify_backup: \"nsenter.sh\" resolved to /usr/bin/nsenter.sh",
		"mixed.conf:41: notify_fault: user/group \"root\" not converted",
		"mixed.conf:42: priorty: unknown vrrp_instance keyword",
		"mixed.conf:44: priority: also given at line 43",
		"mixed.conf:45: unicast_src_ip: also given at line 29: the last one wins",
		"mixed.conf:51: preempt_delay: instance V6: dropped: keepalived clears it with state MASTER",
		"mixed.conf:57: script: \"curl\" resolved to /usr/bin/curl",
		"mixed.conf:63: static_ipaddress: not converted",
	} {
		if w == "mixed.conf:22: advert_int" {
			if strings.Contains(warned, w) {
				t.Errorf("VRRPv3 advert_int 0.5 was warned about:\n%s", warned)
			}
			continue
		}
		if !strings.Contains(warned, w) {
			t.Errorf("warnings lack %q:\n%s", w, warned)
		}
	}
	// The sync group is converted for real, its notify_* too.
	if !strings.Contains(string(im.YAML), "vrrp_sync_group:\n  G1:") || !strings.Contains(string(im.YAML), "      - V6") ||
		im.Config.Sync["G1"] == nil || len(im.Config.Sync["G1"].Group) != 2 {
		t.Errorf("sync group not converted:\n%s", im.YAML)
	}
	if g := im.Config.Sync["G1"]; g == nil || g.NotifyMaster != "/etc/keepalived/master.sh" || g.NotifyTimeout.D() != 10*time.Second {
		t.Errorf("sync group notify_master not converted: %+v\n%s", g, im.YAML)
	}
	if strings.Contains(warned, "notify_master: "+notYet) {
		t.Errorf("sync group notify_master still reported as not supported:\n%s", warned)
	}
}

func TestImportKeepalivedv2Rules(t *testing.T) {
	conf := `vrrp_instance A {
    state MASTER
    interface eth0
    virtual_router_id 7
    advert_int 0.4
    nopreempt
    virtual_ipaddress {
        10.0.0.7
    }
}
`
	im, err := Import("v2.conf", []byte(conf), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := im.Config.Instance["A"]
	if a.Priority != 255 || a.AdvertInt.D().Seconds() != 1 || !a.Accept {
		t.Errorf("A = %+v: want priority 255 (MASTER without priority), advert 1 s (rounded), accept (keepalived default)", a)
	}
	warned := warningText(im)
	for _, w := range []string{"v2.conf:2: priority: instance A: no priority with state MASTER: keepalived uses 255",
		"v2.conf:5: advert_int: instance A: 0.4 s is not whole seconds: VRRPv2 rounds to 1 s"} {
		if !strings.Contains(warned, w) {
			t.Errorf("warnings lack %q:\n%s", w, warned)
		}
	}
}

// Problems only config.Parse sees are reported at the keepalived line.
func TestImportMapsCheckErrors(t *testing.T) {
	conf := `vrrp_instance A {
    interface eth0
    virtual_router_id 7
    virtual_ipaddress {
        10.0.0.7
    }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 7
    virtual_ipaddress {
        10.0.0.300
    }
}
vrrp_instance C {
    virtual_router_id 9
    virtual_ipaddress {
        10.0.0.9
    }
}
`
	_, err := Import("dup.conf", []byte(conf), Options{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		"dup.conf:10: vrrp_instance.B.virtual_router_id: VRID 7 on eth0 is also used by instance A",
		"dup.conf:11: vrrp_instance.B.virtual_ipaddress[0]: \"10.0.0.300\" is not an IP address",
		"dup.conf:15: vrrp_instance.C.interface: required",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// --quorum etcd|raft: the output still says backend none, and its
// commented template is a valid quorum section once uncommented.
func TestImportQuorumTemplates(t *testing.T) {
	for _, q := range []string{config.BackendEtcd, config.BackendRaft} {
		t.Run(q, func(t *testing.T) {
			im, err := importFile(t, "testdata/nginx-001-master.conf", Options{Quorum: q, NodeName: "lb1"})
			if err != nil {
				t.Fatal(err)
			}
			if im.Config.Quorum.Backend != config.BackendNone || im.Config.Node.Name != "lb1" {
				t.Fatalf("backend %q node %q", im.Config.Quorum.Backend, im.Config.Node.Name)
			}
			var out []string
			in := false
			for _, l := range strings.Split(string(im.YAML), "\n") {
				switch {
				case strings.HasPrefix(l, "  # --quorum "+q):
					in = true
					continue
				case in && strings.HasPrefix(l, "  # Fill in"):
					continue
				case l == "  backend: none":
					continue
				case in && strings.HasPrefix(l, "  # "):
					l = "  " + strings.TrimPrefix(l, "  # ")
				case in:
					in = false
				}
				out = append(out, l)
			}
			c, err := config.Parse("filled.yaml", []byte(strings.Join(out, "\n")))
			if err != nil {
				t.Fatalf("template does not parse once uncommented: %v\n%s", err, strings.Join(out, "\n"))
			}
			if c.Quorum.Backend != q {
				t.Errorf("backend %q", c.Quorum.Backend)
			}
		})
	}
	if _, err := Import("x.conf", []byte("vrrp_instance A {\n}\n"), Options{Quorum: "zk"}); err == nil {
		t.Error("quorum zk accepted")
	}
}

// isControl: what a terminal would interpret, but a line break.
func isControl(c rune) bool { return c < 0x20 && c != '\n' || c == 0x7f || c >= 0x80 && c < 0xa0 }

func FuzzImportKeepalived(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.conf")
	corpus, _ := filepath.Glob("testdata/corpus/*/*.conf")
	for _, p := range append(files, corpus...) {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(kaMixed))
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := Import("f.conf", data, Options{ConfigID: "lb1"})
		if err != nil {
			if strings.ContainsFunc(err.Error(), isControl) {
				t.Fatalf("a control byte in the error: %q", err)
			}
			// The generated YAML is always well-formed: its errors are
			// the input's, mapped to its lines.
			if strings.Contains(err.Error(), "leasehold.yaml: (syntax)") {
				t.Fatalf("the generated YAML does not parse: %v", err)
			}
			return
		}
		if strings.ContainsFunc(warningText(im), isControl) {
			t.Fatalf("a control byte in the warnings: %q", warningText(im))
		}
		// Whatever converts must parse on its own.
		if _, err := config.Parse("f.yaml", im.YAML); err != nil {
			t.Fatalf("converted output does not parse: %v\n%s", err, im.YAML)
		}
		for _, w := range im.Warnings {
			if w.File == "f.conf" && w.Line < 0 {
				t.Fatal(fmt.Sprint("bad line ", w))
			}
		}
	})
}

// Script and notify command lines convert to what keepalived runs: its
// first pass over the line (quotes of both kinds, escapes kept), then
// script.Split at run time.
func TestImportKeepalivedCommandLines(t *testing.T) {
	cases := []struct {
		line string
		argv []string
	}{
		{`notify_master "/usr/local/bin/vrrp.sh MASTER VI_1"`, []string{"/usr/local/bin/vrrp.sh", "MASTER", "VI_1"}},
		{`notify_master '/usr/local/bin/vrrp.sh MASTER VI_1'`, []string{"/usr/local/bin/vrrp.sh", "MASTER", "VI_1"}},
		// keepalived.conf(5), "Quoted strings" (the user and group are dropped, with a warning).
		{`notify_master "/etc/keepalived/notify_event.sh ' spaces\\x20f\x69le ' '\"s p a c e \"' SG1.low master" root root`,
			[]string{"/etc/keepalived/notify_event.sh", ` spaces\x20file `, `"s p a c e "`, "SG1.low", "master"}},
		{`notify_master /opt/my\ dir/vrrp.sh # a comment`, []string{"/opt/my dir/vrrp.sh"}},
		{`script "bash -c '</dev/tcp/127.0.0.1/80'"`, []string{"/usr/bin/bash", "-c", "</dev/tcp/127.0.0.1/80"}},
		{`script '/bin/sh -c "exit 0"'`, []string{"/bin/sh", "-c", "exit 0"}},
		{`script /usr/bin/killall -0 haproxy`, []string{"/usr/bin/killall", "-0", "haproxy"}},
		// Run by keepalived 2.2.7 (Debian) in a network namespace, its
		// script recording its argv: these arguments, exactly.
		{`script '/tmp/kt/rec.sh s2 a "b c" d'`, []string{"/tmp/kt/rec.sh", "s2", "a", "b c", "d"}},
		{`script "/tmp/kt/rec.sh s4 'it''s' a'b'c ''"`, []string{"/tmp/kt/rec.sh", "s4", "its", "abc", ""}},
	}
	look := func(prog string) (string, error) { return "/usr/bin/" + prog, nil }
	for _, c := range cases {
		conf := "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  10.0.0.1\n }\n"
		if strings.HasPrefix(c.line, "script") {
			conf = "vrrp_script chk {\n " + c.line + "\n}\n" + conf + " track_script {\n  chk\n }\n}\n"
		} else {
			conf += " " + c.line + "\n}\n"
		}
		im, err := Import("k.conf", []byte(conf), Options{LookPath: look})
		if err != nil {
			t.Errorf("%s: %v", c.line, err)
			continue
		}
		cmd := im.Config.Instance["VI_1"].NotifyMaster
		if s := im.Config.Script["chk"]; s != nil {
			cmd = s.Script
		}
		if argv, err := script.Split(cmd); err != nil || !slices.Equal(argv, c.argv) {
			t.Errorf("%s\nconverted to %q, which runs %q, %v\nwant %q", c.line, cmd, argv, err, c.argv)
		}
		if warned := strings.Contains(warningText(im), "keepalived runs"); warned != strings.HasSuffix(c.line, "-0 haproxy") {
			t.Errorf("%s: warned about words after an unquoted command: %v\n%s", c.line, warned, warningText(im))
		}
		if warned := strings.Contains(warningText(im), "decoded them twice"); warned != strings.Contains(c.line, `\`) {
			t.Errorf("%s: warned about escapes: %v\n%s", c.line, warned, warningText(im))
		}
	}
}

func TestImportKeepalivedCommandLineErrors(t *testing.T) {
	conf := "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  10.0.0.1\n }\n notify_master \"/bin/sh -c 'exit 0\"\n}\n"
	_, err := Import("k.conf", []byte(conf), Options{})
	if want := `k.conf:7: notify_master: "/bin/sh -c 'exit 0": script: bad command line: missing terminating '`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v\nwant it to contain %s", err, want)
	}
}
