// Package drbdtest is a fake drbd.Executor for unit tests: one host's
// DRBD 8.4 minor (role, disk, connection, and the peer's when Linked to
// another Host), its mount table, its units, and the few programs a
// drbd.Resource runs (drbdadm primary/secondary, mount, umount,
// systemctl, the user's scripts) and a mount's holders. It renders /proc/drbd and
// /proc/self/mountinfo as the kernel does, so the resource's parsers are
// exercised too.
//
// It models the refusals that matter to the resource — a promote without
// UpToDate data, a second Primary while connected, a mount of a
// Secondary, a demote under a mounted filesystem, a busy unmount — not
// DRBD's replication, resync or timings.
package drbdtest

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/leasehold/leasehold/storage/drbd"
)

// Host is one machine's DRBD minor and what sits on it. The zero Host is
// not usable: use NewHost.
type Host struct {
	mu       sync.Mutex
	paths    drbd.Paths
	resource string
	minor    int
	device   string

	conn  drbd.ConnState
	role  drbd.Role
	disk  drbd.DiskState
	alone drbd.DiskState // the peer's disk as seen while not connected
	peer  *Host

	mounts map[string]string // mountpoint → device
	busy   int               // the next busy unmounts
	units  map[string]bool   // running units and scripts
	hang   map[string]bool   // command prefixes that block until ctx ends
	fail   map[string]error  // command prefixes that fail
	calls  []string
	noProc bool
	proc   string // set: /proc/drbd's text, whatever the model says

	gen     uint64 // the current data generation (get-gi's current UUID)
	discard bool   // a connect --discard-my-data is pending
}

// NewHost returns a host with resource res on /dev/drbdMINOR: configured,
// Secondary, UpToDate, StandAlone until Linked.
func NewHost(res string, minor int) *Host {
	return &Host{paths: drbd.DefaultPaths(), resource: res, minor: minor, device: fmt.Sprintf("/dev/drbd%d", minor),
		conn: drbd.StandAlone, role: drbd.Secondary, disk: drbd.UpToDate, alone: drbd.DUnknown,
		mounts: map[string]string{}, units: map[string]bool{}, hang: map[string]bool{}, fail: map[string]error{}}
}

// Link connects a and b (cs:Connected on both).
func Link(a, b *Host) {
	a.mu.Lock()
	a.peer, a.conn = b, drbd.Connected
	a.mu.Unlock()
	b.mu.Lock()
	b.peer, b.conn = a, drbd.Connected
	b.mu.Unlock()
}

// Cut disconnects a from its peer (both go to WFConnection; each sees
// the peer's disk as DUnknown).
func Cut(a *Host) {
	a.mu.Lock()
	b := a.peer
	a.conn = drbd.WFConnection
	a.mu.Unlock()
	if b != nil {
		b.mu.Lock()
		b.conn = drbd.WFConnection
		b.mu.Unlock()
	}
}

// SplitBrain puts a and b in the state DRBD leaves after detecting a
// split brain on reconnect: each StandAlone, with a data generation of its
// own (both wrote while disconnected).
func SplitBrain(a, b *Host) {
	for i, h := range []*Host{a, b} {
		h.mu.Lock()
		h.peer, h.conn, h.alone, h.gen = []*Host{b, a}[i], drbd.StandAlone, drbd.DUnknown, h.gen+uint64(i)+1
		h.mu.Unlock()
	}
}

// Set sets the local role, disk state and connection state.
func (h *Host) Set(role drbd.Role, disk drbd.DiskState, conn drbd.ConnState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.role, h.disk, h.conn = role, disk, conn
}

// SetPeerDiskAlone sets the peer's disk as this host sees it while
// disconnected (Outdated after a successful fence-peer, ...).
func (h *Host) SetPeerDiskAlone(d drbd.DiskState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.alone = d
}

// Unconfigure takes the minor down (cs:Unconfigured); NoModule removes
// /proc/drbd altogether.
func (h *Host) Unconfigure() { h.mu.Lock(); h.conn = drbd.Unconfigured; h.mu.Unlock() }

// NoModule makes /proc/drbd absent (the module is not loaded).
func (h *Host) NoModule() { h.mu.Lock(); h.noProc = true; h.mu.Unlock() }

// SetProc makes /proc/drbd read text (garbage, a DRBD 9 format) instead
// of the model's state; "" restores the model.
func (h *Host) SetProc(text string) { h.mu.Lock(); h.proc = text; h.mu.Unlock() }

// Mount puts device on mountpoint (as if mounted by hand).
func (h *Host) Mount(device, mountpoint string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mounts[mountpoint] = device
}

