package vm

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/test/nstest"
)

func TestValidate(t *testing.T) {
	ok := Config{Name: "vm1", Kernel: "k", Initrd: "i", Dir: "/tmp/x",
		NICs: []NIC{{ID: "l2", Mcast: "230.1.2.3:20000"}, {ID: "up", User: &UserNet{}}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no name":          func(c *Config) { c.Name = "" },
		"no kernel":        func(c *Config) { c.Kernel = "" },
		"no dir":           func(c *Config) { c.Dir = "" },
		"long dir":         func(c *Config) { c.Dir = "/" + strings.Repeat("d", 120) },
		"comma in disk":    func(c *Config) { c.Disk = "/tmp/a,b" },
		"duplicate nic":    func(c *Config) { c.NICs[1].ID = "l2" },
		"nic ctl":          func(c *Config) { c.NICs[0].ID = "ctl" },
		"unicast mcast":    func(c *Config) { c.NICs[0].Mcast = "10.0.0.1:20000" },
		"both mcast, user": func(c *Config) { c.NICs[0].User = &UserNet{} },
		"neither":          func(c *Config) { c.NICs[1].User = nil },
		"bad guestfwd":     func(c *Config) { c.NICs[1].User.GuestFwd = []GuestFwd{{Addr: "x", Cmd: "nc"}} },
	} {
		c := ok
		c.NICs = slices.Clone(ok.NICs)
		c.NICs[1].User = &UserNet{}
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestQemuArgs(t *testing.T) {
	c := Config{Name: "vm1", Kernel: "/k", Initrd: "/i", Dir: "/run/vm1", Append: "lh.ip0=10.66.0.1/24",
		Share: "/host", Disk: "/d.img", NoReboot: true,
		NICs: []NIC{
			{ID: "l2", MAC: "52:54:00:66:00:01", Mcast: "230.1.2.3:20000"},
			{ID: "up", User: &UserNet{GuestFwd: []GuestFwd{{Addr: "10.0.2.100:2379", Cmd: "relay a,b"}}}},
		}}.withDefaults()
	a := strings.Join(c.qemuArgs(), " ")
	for _, want := range []string{
		"-m 256 ",
		"-append console=ttyS0 quiet panic=-1 lh.name=vm1 lh.share=host0 lh.ip0=10.66.0.1/24 ",
		"-netdev socket,id=l2,mcast=230.1.2.3:20000,localaddr=127.0.0.1 -device virtio-net-pci,netdev=l2,romfile=,mac=52:54:00:66:00:01 ",
		"-netdev user,id=up,restrict=on,net=10.0.2.0/24,guestfwd=tcp:10.0.2.100:2379-cmd:relay a,,b ",
		"-serial file:/run/vm1/console.log ",
		"-qmp unix:/run/vm1/qmp.sock,server=on,wait=off ",
		"-chardev socket,id=ctl,path=/run/vm1/ctl.sock,server=on,wait=off ",
		"-drive file=/d.img,if=virtio,format=raw ",
		"-virtfs local,path=/host,mount_tag=host0,security_model=none,id=share",
		"-no-reboot",
	} {
		if !strings.Contains(a+" ", want) {
			t.Errorf("qemu args lack %q:\n%s", want, a)
		}
	}
	if strings.Index(a, "netdev=l2") > strings.Index(a, "netdev=up") {
		t.Errorf("NICs out of order (eth0 must be l2):\n%s", a)
	}
}

func TestNewMcastGroup(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		g := NewMcastGroup()
		ap, err := netip.ParseAddrPort(g)
		if err != nil || !ap.Addr().Is4() || ap.Addr().As4()[0] != 230 || ap.Port() < 20000 || ap.Port() > 39999 {
			t.Fatalf("NewMcastGroup() = %q", g)
		}
		seen[g] = true
	}
	if len(seen) < 95 {
		t.Errorf("100 groups, only %d distinct", len(seen))
	}
}

// TestStartFails needs qemu but no image: a missing kernel makes qemu
// exit at once, and Start must say so and leave nothing running.
func TestStartFails(t *testing.T) {
	_, err := exec.LookPath("qemu-system-x86_64")
	nstest.Require(t, err == nil, fmt.Sprint("needs qemu-system-x86_64: ", err))
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	v, err := Start(ctx, Config{Name: "bad", Kernel: filepath.Join(dir, "none"), Initrd: filepath.Join(dir, "none"), Dir: dir})
	if err == nil {
		v.Stop()
		t.Fatal("Start with a missing kernel: no error")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "qemu.log") {
		t.Errorf("error lacks qemu's own output: %v", err)
	}
	if _, err := Start(ctx, Config{Name: "bad"}); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("invalid config: %v", err)
	}
}
