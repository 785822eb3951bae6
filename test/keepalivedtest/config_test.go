package keepalivedtest

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/netlab/netlabtest"
)

func richConfig(iface string) Config {
	return Config{
		RouterID:        "lab-n1",
		GarpMasterDelay: time.Second,
		Instances: []Instance{
			{
				Name: "VI_v2", State: "BACKUP", Interface: iface, VRID: 51, Priority: 120,
				AdvertInt: 2 * time.Second, AuthPass: "secret12", NoPreempt: true,
				VIPs:       []netip.Prefix{netip.MustParsePrefix("10.99.0.100/24")},
				UnicastSrc: netip.MustParseAddr("10.99.0.1"),
				UnicastPeers: []netip.Addr{
					netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.3"),
				},
				NotifyMaster: "/bin/true",
				Extra:        []string{"garp_master_repeat 2"},
			},
			{
				Name: "VI_v3", State: "MASTER", Interface: iface, VRID: 52, Priority: 100,
				Version: 3, AdvertInt: 50 * time.Millisecond,
				VIPs: []netip.Prefix{netip.MustParsePrefix("fd6c:6864::100/64")},
			},
		},
	}
}

func TestRender(t *testing.T) {
	text, err := richConfig("eth0").Render("ignored")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"router_id lab-n1\n", "vrrp_garp_master_delay 1\n", "enable_script_security",
		"vrrp_instance VI_v2 {", "advert_int 2\n", "version 2\n", "auth_pass secret12\n", "nopreempt\n",
		"unicast_src_ip 10.99.0.1\n", "\t\t10.99.0.3\n", "10.99.0.100/24 dev eth0\n", "notify_master /bin/true\n",
		"garp_master_repeat 2\n",
		"vrrp_instance VI_v3 {", "version 3\n", "advert_int 0.05\n", "fd6c:6864::100/64 dev eth0\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "{") != strings.Count(text, "}") {
		t.Errorf("unbalanced braces:\n%s", text)
	}
	if raw, _ := (Config{Raw: "x"}).Render("h"); raw != "x" {
		t.Errorf("raw config rewritten: %q", raw)
	}
	if def, _ := (Config{Instances: richConfig("e").Instances[1:]}).Render("n7"); !strings.Contains(def, "router_id n7\n") {
		t.Errorf("default router id missing:\n%s", def)
	}
}

func TestValidateRejects(t *testing.T) {
	base := richConfig("eth0").Instances[1]
	mod := func(f func(*Instance)) Config {
		in := base
		f(&in)
		return Config{Instances: []Instance{in}}
	}
	bad := map[string]Config{
		"none":          {},
		"v2 fraction":   mod(func(i *Instance) { i.Version = 2; i.AdvertInt = 1500 * time.Millisecond }),
		"v3 sub-cs":     mod(func(i *Instance) { i.AdvertInt = 5 * time.Millisecond }),
		"v3 auth":       mod(func(i *Instance) { i.AuthPass = "x" }),
		"state":         mod(func(i *Instance) { i.State = "master" }),
		"vrid 0":        mod(func(i *Instance) { i.VRID = 0 }),
		"no vips":       mod(func(i *Instance) { i.VIPs = nil }),
		"iface inject":  mod(func(i *Instance) { i.Interface = "eth0 }\nvrrp_script x {" }),
		"peer no src":   mod(func(i *Instance) { i.UnicastPeers = []netip.Addr{netip.MustParseAddr("10.0.0.1")} }),
		"relative hook": mod(func(i *Instance) { i.NotifyStop = "notify.sh" }),
		"version 4":     mod(func(i *Instance) { i.Version = 4 }),
		"garp delay":    {GarpMasterDelay: 1500 * time.Millisecond, Instances: []Instance{base}},
		"dup":           {Instances: []Instance{base, base}},
	}
	for name, c := range bad {
		if _, err := c.Render("h"); err == nil {
			t.Errorf("%s: Render accepted %+v", name, c)
		}
	}
}

// TestRenderedConfigPassesKeepalived runs keepalived's own config check on
// the rendered file inside a lab host (it needs a real interface).
func TestRenderedConfigPassesKeepalived(t *testing.T) {
	l := netlabtest.NewForTest(t, netlab.Options{Hosts: []string{"n1"}}, Binary)
	h := l.Host("n1")
	text, err := richConfig(h.Iface).Render(h.Name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(path), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Command(ctx, Binary, "--config-test", "-f", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("keepalived --config-test: %v\n%s\nconfig:\n%s", err, out, text)
	}
	// The check does catch mistakes.
	bad := strings.Replace(text, "nopreempt", "no_such_keyword", 1)
	os.WriteFile(path, []byte(bad), 0o644)
	out, err = h.Command(ctx, Binary, "--config-test", "-f", path).CombinedOutput()
	if err == nil && !strings.Contains(string(out), "no_such_keyword") {
		t.Errorf("keepalived --config-test accepted an unknown keyword: %s", out)
	}
}
