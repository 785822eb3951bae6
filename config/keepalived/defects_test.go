package keepalived

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/script"
)

// The defects of issue 12, each as keepalived reads the input: what the
// import gives (checked on the parsed config) or its refusal (file:line and
// a reason).

const vi1 = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n  10.0.0.1\n }\n"

type importCase struct {
	name  string
	file  string // default k.conf
	conf  string
	opt   Options
	check func(t *testing.T, c *config.Config)
	warn  []string // substrings of warnings, each with its "k.conf:LINE: "
	err   []string // substrings of the refusal, each with its "k.conf:LINE: "
}

func runImportCases(t *testing.T, cases []importCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "k.conf"
			}
			im, err := Import(file, []byte(tc.conf), tc.opt)
			if len(tc.err) > 0 {
				if err == nil {
					t.Fatalf("imported, want a refusal:\n%s", im.YAML)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			warned := warningText(im)
			for _, w := range tc.warn {
				if !strings.Contains(warned, w) {
					t.Errorf("warnings lack %q:\n%s", w, warned)
				}
			}
			if tc.check != nil {
				tc.check(t, im.Config)
			}
			checkPlan(t, im)
		})
	}
}

// Defects 1 and 2: notify_* and script command lines with arguments and
// quotes run what keepalived runs, and pass the plan run builds.
func TestIssue12CommandLines(t *testing.T) {
	runImportCases(t, []importCase{
		{name: "notify with arguments (vrrp.scripts sample)",
			conf:  vi1 + " notify_master \"/usr/local/bin/vrrp.sh  MASTER  VI_1\"\n}\n",
			check: runs(func(c *config.Config) string { return c.Instance["VI_1"].NotifyMaster }, "/usr/local/bin/vrrp.sh", "MASTER", "VI_1")},
		{name: "quoted shell command",
			conf:  "vrrp_script chk {\n script \"/bin/bash -c '</dev/tcp/127.0.0.1/80'\"\n}\n" + vi1 + " track_script {\n  chk\n }\n}\n",
			check: runs(func(c *config.Config) string { return c.Script["chk"].Script }, "/bin/bash", "-c", "</dev/tcp/127.0.0.1/80")},
		{name: "shell syntax without a shell (vrrp.localcheck sample)",
			conf: "vrrp_script chk {\n script \"</dev/tcp/127.0.0.1/80\"\n}\n" + vi1 + "}\n",
			err:  []string{`k.conf:2: script: "</dev/tcp/127.0.0.1/80" is shell syntax, but keepalived runs the command without a shell`}},
	})
}

// runs checks the command line cmd picks runs argv.
func runs(cmd func(c *config.Config) string, argv ...string) func(t *testing.T, c *config.Config) {
	return func(t *testing.T, c *config.Config) {
		got, err := script.Split(cmd(c))
		if err != nil || !slices.Equal(got, argv) {
			t.Errorf("runs %q, %v; want %q", got, err, argv)
		}
	}
}