// Busy makes the next n unmounts fail with "target is busy" (killing the
// holders clears it).
func (h *Host) Busy(n int) { h.mu.Lock(); h.busy = n; h.mu.Unlock() }

// Hang makes commands starting with prefix ("umount", "drbdadm
// secondary") block until their context ends.
func (h *Host) Hang(prefix string) { h.mu.Lock(); h.hang[prefix] = true; h.mu.Unlock() }

// Fail makes commands starting with prefix fail with err.
func (h *Host) Fail(prefix string, err error) { h.mu.Lock(); h.fail[prefix] = err; h.mu.Unlock() }

// Role returns the local role.
func (h *Host) Role() drbd.Role { h.mu.Lock(); defer h.mu.Unlock(); return h.role }

// Mounted reports what is mounted on mountpoint.
func (h *Host) Mounted(mountpoint string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.mounts[mountpoint]
	return d, ok
}

// Running reports whether a unit (or script) was started and not stopped.
func (h *Host) Running(name string) bool { h.mu.Lock(); defer h.mu.Unlock(); return h.units[name] }

// Calls returns the commands run so far, programs by base name
// ("drbdadm primary r0", "mount -t ext4 /dev/drbd0 /srv").
func (h *Host) Calls() []string { h.mu.Lock(); defer h.mu.Unlock(); return slices.Clone(h.calls) }

var _ drbd.Executor = (*Host)(nil)

// ReadFile implements drbd.Executor: /proc/drbd and /proc/self/mountinfo.
func (h *Host) ReadFile(p string) ([]byte, error) {
	if p == h.paths.ProcDRBD {
		return h.procDRBD()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch p {
	case h.paths.Mountinfo:
		var b strings.Builder
		fmt.Fprintf(&b, "22 1 0:21 / / rw,relatime shared:1 - rootfs rootfs rw\n")
		for i, mp := range slices.Sorted(maps.Keys(h.mounts)) {
			fmt.Fprintf(&b, "%d 22 147:%d / %s rw,relatime shared:%d - ext4 %s rw\n", 40+i, h.minor,
				strings.ReplaceAll(mp, " ", `\040`), 2+i, h.mounts[mp])
		}
		return []byte(b.String()), nil
	}
	return nil, fmt.Errorf("open %s: %w", p, fs.ErrNotExist)
}

// procDRBD renders /proc/drbd. The host's own state is copied under h.mu
// and the peer's read after it is released: never both locks at once (two
// linked hosts read at the same moment would each wait for the other's).
func (h *Host) procDRBD() ([]byte, error) {
	h.mu.Lock()
	noProc, proc := h.noProc, h.proc
	minor, conn, role, disk, peer := h.minor, h.conn, h.role, h.disk, h.peer
	peerRole, peerDisk := drbd.RoleUnknown, h.alone
	h.mu.Unlock()
	switch {
	case noProc:
		return nil, fmt.Errorf("open %s: %w", h.paths.ProcDRBD, fs.ErrNotExist)
	case proc != "":
		return []byte(proc), nil
	}
	head := "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 211FB288A383ED945B83420 \n"
	if conn == drbd.Unconfigured {
		return []byte(head + fmt.Sprintf("%2d: cs:Unconfigured\n", minor)), nil
	}
	if peer != nil && conn == drbd.Connected {
		peer.mu.Lock()
		peerRole, peerDisk = peer.role, peer.disk
		peer.mu.Unlock()
	}
	return []byte(head + fmt.Sprintf("%2d: cs:%s ro:%s/%s ds:%s/%s C r-----\n    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n",
		minor, conn, role, peerRole, disk, peerDisk)), nil
}

// Run implements drbd.Executor.
func (h *Host) Run(ctx context.Context, c drbd.Command) ([]byte, error) {
	line := strings.Join(append([]string{path.Base(c.Path)}, c.Args...), " ")
	h.mu.Lock()
	h.calls = append(h.calls, line)
	var hang bool
	var fail error
	for p := range h.hang {
		hang = hang || strings.HasPrefix(line, p)
	}
	for p, err := range h.fail {
		if strings.HasPrefix(line, p) {
			fail = err
		}
	}
	h.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, fmt.Errorf("%s: %w", line, ctx.Err())
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", line, err)
	}
	if fail != nil {
		return nil, fail
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.exec(c, line)
}

// KillHolders implements drbd.Executor: the busy mount's holders go
// (Busy is cleared); one fake holder per pending busy unmount.
func (h *Host) KillHolders(mountpoint, device string) ([]int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, "kill-holders "+mountpoint)
	if d, ok := h.mounts[mountpoint]; !ok || d != device {
		return nil, fmt.Errorf("holders of %s: not a filesystem of %s mounted there (refusing to kill anything)", mountpoint, device)
	}
	var pids []int
	if h.busy > 0 {
		pids = []int{4242}
	}
	h.busy = 0
	return pids, nil
}

