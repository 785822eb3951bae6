package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lvs"
)

// Seed 003's director (the backup's virtual_server, nb_get_retry and
// all) in leasehold's YAML.
const lvsGood = `
node: {name: lb1}
quorum: {backend: etcd, etcd: {endpoints: [127.0.0.1:2379]}}
vrrp_instance:
  VI_1:
    interface: enp0s3
    virtual_router_id: 51
    priority: 100
    virtual_ipaddress: [192.168.1.99]
lvs_mode: owner
virtual_server_group:
  web: ["192.168.1.99 443", "192.168.1.100-101 443", "fwmark 7"]
virtual_server:
  - ip: 192.168.1.99
    port: 80
    follow: VI_1
    delay_loop: 6
    lb_algo: lc
    lb_kind: DR
    persistence_timeout: 50
    protocol: TCP
    real_server:
      - ip: 192.168.1.13
        weight: 1
        TCP_CHECK: {connect_timeout: 3, connect_port: 80, nb_get_retry: 3, delay_before_retry: 3}
      - ip: 192.168.1.14
        TCP_CHECK: {connect_timeout: 3, connect_port: 80}
        notify_up: "/usr/local/bin/rs-event up"
        notify_down: /usr/local/bin/rs-down
  - group: web
    follow: VI_1
    lvs_sched: wrr
    quorum: 2
    hysteresis: 1
    sorry_server: 192.168.1.50 8080
    inhibit_on_failure: true
    alpha: true
    connect_timeout: 2
    real_server:
      - ip: 192.168.1.20
        port: 443
        weight: 3
        HTTP_GET:
          url: [{path: /health, status_code: "200-299 301", digest: 9B3A0C85A887A256D6939DA88AABD8CD}]
          retry: 0
      - ip: 192.168.1.21
        port: 443
        MISC_CHECK: {misc_path: "/bin/true --quiet", misc_dynamic: true}
`

func TestParseLVS(t *testing.T) {
	c, err := Parse("lvs.yaml", []byte(lvsGood))
	if err != nil {
		t.Fatal(err)
	}
	l := c.LVS
	if l.Mode != lvs.ModeOwner || len(l.Services) != 2 {
		t.Fatalf("LVS = %+v", l)
	}
	s := l.Services[0]
	if s.Name != "192.168.1.99 80" || s.Follow != "VI_1" || s.Scheduler != "lc" || s.Forward != lvs.DR ||
		s.Persistence != 50*time.Second || s.Quorum != 1 || len(s.Keys) != 1 || s.Keys[0].String() != "TCP 192.168.1.99:80" {
		t.Errorf("service 0 = %+v", s)
	}
	r0 := s.Reals[0]
	if r0.Addr.String() != "192.168.1.13:80" || r0.Weight != 1 || r0.Forward != lvs.DR || len(r0.Checks) != 1 {
		t.Fatalf("real 0 = %+v", r0)
	}
	if ck := r0.Checks[0]; ck.Kind != lvs.TCPCheck || ck.Retry != 3 || ck.DelayLoop != 6*time.Second ||
		ck.ConnectTimeout != 3*time.Second || ck.DelayBeforeRetry != 3*time.Second || ck.Warmup != 6*time.Second {
		t.Errorf("check 0 = %+v", ck)
	}
	if ck := s.Reals[1].Checks[0]; ck.Retry != 1 || ck.DelayBeforeRetry != time.Second {
		t.Errorf("defaults: %+v", ck)
	}
	if u, d := s.Reals[1].NotifyUp, s.Reals[1].NotifyDown; u == nil || u.Path != "/usr/local/bin/rs-event" || len(u.Args) != 1 || u.Args[0] != "up" ||
		d == nil || d.Path != "/usr/local/bin/rs-down" || d.Timeout <= 0 || r0.NotifyUp != nil {
		t.Errorf("notify_up %+v, notify_down %+v", u, d)
	}

	g := l.Services[1]
	var keys []string
	for _, k := range g.Keys {
		keys = append(keys, k.String())
	}
	if strings.Join(keys, ",") != "TCP 192.168.1.99:443,TCP 192.168.1.100:443,TCP 192.168.1.101:443,fwmark 7 inet" {
		t.Errorf("group keys %v", keys)
	}
	if g.Scheduler != "wrr" || g.Forward != lvs.NAT || g.Quorum != 2 || g.Hysteresis != 1 ||
		g.Sorry == nil || g.Sorry.Addr.String() != "192.168.1.50:8080" {
		t.Errorf("group service = %+v", g)
	}
	h := g.Reals[0].Checks[0]
	if h.Kind != lvs.HTTPGet || !h.Alpha || h.Retry != 0 || h.ConnectTimeout != 2*time.Second || h.DelayLoop != lvs.DefaultDelayLoop ||
		h.DelayBeforeRetry != 3*time.Second || h.URLs[0].Digest != "9b3a0c85a887a256d6939da88aabd8cd" || len(h.URLs[0].Status) != 2 {
		t.Errorf("HTTP_GET = %+v", h)
	}
	if !g.Reals[0].Inhibit {
		t.Error("inhibit_on_failure not inherited")
	}
	m := g.Reals[1].Checks[0]
	if m.Kind != lvs.MiscCheck || !m.Dynamic || m.Retry != 0 || m.Command == nil || m.Command.Path != "/bin/true" ||
		m.Command.Timeout != lvs.DefaultDelayLoop {
		t.Errorf("MISC_CHECK = %+v", m)
	}
}