// Defect 3: per-instance track_script weights are kept; reverse is refused
// with what to do.
func TestIssue12TrackScriptWeights(t *testing.T) {
	script := "vrrp_script chk_haproxy {\n script \"/usr/bin/killall -0 haproxy\"\n interval 2\n}\n"
	runImportCases(t, []importCase{
		{name: "weight override",
			conf: script + vi1 + " track_script {\n  chk_haproxy weight 2\n }\n}\n",
			warn: []string{"k.conf:13: track_script: instance VI_1: chk_haproxy weight 2: converted as vrrp_script chk_haproxy_w2"},
			check: func(t *testing.T, c *config.Config) {
				in := c.Instance["VI_1"]
				if !slices.Equal(in.TrackScript, []string{"chk_haproxy_w2"}) || c.Script["chk_haproxy_w2"].Weight != 2 || c.Script["chk_haproxy"].Weight != 0 {
					t.Errorf("track_script %v, scripts %+v", in.TrackScript, c.Script)
				}
			}},
		{name: "the same override in two instances: one copy",
			conf: script + vi1 + " track_script {\n  chk_haproxy weight -20\n }\n}\n" +
				strings.Replace(strings.Replace(vi1, "VI_1", "VI_2", 1), "51", "52", 1) + " track_script {\n  chk_haproxy weight -20\n }\n}\n",
			check: func(t *testing.T, c *config.Config) {
				if len(c.Script) != 2 || c.Instance["VI_2"].TrackScript[0] != "chk_haproxy_w-20" {
					t.Errorf("scripts %v, VI_2 tracks %v", c.Names(), c.Instance["VI_2"].TrackScript)
				}
			}},
		{name: "reverse",
			conf: script + vi1 + " track_script {\n  chk_haproxy weight 2 reverse\n }\n}\n",
			err:  []string{"k.conf:13: weight: instance VI_1: track_script chk_haproxy: weight 2 reverse: leasehold has no reverse weights"}},
		{name: "reverse in the vrrp_script",
			conf: "vrrp_script chk {\n script /bin/true\n weight -10 reverse\n}\n" + vi1 + "}\n",
			err:  []string{"k.conf:3: weight: vrrp_script chk: weight -10 reverse: leasehold has no reverse weights", "write weight 10"}},
		{name: "noreverse is the default",
			conf: "vrrp_script chk {\n script /bin/true\n weight -10 noreverse\n}\n" + vi1 + " track_script {\n  chk\n }\n}\n",
			check: func(t *testing.T, c *config.Config) {
				if c.Script["chk"].Weight != -10 {
					t.Errorf("weight %d", c.Script["chk"].Weight)
				}
			}},
		{name: "the address owner ignores weighted scripts",
			conf: script + strings.Replace(vi1, "priority 100", "priority 255", 1) + " track_script {\n  chk_haproxy weight 2\n }\n}\n",
			warn: []string{"k.conf:13: track_script: instance VI_1: chk_haproxy (weight 2): dropped: keepalived ignores weighted scripts of the address owner"},
			check: func(t *testing.T, c *config.Config) {
				if len(c.Instance["VI_1"].TrackScript) != 0 {
					t.Errorf("tracks %v", c.Instance["VI_1"].TrackScript)
				}
			}},
	})
}

// Defect 4: repeated list blocks append, as keepalived reads them.
func TestIssue12RepeatedBlocksAppend(t *testing.T) {
	runImportCases(t, []importCase{
		{name: "virtual_ipaddress, unicast_peer, track_*",
			conf: "vrrp_script a {\n script /bin/true\n}\nvrrp_script b {\n script /bin/true\n}\n" + vi1 +
				" virtual_ipaddress {\n  10.0.0.2\n }\n unicast_peer {\n  10.0.1.2\n }\n unicast_peer {\n  10.0.1.3\n }\n" +
				" track_script {\n  a\n }\n track_script {\n  b\n }\n track_interface {\n  eth1\n }\n track_interface {\n  eth2\n }\n}\n",
			check: func(t *testing.T, c *config.Config) {
				in := c.Instance["VI_1"]
				if len(in.VIPs) != 2 || len(in.Peers) != 2 || !slices.Equal(in.TrackScript, []string{"a", "b"}) || len(in.Tracks) != 2 {
					t.Errorf("VIPs %v peers %v scripts %v ifaces %v", in.VIPs, in.Peers, in.TrackScript, in.Tracks)
				}
			}},
	})
}