func exit(code int, format string, args ...any) ([]byte, error) {
	out := fmt.Sprintf(format, args...)
	return []byte(out), &drbd.ExitError{Code: code, Output: out}
}

// exec runs one command against the model; h.mu is held.
func (h *Host) exec(c drbd.Command, line string) ([]byte, error) {
	a := c.Args
	switch c.Path {
	case h.paths.Drbdadm:
		if len(a) == 3 && a[0] == "connect" && a[1] == "--discard-my-data" {
			h.discard, a = true, []string{"connect", a[2]}
		}
		if len(a) != 2 || a[1] != h.resource {
			return exit(10, "'%s' not defined in your config (for this host).\n", strings.Join(a[1:], " "))
		}
		if h.conn == drbd.Unconfigured {
			return exit(10, "%d: Failure: (127) Device minor not allocated\n", h.minor)
		}
		switch a[0] {
		case "primary":
			if h.peer != nil && h.conn == drbd.Connected && h.peer.role == drbd.Primary {
				return exit(11, "%d: State change failed: (-1) Multiple primaries not allowed by config\n", h.minor)
			}
			switch {
			case h.disk == drbd.Consistent && (h.peer == nil || h.conn != drbd.Connected):
				// Consistent with the peer known Outdated is the newest data.
				if h.alone != drbd.Outdated {
					return exit(17, "%d: State change failed: (-2) Need access to UpToDate data\n", h.minor)
				}
				h.disk = drbd.UpToDate
			case h.disk != drbd.UpToDate:
				return exit(17, "%d: State change failed: (-2) Need access to UpToDate data\n", h.minor)
			}
			h.role = drbd.Primary
		case "get-gi":
			return []byte(fmt.Sprintf("%016X:0000000000000000:0000000000000000:0000000000000000:1:1:1:1:0:0:0:0\n", h.gen)), nil
		case "connect":
			// Connected once both sides connect and exactly one discards
			// its data (it resyncs from the other); both keeping theirs is
			// the split brain again.
			if h.conn != drbd.StandAlone {
				return exit(10, "%d: Failure: (102) Local address(port) already in use.\n", h.minor)
			}
			if h.discard && h.role == drbd.Primary {
				h.discard = false
				return exit(10, "%d: Failure: (123) --discard-my-data not allowed when primary.\n", h.minor)
			}
			h.conn = drbd.WFConnection
			if p := h.peer; p != nil && p.conn == drbd.WFConnection {
				switch {
				case h.discard != p.discard:
					loser, winner := h, p
					if p.discard {
						loser, winner = p, h
					}
					loser.gen, loser.disk, loser.discard = winner.gen, drbd.UpToDate, false
					h.conn, p.conn = drbd.Connected, drbd.Connected
				default:
					h.conn, p.conn, h.discard, p.discard = drbd.StandAlone, drbd.StandAlone, false, false
				}
			}
		case "secondary":
			for _, dev := range h.mounts {
				if dev == h.device {
					return exit(11, "%d: State change failed: (-12) Device is held open by someone\n", h.minor)
				}
			}
			h.role = drbd.Secondary
		default:
			return exit(20, "unknown command %q\n", a[0])
		}
	case h.paths.Mount:
		// mount -t FS [-o OPTS] DEV MP
		if len(a) < 4 {
			return exit(1, "mount: bad usage\n")
		}
		dev, mp := a[len(a)-2], a[len(a)-1]
		if dev == h.device && h.role != drbd.Primary {
			return exit(32, "mount: %s: can't read superblock on %s: Wrong medium type.\n", mp, dev)
		}
		if _, ok := h.mounts[mp]; ok {
			return exit(32, "mount: %s: %s already mounted\n", mp, dev)
		}
		h.mounts[mp] = dev
	case h.paths.Umount:
		mp := a[len(a)-1]
		if _, ok := h.mounts[mp]; !ok {
			return exit(32, "umount: %s: not mounted.\n", mp)
		}
		if h.busy > 0 {
			h.busy--
			return exit(32, "umount: %s: target is busy.\n", mp)
		}
		delete(h.mounts, mp)
	case h.paths.Systemctl:
		if len(a) != 2 {
			return exit(1, "systemctl: bad usage\n")
		}
		h.units[a[1]] = a[0] == "start"
	default:
		// A user's script: PATH start|stop.
		if len(a) != 1 || (a[0] != "start" && a[0] != "stop") {
			return exit(127, "%s: not a command this fake knows\n", line)
		}
		h.units[c.Path] = a[0] == "start"
	}
	return nil, nil
}