func TestParseLVSErrorsNameTheKey(t *testing.T) {
	base := strings.Replace(lvsGood, "lvs_mode: owner\n", "", 1)
	cases := []struct{ name, edit, want string }{
		{"mode missing", "", "lvs.yaml:12: lvs_mode: required with virtual_server"},
		{"owner without quorum", "lvs_mode: owner\nquorum: {backend: none}", "lvs_mode: owner needs a lease"},
		{"bad scheduler", "lvs_mode: all\n#lc", "virtual_server[0].lb_algo: \"xx\""},
		{"follow unknown", "lvs_mode: all\n#follow", "virtual_server[0].follow: no vrrp_instance or vrrp_sync_group named \"VI_9\""},
		{"bad status code", "lvs_mode: all\n#status", "virtual_server[1].real_server[0].HTTP_GET.url[0].status_code"},
		{"negative weight", "lvs_mode: all\n#weight", "virtual_server[1].real_server[0].weight: -3"},
		{"relative misc path", "lvs_mode: all\n#misc", "virtual_server[1].real_server[1].MISC_CHECK.misc_path"},
		{"unknown key in a checker", "lvs_mode: all\n#typo", "conect_timeout: unknown key"},
		{"relative notify_down", "lvs_mode: all\n#notify", "virtual_server[0].real_server[1].notify_down"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := base
			mode, edit, _ := strings.Cut(c.edit, "\n")
			if mode != "" {
				if strings.HasPrefix(mode, "lvs_mode") {
					y = strings.Replace(y, "virtual_server_group:", mode+"\nvirtual_server_group:", 1)
				}
			}
			if strings.HasPrefix(edit, "quorum") {
				y = strings.Replace(y, "quorum: {backend: etcd, etcd: {endpoints: [127.0.0.1:2379]}}", edit, 1)
			}
			switch edit {
			case "#lc":
				y = strings.Replace(y, "lb_algo: lc", "lb_algo: xx", 1)
			case "#follow":
				y = strings.Replace(y, "follow: VI_1", "follow: VI_9", 1)
			case "#status":
				y = strings.Replace(y, `"200-299 301"`, `"200-299 301-"`, 1)
			case "#weight":
				y = strings.Replace(y, "weight: 3", "weight: -3", 1)
			case "#misc":
				y = strings.Replace(y, "/bin/true --quiet", "true --quiet", 1)
			case "#notify":
				y = strings.Replace(y, "notify_down: /usr/local/bin/rs-down", "notify_down: rs-down", 1)
			case "#typo":
				y = strings.Replace(y, "TCP_CHECK: {connect_timeout: 3, connect_port: 80}", "TCP_CHECK: {conect_timeout: 3}", 1)
			}
			_, err := Parse("lvs.yaml", []byte(y))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant %q", err, c.want)
			}
		})
	}
}