// Defect 5: valid keepalived input that was refused.
func TestIssue12ValidInput(t *testing.T) {
	dir := t.TempDir()
	must := func(name, data string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must("conf.d/10-vi1.conf", vi1+"}\n")
	must("conf.d/20-vi2.conf", strings.Replace(strings.Replace(vi1, "VI_1", "VI_2", 1), "51", "52", 1)+"}\ninclude ../scripts/*.conf\n")
	must("scripts/chk.conf", "vrrp_script chk {\n script /bin/true\n}\n")
	must("other/x.conf", "vrrp_script other {\n script /bin/true\n}\n")
	files := Options{ReadFile: os.ReadFile, Glob: filepath.Glob}
	// One file for two nodes: lb1 names its instance VI_1, with priority 150.
	conditional := "@lb1 vrrp_instance VI_1 {\n@^lb1 vrrp_instance VI_X {\n interface eth0\n virtual_router_id 51\n@lb1 priority 150\n@lb2 priority 100\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n"
	gbk := "! \xc5\xe4\xd6\xc3\xce\xc4\xbc\xfe (GBK)\n" + vi1 + " state BACKUP # \xb1\xb8\xd3\xc3\n}\n"
	runImportCases(t, []importCase{
		{name: "peer and source addresses with a prefix",
			conf: vi1 + " unicast_src_ip 10.0.0.5/24\n unicast_peer {\n  10.0.0.6/24\n  10.0.0.6\n }\n}\n",
			warn: []string{"k.conf:11: unicast_peer: instance VI_1: peer 10.0.0.6 given twice"},
			check: func(t *testing.T, c *config.Config) {
				in := c.Instance["VI_1"]
				if in.Src.String() != "10.0.0.5" || len(in.Peers) != 1 || in.Peers[0].String() != "10.0.0.6" {
					t.Errorf("src %v peers %v", in.Src, in.Peers)
				}
			}},
		{name: "include with globs and braces, relative to the including file",
			conf: "include conf.d/*.conf\ninclude {other,none}/*.conf\n",
			file: filepath.Join(dir, "k.conf"),
			opt:  files,
			check: func(t *testing.T, c *config.Config) {
				if len(c.Instance) != 2 || c.Script["chk"] == nil || c.Script["other"] == nil {
					t.Errorf("instances %v scripts %v", c.Names(), c.Script)
				}
			}},
		{name: "sync group naming a missing instance",
			conf: "vrrp_sync_group G {\n group {\n  VI_1\n  VI_9\n }\n}\n" + vi1 + "}\n",
			warn: []string{"k.conf:4: group: vrrp_sync_group G: no vrrp_instance VI_9: left out, as keepalived does"},
			check: func(t *testing.T, c *config.Config) {
				if g := c.Sync["G"]; g == nil || !slices.Equal(g.Group, []string{"VI_1"}) {
					t.Errorf("sync %+v", c.Sync)
				}
			}},
		{name: "old sync group syntax",
			conf: "vrrp_sync_group VG1 {\n  VI_1\n}\n" + vi1 + "}\n",
			warn: []string{"k.conf:2: VI_1: vrrp_sync_group VG1: instance VI_1 named without group { } (the old syntax)",
				"k.conf:1: vrrp_sync_group: vrrp_sync_group VG1 has no instances: removed, as keepalived does"},
			check: func(t *testing.T, c *config.Config) {
				if len(c.Sync) != 0 {
					t.Errorf("sync %+v", c.Sync)
				}
			}},
		{name: "a stray }",
			conf: vi1 + "}\n}\n",
			warn: []string{"k.conf:9: (syntax): '}' closes no block: ignored, as keepalived does"}},
		{name: "@conditional lines, this node",
			conf:  conditional,
			opt:   Options{ConfigID: "lb1"},
			check: instanceWithPriority("VI_1", 150)},
		{name: "@conditional lines, the other node",
			conf:  conditional,
			opt:   Options{ConfigID: "lb2"},
			check: instanceWithPriority("VI_X", 100)},
		{name: "@conditional lines without a config id",
			conf: "@lb1 vrrp_instance VI_1 {\n}\n",
			err:  []string{"k.conf:1: (syntax): conditional line \"@lb1\"", "--config-id"}},
		{name: "comments in GBK",
			conf: gbk,
			check: func(t *testing.T, c *config.Config) {
				if c.Instance["VI_1"].State != "BACKUP" {
					t.Errorf("VI_1 %+v", c.Instance["VI_1"])
				}
			}},
		{name: "a no-break space between words",
			conf: vi1 + " state\u00a0BACKUP\n}\n",
			err:  []string{`k.conf:8: (syntax): U+00A0 '\u00a0': keepalived takes it as part of a word`}},
		{name: "ideographic spaces as indentation",
			conf: vi1 + "\u3000\u3000priority 150\n}\n",
			err:  []string{`k.conf:8: (syntax): U+3000 '\u3000': keepalived`}},
		{name: "a byte order mark",
			conf: "\ufeff" + vi1 + "}\n",
			err:  []string{`k.conf:1: (syntax): U+FEFF '\ufeff': keepalived`}},
		{name: "a template, not a configuration",
			conf: vi1 + " unicast_src_ip {{ LOCAL_IP }}\n}\n",
			err:  []string{`k.conf:8: (syntax): template placeholder "{{ LOCAL_IP }}": render the template`}},
		{name: "GBK outside a comment",
			conf: vi1 + " interface \xc5\xe4\n}\n",
			err:  []string{"k.conf:8: (syntax): not valid UTF-8 outside a comment"}},
	})
	// An error in an included file names that file and its line.
	must("bad/x.conf", vi1+" priority 300\n}\n")
	_, err := Import(filepath.Join(dir, "k.conf"), []byte("include bad/x.conf\n"), files)
	if want := filepath.Join(dir, "bad/x.conf") + ":8: priority: \"300\": want a whole number 1-255"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err %v\nwant %s", err, want)
	}
	_, err = Import(filepath.Join(dir, "k.conf"), []byte("\ninclude missing.conf\n"), files)
	if want := "k.conf:2: include: include " + filepath.Join(dir, "missing.conf") + ": no such file here"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err %v\nwant %s", err, want)
	}
	must("loop.conf", "include loop.conf\n")
	if _, err = Import(filepath.Join(dir, "k.conf"), []byte("include loop.conf\n"), files); err == nil || !strings.Contains(err.Error(), "nested deeper than") {
		t.Errorf("include loop: %v", err)
	}
}

