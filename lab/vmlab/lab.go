package vmlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/vm"
	"github.com/leasehold/leasehold/lab/vm/image"
	"github.com/leasehold/leasehold/lab/vm/wire"
	"github.com/leasehold/leasehold/test/keepalivedtest"
)

// The lab's addresses. The segment is private to the lab (its own
// multicast group), so fixed addresses cannot collide with another lab.
var (
	vip       = netip.MustParseAddr("10.66.0.100")
	clientNet = netip.MustParsePrefix("10.66.0.250/24")
)

const (
	// ProbePort is where the client's SYNs go (busybox httpd in every guest).
	ProbePort = 80
	// etcdGuestAddr is the quorum's address as the guests see it (the
	// user network's forward to the host's etcd).
	etcdGuestAddr = "10.0.2.100:2379"
	statusSocket  = "/run/leasehold.sock"
	guestConfig   = "/etc/leasehold/leasehold.yaml"
	guestLog      = "/share/leasehold.log"
)

// Options configure a lab.
type Options struct {
	// Binary is the leasehold binary the guests run (x86-64, best
	// static: CGO_ENABLED=0); Agent the guest agent
	// (leasehold-lab-guest); Etcd the lab's etcd server for the host
	// (leasehold-lab-etcd).
	Binary, Agent, Etcd string
	// Dir is the lab's directory (default: a new one under os.TempDir).
	Dir string
	// Keep leaves Dir in place after Down (logs, consoles).
	Keep bool
	// Nodes is the number of VMs (default 2).
	Nodes int
	// TTL is the lease TTL (default 3 s, 4 s with DRBD: the watchdog's whole-second
	// timeout must fit inside it with the drift, margin and demotion
	// budget, see fencing.watchdog).
	TTL time.Duration
	// Watchdog is the daemons' fencing.watchdog: required (default),
	// auto or off. Each group has promote/demote hooks, so the watchdog
	// is armed while a node owns.
	Watchdog string
	// CacheDir is the image cache (default: the image package's).
	CacheDir string
	// MemMiB per VM (default 256).
	MemMiB int
	// ExtraYAML is appended to every guest's configuration (top-level
	// keys, e.g. lvs_mode and virtual_server for an LVS director pair).
	ExtraYAML string
	// ExtraModules are loaded at boot besides the lab's own (e.g. the
	// IPVS schedulers ip_vs_rr, ip_vs_wrr; they must be in the image, see
	// image.DefaultModules).
	ExtraModules []string
	// DRBD gives the lab a DRBD resource (two nodes only): a third NIC
	// per VM on a segment of its own for the replication link, r0 on the
	// persistent disks with leasehold's fence-peer handlers, and a drbd
	// section (ext4 on /srv) in the group. See drbd.go.
	DRBD bool
	// Keepalived (with DRBD) runs keepalived 2.2.7 in the VMs instead of
	// leasehold, set up as seed 002 sets it up (keepalived.go): the
	// baseline of make bench-drbd.
	Keepalived bool
	// AfterSplitBrain is the drbd section's after_split_brain (default:
	// the daemon's, manual).
	AfterSplitBrain string
	Log             *slog.Logger
}