// lvs_sync_daemon: keepalived's INTERFACE INSTANCE [id N] ...; the
// instance's lease (its sync group's) makes the sync master.
func TestParseLVSSyncDaemon(t *testing.T) {
	y := lvsGood + "lvs_sync_daemon: {interface: eth1, instance: VI_1, id: 5, maxlen: 1400, port: 8848, ttl: 1, group: 224.0.0.81}\n"
	c, err := Parse("lvs.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	s := c.LVS.Sync
	if s == nil || s.Interface != "eth1" || s.Group != "VI_1" || s.SyncID != 5 || s.MaxLen != 1400 || s.McastPort != 8848 ||
		s.McastTTL != 1 || s.McastAddr.String() != "224.0.0.81" {
		t.Fatalf("sync = %+v", s)
	}
	for _, tc := range []struct{ conf, want string }{
		{lvsGood + "lvs_sync_daemon: {instance: VI_1}\n", "lvs.yaml:49: lvs_sync_daemon.interface: required"},
		{lvsGood + "lvs_sync_daemon: {interface: eth1, instance: VI_9}\n", "lvs_sync_daemon.instance: no vrrp_instance named \"VI_9\""},
		{lvsGood + "lvs_sync_daemon: {interface: eth1, instance: VI_1, id: 256}\n", "lvs_sync_daemon.id: 256: want 0-255"},
		{lvsGood + "lvs_sync_daemon: {interface: eth1, instance: VI_1, group: 10.0.0.1}\n", "lvs_sync_daemon.group: \"10.0.0.1\": want a multicast address"},
		{lvsGood + "lvs_sync_daemon: {interface: eth1, instance: VI_1, typo: 1}\n", "typo: unknown key"},
		{strings.Replace(strings.Replace(lvsGood, "lvs_mode: owner", "lvs_mode: all", 1), "quorum: {backend: etcd, etcd: {endpoints: [127.0.0.1:2379]}}", "quorum: {backend: none}", 1) +
			"lvs_sync_daemon: {interface: eth1, instance: VI_1}\n", "lvs_sync_daemon: follows a lease"},
	} {
		if _, err := Parse("lvs.yaml", []byte(tc.conf)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v\nwant %q", err, tc.want)
		}
	}
}

// A virtual_server_group taken by many virtual servers with the same
// protocol is expanded once: every later one gets one error, not one per
// key of the group (work and errors linear in the input, not the product
// of virtual servers and group size).
func TestParseLVSGroupReusedIsLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("node: {name: lb1}\nquorum: {backend: none}\nvrrp_instance:\n  VI_1: {interface: eth0, virtual_router_id: 51, priority: 100, virtual_ipaddress: [10.0.0.1]}\n")
	b.WriteString("lvs_mode: all\nvirtual_server_group:\n  web:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "    - \"10.1.%d.1-250 80\"\n", i)
	}
	b.WriteString("virtual_server:\n")
	const users = 400
	for range users {
		b.WriteString("  - {group: web, lb_algo: rr, lb_kind: DR, protocol: TCP, real_server: [{ip: 10.2.0.1, port: 80}]}\n")
	}
	b.WriteString("  - {group: web, lb_algo: rr, lb_kind: DR, protocol: UDP, real_server: [{ip: 10.2.0.1, port: 80}]}\n")
	_, err := Parse("lvs.yaml", []byte(b.String()))
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != users-1 || !strings.Contains(lines[0], `virtual_server[1].group: virtual_server_group "web" with protocol TCP is already virtual_server[0]'s`) {
		t.Fatalf("%d errors (want %d, one per later virtual server), first %q", len(lines), users-1, lines[0])
	}
}