// instanceWithPriority checks the config has this one instance, with prio.
func instanceWithPriority(name string, prio int) func(t *testing.T, c *config.Config) {
	return func(t *testing.T, c *config.Config) {
		if in := c.Instance[name]; in == nil || in.Priority != prio || len(c.Instance) != 1 {
			t.Errorf("instances %v, want %s only, priority %d", c.Names(), name, prio)
		}
	}
}

// Defect 6: every error is reported, not the first of each instance.
func TestIssue12AllErrors(t *testing.T) {
	conf := "vrrp_instance VI_1 {\n nopreempt yes\n interface eth0\n virtual_router_id 300\n priority 0\n advert_int x\n virtual_ipaddress {\n  10.0.0.300\n }\n}\n" +
		"vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress {\n  10.0.0.1 dev\n }\n}\n"
	_, err := Import("k.conf", []byte(conf), Options{})
	for _, w := range []string{"k.conf:2: nopreempt", "k.conf:4: virtual_router_id", "k.conf:5: priority", "k.conf:6: advert_int", "k.conf:15: virtual_ipaddress"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	// And what only config.Parse sees, all of it too.
	conf = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n unicast_peer {\n  ff02::1\n }\n virtual_ipaddress {\n  10.0.0.300\n  10.0.0.301\n }\n}\n"
	_, err = Import("k.conf", []byte(conf), Options{})
	for _, w := range []string{"k.conf:7: vrrp_instance.VI_1.virtual_ipaddress[0]", "k.conf:7: vrrp_instance.VI_1.virtual_ipaddress[1]", "k.conf:4: vrrp_instance.VI_1.unicast_peer[0]"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// Defect 7: meaning kept for the keepalived node next door.
func TestIssue12Interop(t *testing.T) {
	runImportCases(t, []importCase{
		{name: "another multicast group",
			conf: "global_defs {\n vrrp_mcast_group4 224.0.0.100\n}\n" + vi1 + "}\n",
			err:  []string{"k.conf:2: mcast_dst_ip: instance VI_1: global_defs vrrp_mcast_group4 224.0.0.100: leasehold sends and listens on 224.0.0.18 only"}},
		{name: "another multicast group, unicast instance",
			conf: "global_defs {\n vrrp_mcast_group4 224.0.0.100\n}\n" + vi1 + " unicast_peer {\n  10.0.0.9\n }\n}\n"},
		{name: "the default group",
			conf: "global_defs {\n vrrp_mcast_group6 ff02::12\n vrrp_mcast_group4 224.0.0.18\n}\n" + vi1 + "}\n"},
		{name: "mcast_dst_ip",
			conf: vi1 + " mcast_dst_ip 224.0.0.19\n}\n",
			err:  []string{"k.conf:8: mcast_dst_ip: instance VI_1: mcast_dst_ip 224.0.0.19"}},
		{name: "mcast_src_ip",
			conf: vi1 + " mcast_src_ip 10.0.0.5\n}\n",
			check: func(t *testing.T, c *config.Config) {
				if in := c.Instance["VI_1"]; in.Src.String() != "10.0.0.5" || len(in.Peers) != 0 {
					t.Errorf("src %v peers %v", in.Src, in.Peers)
				}
			}},
		{name: "auth_pass cut at # and !",
			conf: vi1 + " authentication {\n  auth_type PASS\n  auth_pass ab#cd\n }\n}\nvrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress {\n  10.0.0.2\n }\n" +
				" authentication {\n  auth_type PASS\n  auth_pass \"x!y\"!z\n }\n}\n",
			check: func(t *testing.T, c *config.Config) {
				if got := string(c.Instance["VI_1"].AuthKey[:2]); got != "ab" || c.Instance["VI_1"].AuthKey[2] != 0 {
					t.Errorf("VI_1 key %q", c.Instance["VI_1"].AuthKey)
				}
				if got := string(c.Instance["VI_2"].AuthKey[:3]); got != "x!y" || c.Instance["VI_2"].AuthKey[3] != 0 {
					t.Errorf("VI_2 key %q", c.Instance["VI_2"].AuthKey)
				}
			}},
		{name: "state and auth_type as keepalived compares them: exactly",
			conf: vi1 + " state master\n authentication {\n  auth_type pass\n  auth_pass secret\n }\n}\n" +
				"vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress {\n  10.0.0.2\n }\n state MASTER\n state BACKUP\n}\n",
			warn: []string{`k.conf:8: state: instance VI_1: state "master": keepalived knows only MASTER and BACKUP (in capitals) and takes BACKUP`,
				`k.conf:10: auth_type: "pass": keepalived knows only PASS and AH (in capitals) and sends no authentication`,
				`k.conf:21: state: instance VI_2: state BACKUP after MASTER (line 20): keepalived ignores it and stays MASTER`},
			check: func(t *testing.T, c *config.Config) {
				if in := c.Instance["VI_1"]; in.State != "BACKUP" || in.AuthKey != [8]byte{} || in.Authentication.AuthType != "" {
					t.Errorf("VI_1 %+v", in)
				}
				if c.Instance["VI_2"].State != "MASTER" {
					t.Errorf("VI_2 %+v", c.Instance["VI_2"])
				}
			}},
		{name: "vrrp_strict starts a non-owner as BACKUP, without accept",
			conf: "global_defs {\n vrrp_strict\n}\n" + vi1 + " state MASTER\n}\n",
			warn: []string{"k.conf:11: state: instance VI_1: state MASTER: keepalived in strict mode (line 2) starts as BACKUP"},
			check: func(t *testing.T, c *config.Config) {
				if in := c.Instance["VI_1"]; in.State != "BACKUP" || in.Accept {
					t.Errorf("VI_1 %+v", in)
				}
			}},
		{name: "vrrp_strict and the owner",
			conf: "global_defs {\n vrrp_strict\n}\n" + strings.Replace(vi1, "priority 100", "priority 255", 1) + " state BACKUP\n}\n",
			check: func(t *testing.T, c *config.Config) {
				if in := c.Instance["VI_1"]; in.State != "MASTER" || !in.Accept {
					t.Errorf("VI_1 %+v", in)
				}
			}},
		{name: "vrrp_strict and unicast peers (run by keepalived 2.2.7)",
			conf: "global_defs {\n vrrp_strict\n}\n" + vi1 + " unicast_peer {\n  10.0.0.9\n }\n}\n",
			warn: []string{"k.conf:11: unicast_peer: instance VI_1: unicast peers in strict mode (vrrp_strict at line 2)"},
			check: func(t *testing.T, c *config.Config) {
				if len(c.Instance["VI_1"].Peers) != 1 {
					t.Errorf("peers %v", c.Instance["VI_1"].Peers)
				}
			}},
		{name: "virtual_ipaddress_excluded",
			conf: vi1 + " virtual_ipaddress_excluded {\n  10.0.0.50\n }\n}\n",
			err:  []string{"k.conf:8: virtual_ipaddress_excluded: instance VI_1: not supported: leasehold would not add these addresses"}},
		{name: "no virtual_ipaddress (notify scripts move a cloud address)",
			conf: "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n notify_master /etc/keepalived/takeover.sh\n}\n",
			err:  []string{"k.conf:1: virtual_ipaddress: instance VI_1: no virtual_ipaddress: keepalived runs it"}},
		{name: "virtual_routes",
			conf: vi1 + " virtual_routes {\n  src 10.0.0.1 to 10.1.0.0/16 via 10.0.0.254\n }\n}\n",
			err:  []string{"k.conf:8: virtual_routes: instance VI_1: not supported: leasehold would not add these routes"}},
		{name: "router_id of the samples",
			conf: "global_defs {\n router_id LVS_DEVEL\n}\n" + vi1 + "}\n",
			warn: []string{"k.conf:2: router_id: router_id LVS_DEVEL is keepalived's sample value"},
			check: func(t *testing.T, c *config.Config) {
				if c.Node.Name == "LVS_DEVEL" {
					t.Error("node.name LVS_DEVEL")
				}
			}},
		{name: "router_id",
			conf: "global_defs {\n router_id lb1\n}\n" + vi1 + "}\n",
			warn: []string{"k.conf:2: router_id: node.name lb1 taken from router_id: it MUST differ on every node"}},
		{name: "--node wins",
			conf: "global_defs {\n router_id LVS_DEVEL\n}\n" + vi1 + "}\n",
			opt:  Options{NodeName: "lb2"},
			check: func(t *testing.T, c *config.Config) {
				if c.Node.Name != "lb2" {
					t.Errorf("node.name %q", c.Node.Name)
				}
			}},
	})
}

// Defect 8: bytes a terminal interprets are never echoed raw.
func TestIssue12ControlBytes(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{vi1 + " \x1b[31mred\x07 on\n}\n", `k\u001b.conf:8: \u001b[31mred\u0007: unknown vrrp_instance keyword`},
		{vi1 + "}\n\u009b2J {\n}\n", `k\u001b.conf:9: \u009b2J: unknown block "\u009b2J"`},
		// A name quoted in a comment of the YAML (the sync group's).
		{"vrrp_sync_group G\x1bX {\n group {\n  VI_1\n  VI_2\n }\n}\n" + vi1 + " state MASTER\n}\n" +
			strings.Replace(strings.Replace(vi1, "VI_1", "VI_2", 1), "51", "52", 1) + "}\n", `# keepalived: sync group G\u001bX starts as BACKUP`},
	} {
		im, err := Import("k\x1b.conf", []byte(tc.conf), Options{})
		text := ""
		if err != nil {
			text = err.Error()
		} else {
			text = warningText(im) + string(im.YAML)
		}
		if strings.ContainsFunc(text, isControl) {
			t.Fatalf("a control byte in the output:\n%q", text)
		}
		if !strings.Contains(text, tc.want) {
			t.Errorf("output lacks %s:\n%s", tc.want, text)
		}
	}
	_, err := Import("k.conf", []byte(vi1+"}\nnotify\x00 x\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "k.conf:9: (syntax): NUL byte at column 7") || strings.ContainsRune(err.Error(), 0) {
		t.Errorf("NUL: %v", err)
	}
}