func (o *Options) defaults() error {
	if o.Binary == "" || o.Agent == "" || o.Etcd == "" {
		return errors.New("vmlab: Options.Binary, Agent and Etcd are required (make build-vm builds them into bin/vm)")
	}
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if o.Nodes < 2 || o.Nodes > 8 {
		return fmt.Errorf("vmlab: %d nodes: want 2..8", o.Nodes)
	}
	if o.TTL == 0 {
		o.TTL = 3 * time.Second
		if o.DRBD {
			o.TTL = 4 * time.Second // room for a demotion that unmounts (config.go)
		}
	}
	switch o.Watchdog {
	case "":
		o.Watchdog = "required"
	case "required", "auto", "off":
	default:
		return fmt.Errorf("vmlab: watchdog %q: want required, auto or off", o.Watchdog)
	}
	if o.DRBD && o.Nodes != 2 {
		return fmt.Errorf("vmlab: DRBD with %d nodes: DRBD 8.4 replicates between two", o.Nodes)
	}
	if o.Keepalived && !o.DRBD {
		return errors.New("vmlab: Keepalived is the DRBD baseline: it needs DRBD")
	}
	if o.MemMiB == 0 {
		o.MemMiB = 256
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// node is one VM and the daemon in it.
type node struct {
	name  string
	index int
	cfg   vm.Config
	mac   string

	// Guarded by Lab.mu.
	vm       *vm.VM
	daemon   vm.Proc
	cutting  bool      // the lab is switching the VM off (power cut, Down)
	resetAt  time.Time // the VM last ended by itself (watchdog reset with -no-reboot)
	boots    []time.Duration
	bootedAt time.Time
}

// Lab is a running VM lab. Its methods are safe for concurrent use.
type Lab struct {
	o     Options
	img   image.Image
	mcast string
	repl  string // the replication segment's multicast group (Options.DRBD)
	seg   *wire.Segment
	tb    netlab.Timebase

	etcd     *exec.Cmd
	etcdPort int

	mu    sync.Mutex
	nodes []*node
}

// Up builds the image (cached), starts the quorum and the VMs, starts a
// daemon in each and waits until the lab is steady (one owner). On error
// everything started is stopped again.
func Up(ctx context.Context, o Options) (*Lab, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "leasehold-vmlab-")
		if err != nil {
			return nil, err
		}
		o.Dir = d
	} else if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	l := &Lab{o: o, tb: netlab.NewTimebase(), mcast: vm.NewMcastGroup(), repl: vm.NewMcastGroup()}
	ok := false
	defer func() {
		if !ok {
			l.Down()
		}
	}()
	t0 := time.Now()
	files := []image.File{
		{Src: o.Binary, Dest: "/usr/local/bin/leasehold"},
		{Src: o.Agent, Dest: "/usr/local/bin/leasehold-lab-guest"},
	}
	if o.Keepalived {
		// Only in this lab's image: keepalived's libraries (net-snmp,
		// perl, glib) would add megabytes to every other VM's boot.
		files = append(files, image.File{Src: keepalivedtest.Binary, Dest: "/usr/sbin/keepalived"})
	}
	img, err := image.Build(ctx, image.Options{CacheDir: o.CacheDir, Log: o.Log, Files: files})
	if err != nil {
		return nil, fmt.Errorf("vmlab: image: %w", err)
	}
	l.img = img
	o.Log.Info("image ready", "kernel", img.KernelVersion, "took", time.Since(t0).Round(time.Millisecond))
	if err := l.startEtcd(ctx); err != nil {
		return nil, err
	}
	if l.seg, err = wire.Open(l.mcast); err != nil {
		return nil, fmt.Errorf("vmlab: the host's end of the segment %s: %w", l.mcast, err)
	}
	for i := range o.Nodes {
		n, err := l.newNode(i)
		if err != nil {
			return nil, err
		}
		l.nodes = append(l.nodes, n)
	}
	errs := make(chan error, len(l.nodes))
	for _, n := range l.nodes {
		go func() { errs <- l.boot(ctx, n) }()
	}
	for range l.nodes {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return nil, err
	}
	if o.DRBD {
		if err := l.initDRBD(ctx); err != nil {
			return nil, err
		}
	}
	for _, n := range l.nodes {
		if err := l.startDaemon(ctx, n); err != nil {
			return nil, err
		}
	}
	steady := l.WaitSteady
	if o.Keepalived {
		steady = l.waitSteadyDRBD
	}
	if err := steady(ctx, 90*time.Second); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startEtcd starts the lab's etcd member on the host's loopback and waits
// until its client port accepts connections.
func (l *Lab) startEtcd(ctx context.Context) error {
	cp, err := freePort()
	if err != nil {
		return err
	}
	pp, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(l.o.Dir, "q")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(l.o.Etcd, "-name", "q", "-data", filepath.Join(dir, "data"),
		"-client", "http://127.0.0.1:"+strconv.Itoa(cp), "-peer", "http://127.0.0.1:"+strconv.Itoa(pp))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("vmlab: etcd %s: %w", l.o.Etcd, err)
	}
	l.etcd, l.etcdPort = cmd, cp
	go cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(cp), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("vmlab: etcd did not listen on 127.0.0.1:%d within 30 s (log %s): %w", cp, logf.Name(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newNode prepares node i's directory, share and VM configuration.
func (l *Lab) newNode(i int) (*node, error) {
	name := fmt.Sprintf("n%d", i+1)
	dir := filepath.Join(l.o.Dir, name)
	share := filepath.Join(dir, "share")
	if err := os.MkdirAll(share, 0o755); err != nil {
		return nil, err
	}
	conf := guestYAML(name, i, l.o)
	if err := os.WriteFile(filepath.Join(share, "leasehold.yaml"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	mac := fmt.Sprintf("52:54:00:66:00:%02x", i+1)
	relay := fmt.Sprintf("/bin/busybox nc 127.0.0.1 %d", l.etcdPort)
	c := vm.Config{
		Name: name, Kernel: l.img.Kernel, Initrd: l.img.Initrd, MemMiB: l.o.MemMiB,
		Dir: filepath.Join(dir, "vm"), Disk: filepath.Join(dir, "disk.img"), DiskMiB: 64, Share: share, NoReboot: true,
		Append: fmt.Sprintf("lh.ip0=%s/24 lh.ip1=10.0.2.15/24 lh.modules=%s", nodeAddr(i), strings.Join(l.modules(), ",")),
		NICs: []vm.NIC{
			{ID: "l2", MAC: mac, Mcast: l.mcast},
			{ID: "quorum", MAC: fmt.Sprintf("52:54:00:67:00:%02x", i+1), User: &vm.UserNet{GuestFwd: []vm.GuestFwd{{Addr: etcdGuestAddr, Cmd: relay}}}},
		},
	}
	if l.o.DRBD {
		c.NICs = append(c.NICs, vm.NIC{ID: "drbd", MAC: fmt.Sprintf("52:54:00:68:00:%02x", i+1), Mcast: l.repl})
	}
	return &node{name: name, index: i, cfg: c, mac: mac}, nil
}

// nodeAddr is node i's address on the segment.
func nodeAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 66, 0, byte(i + 1)}) }

// setupScript prepares a freshly booted guest (the root file system is
// the initramfs: nothing survives a reboot but the disk and the share).
const setupScript = `set -e
mkdir -p /etc/leasehold /var/lib/leasehold /var/www
cp /share/leasehold.yaml ` + guestConfig + `
cat > /etc/leasehold/resource.sh <<'EOF'
#!/bin/sh
echo "$(cut -d' ' -f1 /proc/uptime) $*" >> /share/resource.log
EOF
chmod 0755 /etc/leasehold/resource.sh
echo ok > /var/www/index.html
httpd -p 80 -h /var/www
`

// boot starts n's VM and prepares it (with DRBD: r0 up); the caller
// starts the daemon.
func (l *Lab) boot(ctx context.Context, n *node) error {
	v, err := vm.Start(ctx, n.cfg)
	if err != nil {
		return fmt.Errorf("vmlab: %s: %w", n.name, err)
	}
	l.mu.Lock()
	n.vm, n.cutting, n.daemon = v, false, vm.Proc{}
	l.mu.Unlock()
	go l.watch(n, v)
	if err := v.WaitReady(ctx); err != nil {
		return fmt.Errorf("vmlab: %s: %w", n.name, err)
	}
	l.mu.Lock()
	n.boots = append(n.boots, v.BootTime())
	n.bootedAt = time.Now()
	first := len(n.boots) == 1
	l.mu.Unlock()
	setup := setupScript
	if l.o.DRBD {
		setup += writerGateSetup + l.drbdSetup(n.index, first)
	}
	if l.o.Keepalived {
		ka, err := keepalivedSetup(n.index)
		if err != nil {
			return err
		}
		setup += ka
	}
	if out, rc, err := v.Exec(ctx, setup, 60*time.Second); err != nil || rc != 0 {
		return fmt.Errorf("vmlab: %s: setup (rc %d): %v: %s", n.name, rc, err, out)
	}
	return nil
}

// watch records a VM that ends without the lab switching it off: with
// -no-reboot that is a reset (its watchdog).
func (l *Lab) watch(n *node, v *vm.VM) {
	<-v.Exited()
	l.mu.Lock()
	defer l.mu.Unlock()
	if n.vm == v && !n.cutting {
		n.resetAt = v.ExitedAt()
		l.o.Log.Info("vm reset by itself", "node", n.name, "console", lastLines(v.Console(), 3))
	}
}

func (l *Lab) startDaemon(ctx context.Context, n *node) error {
	if l.o.Keepalived {
		return l.startKeepalived(ctx, n)
	}
	v := l.vmOf(n)
	p, err := v.Spawn(ctx, []string{"/usr/local/bin/leasehold", "run", "-c", guestConfig}, guestLog)
	if err != nil {
		return fmt.Errorf("vmlab: %s: starting the daemon: %w", n.name, err)
	}
	l.mu.Lock()
	n.daemon = p
	l.mu.Unlock()
	return nil
}

func (l *Lab) vmOf(n *node) *vm.VM {
	l.mu.Lock()
	defer l.mu.Unlock()
	return n.vm
}

// Down stops the VMs and etcd (only the processes the lab started) and
// removes the lab's directory unless Options.Keep.
func (l *Lab) Down() error {
	var errs []error
	for _, n := range l.nodes {
		l.mu.Lock()
		v := n.vm
		n.cutting = true
		l.mu.Unlock()
		if v != nil {
			if err := v.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n.name, err))
			}
		}
	}
	if l.seg != nil {
		l.seg.Close()
	}
	if l.etcd != nil && l.etcd.Process != nil {
		l.etcd.Process.Signal(syscall.SIGCONT)
		l.etcd.Process.Kill()
	}
	if !l.o.Keep && l.o.Dir != "" {
		if err := os.RemoveAll(l.o.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Dir is the lab's directory.
func (l *Lab) Dir() string { return l.o.Dir }

// Image is the boot image the VMs run.
func (l *Lab) Image() image.Image { return l.img }

// BootTimes returns every boot of every node so far (qemu start to the
// guest agent answering).
func (l *Lab) BootTimes() map[string][]time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]time.Duration{}
	for _, n := range l.nodes {
		out[n.name] = append([]time.Duration(nil), n.boots...)
	}
	return out
}

func lastLines(s string, n int) string {
	end := len(s)
	for end > 0 && s[end-1] == '\n' {
		end--
	}
	i := end
	for ; i > 0 && n > 0; i-- {
		if s[i-1] == '\n' {
			n--
			if n == 0 {
				break
			}
		}
	}
	return s[i:end]
}
