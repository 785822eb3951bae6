package vm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// NIC is one virtio-net interface; the guest names them eth0, eth1, … in
// Config.NICs order. Exactly one of Mcast and User is set.
type NIC struct {
	ID    string // qemu netdev id, the name SetLink takes, e.g. "l2", "quorum"
	MAC   string // e.g. 52:54:00:66:00:01
	Mcast string // "230.x.y.z:PORT": an L2 segment shared by the VMs on loopback
	User  *UserNet
}

// UserNet is qemu user networking (slirp) with restrict=on: the guest
// reaches nothing outside but the GuestFwd addresses. Net 10.0.2.0/24,
// host side 10.0.2.2, DHCP and DNS not used by the lab images.
type UserNet struct {
	GuestFwd []GuestFwd
}

// GuestFwd forwards guest TCP connections to Addr ("10.0.2.100:2379") to
// a new host process Cmd (run by qemu through /bin/sh) per connection,
// whose stdin and stdout carry the connection.
type GuestFwd struct {
	Addr string
	Cmd  string
}

// Config describes one VM.
type Config struct {
	Name   string
	Kernel string // vmlinux (PVH boot) or bzImage
	Initrd string
	Append string // extra kernel command line (lh.* parameters)
	MemMiB int    // default 256
	Dir    string // run dir: console.log, qemu.log, qmp.sock, ctl.sock

	// Disk is an optional raw image, /dev/vda in the guest. It is created
	// sparse with DiskMiB MiB if absent and used as it is otherwise, so it
	// persists across restarts.
	Disk    string
	DiskMiB int

	NICs []NIC
	// Share is an optional host directory exported as 9p tag "host0";
	// Start appends lh.share=host0 to the command line.
	Share string
	// NoReboot makes a guest reset (watchdog, panic) end qemu instead of
	// rebooting the guest.
	NoReboot bool
}

// ShareTag is the 9p mount tag of Config.Share.
const ShareTag = "host0"

// maxSocketPath is the longest unix socket path (sun_path less its NUL).
const maxSocketPath = 107

// Validate checks c (with defaults applied) without touching anything.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Name == "" || strings.ContainsAny(c.Name, " \t\n,") {
		bad("name %q: must be non-empty, without blanks or commas", c.Name)
	}
	if c.Kernel == "" || c.Initrd == "" {
		bad("kernel and initrd are required")
	}
	if c.Dir == "" {
		bad("dir (the run directory) is required")
	}
	if n := len(filepath.Join(c.Dir, "qmp.sock")); n > maxSocketPath {
		bad("dir %q: socket paths would be %d bytes, over %d", c.Dir, n, maxSocketPath)
	}
	for _, p := range []struct{ key, val string }{{"dir", c.Dir}, {"disk", c.Disk}, {"share", c.Share}} {
		if strings.Contains(p.val, ",") {
			bad("%s %q: commas are not supported in qemu option paths", p.key, p.val)
		}
	}
	if c.Disk != "" && c.DiskMiB < 0 {
		bad("disk_mib %d: negative", c.DiskMiB)
	}
	if c.MemMiB < 0 {
		bad("mem_mib %d: negative", c.MemMiB)
	}
	ids := map[string]bool{}
	for i, n := range c.NICs {
		if n.ID == "" || strings.ContainsAny(n.ID, ", ") || ids[n.ID] || n.ID == "ctl" {
			bad("nic %d: id %q must be unique, not \"ctl\", without commas or blanks", i, n.ID)
		}
		ids[n.ID] = true
		if n.MAC != "" && strings.Contains(n.MAC, ",") {
			bad("nic %s: mac %q", n.ID, n.MAC)
		}
		switch {
		case (n.Mcast == "") == (n.User == nil):
			bad("nic %s: exactly one of mcast and user must be set", n.ID)
		case n.Mcast != "":
			ap, err := netip.ParseAddrPort(n.Mcast)
			if err != nil || !ap.Addr().Is4() || !ap.Addr().IsMulticast() {
				bad("nic %s: mcast %q is not an IPv4 multicast group:port", n.ID, n.Mcast)
			}
		default:
			for _, f := range n.User.GuestFwd {
				if _, err := netip.ParseAddrPort(f.Addr); err != nil || f.Cmd == "" {
					bad("nic %s: guestfwd %q -> %q: need an addr:port and a command", n.ID, f.Addr, f.Cmd)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.MemMiB == 0 {
		c.MemMiB = 256
	}
	if c.Disk != "" && c.DiskMiB == 0 {
		c.DiskMiB = 64
	}
	return c
}

// cmdline is the kernel command line.
func (c Config) cmdline() string {
	s := "console=ttyS0 quiet panic=-1 lh.name=" + c.Name
	if c.Share != "" {
		s += " lh.share=" + ShareTag
	}
	if c.Append != "" {
		s += " " + c.Append
	}
	return s
}

// qemuArgs is qemu's command line for c, with run files under c.Dir.
func (c Config) qemuArgs() []string {
	a := []string{
		"-name", c.Name,
		"-accel", "tcg", "-machine", "pc", "-cpu", "qemu64", "-smp", "1",
		"-m", strconv.Itoa(c.MemMiB),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.cmdline(),
		"-serial", "file:" + filepath.Join(c.Dir, "console.log"),
		"-qmp", "unix:" + filepath.Join(c.Dir, "qmp.sock") + ",server=on,wait=off",
	}
	if c.NoReboot {
		a = append(a, "-no-reboot")
	}
	for _, n := range c.NICs {
		var nd string
		if n.Mcast != "" {
			nd = "socket,id=" + n.ID + ",mcast=" + n.Mcast + ",localaddr=127.0.0.1"
		} else {
			nd = "user,id=" + n.ID + ",restrict=on,net=10.0.2.0/24"
			for _, f := range n.User.GuestFwd {
				nd += ",guestfwd=tcp:" + f.Addr + "-cmd:" + strings.ReplaceAll(f.Cmd, ",", ",,")
			}
		}
		dev := "virtio-net-pci,netdev=" + n.ID + ",romfile="
		if n.MAC != "" {
			dev += ",mac=" + n.MAC
		}
		a = append(a, "-netdev", nd, "-device", dev)
	}
	a = append(a,
		"-chardev", "socket,id=ctl,path="+filepath.Join(c.Dir, "ctl.sock")+",server=on,wait=off",
		"-device", "virtio-serial-pci", "-device", "virtserialport,chardev=ctl,name=ctl")
	if c.Disk != "" {
		a = append(a, "-drive", "file="+c.Disk+",if=virtio,format=raw")
	}
	if c.Share != "" {
		a = append(a, "-virtfs", "local,path="+c.Share+",mount_tag="+ShareTag+",security_model=none,id=share")
	}
	return a
}

// NewMcastGroup returns a random multicast group and port
// ("230.x.y.z:PORT", port 20000–39999) for one lab's L2 segment, so that
// concurrent labs do not share a segment.
func NewMcastGroup() string {
	return fmt.Sprintf("230.%d.%d.%d:%d", 1+rand.IntN(250), 1+rand.IntN(250), 1+rand.IntN(250), 20000+rand.IntN(20000))
}
