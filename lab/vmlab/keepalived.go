package vmlab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/test/keepalivedtest"
)

// With Options.Keepalived (and DRBD) the VMs run keepalived 2.2.7 — the
// host's /usr/sbin/keepalived, copied into the image with its libraries —
// instead of leasehold, set up as seed 002 sets it up: one VRRP instance
// on eth0 (advert_int 1, PASS authentication, n1 MASTER 120, n2 BACKUP
// 100), notify_master promotes r0 and mounts it, notify_backup unmounts it
// and demotes. DRBD itself is the lab's r0 without leasehold's handlers
// (the seed has no fencing). This is the baseline of make bench-drbd; the
// lab is not a drill target then (there is no leasehold status to judge).

const (
	keepalivedConf      = "/etc/keepalived/keepalived.conf"
	keepalivedPID       = "/run/keepalived.pid"
	keepalivedVRRPPID   = "/run/keepalived-vrrp.pid"
	keepalivedLog       = "/share/keepalived.log"
	keepalivedNotifyLog = "/share/notify.log"
)

// keepalivedConfig is node i's keepalived.conf (rendered by the package
// the keepalived interop tests use).
func keepalivedConfig(i int) (string, error) {
	state := "BACKUP"
	if i == 0 {
		state = "MASTER"
	}
	return keepalivedtest.Config{RouterID: fmt.Sprintf("n%d", i+1), Instances: []keepalivedtest.Instance{{
		Name: "VI_1", State: state, Interface: "eth0", VRID: 51, Priority: uint8(120 - 20*i),
		AdvertInt: time.Second, AuthPass: "lablab", VIPs: []netip.Prefix{netip.PrefixFrom(vip, 24)},
		NotifyMaster: "/etc/keepalived/notify_master.sh", NotifyBackup: "/etc/keepalived/notify_backup.sh",
	}}}.Render("")
}

// keepalivedSetup writes the configuration and the seed's notify scripts
// (each step appended to the notify log with the guest's uptime).
func keepalivedSetup(i int) (string, error) {
	conf, err := keepalivedConfig(i)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`mkdir -p /etc/keepalived
cat > %[1]s <<'EOF'
%[2]sEOF
cat > /etc/keepalived/notify_master.sh <<'EOF'
#!/bin/sh
echo "$(cut -d' ' -f1 /proc/uptime) master" >> %[3]s
drbdadm primary %[4]s >> %[3]s 2>&1 && mount -t ext4 %[5]s %[6]s >> %[3]s 2>&1
echo "$(cut -d' ' -f1 /proc/uptime) master rc $?" >> %[3]s
EOF
cat > /etc/keepalived/notify_backup.sh <<'EOF'
#!/bin/sh
echo "$(cut -d' ' -f1 /proc/uptime) backup" >> %[3]s
umount %[6]s >> %[3]s 2>&1
drbdadm secondary %[4]s >> %[3]s 2>&1
echo "$(cut -d' ' -f1 /proc/uptime) backup rc $?" >> %[3]s
EOF
chmod 0755 /etc/keepalived/notify_master.sh /etc/keepalived/notify_backup.sh
`, keepalivedConf, conf, keepalivedNotifyLog, DRBDResource, DRBDDevice, DRBDMount), nil
}

// startKeepalived starts keepalived in the foreground (VRRP only), as the
// interop tests run it.
func (l *Lab) startKeepalived(ctx context.Context, n *node) error {
	p, err := l.vmOf(n).Spawn(ctx, []string{"/usr/sbin/keepalived", "--dont-fork", "--log-console", "--log-detail",
		"--no-syslog", "--vrrp", "-f", keepalivedConf, "-p", keepalivedPID, "-r", keepalivedVRRPPID}, keepalivedLog)
	if err != nil {
		return fmt.Errorf("vmlab: %s: starting keepalived: %w", n.name, err)
	}
	l.mu.Lock()
	n.daemon = p
	l.mu.Unlock()
	return nil
}

// keepalivedSignals signals keepalived's parent and VRRP child in one
// guest shell: kill9 stops both, then kills both (what pkill -9 does,
// without giving either a chance to react: see test/keepalivedtest),
// freeze stops them (child first), thaw continues them.
func keepalivedSignals(what string) string {
	pids := fmt.Sprintf("c=$(cat %s 2>/dev/null); p=$(cat %s 2>/dev/null)\n", keepalivedVRRPPID, keepalivedPID)
	switch what {
	case "kill9":
		return pids + "kill -STOP $c $p; kill -KILL $c $p; rm -f " + keepalivedVRRPPID + " " + keepalivedPID
	case "freeze":
		return pids + "kill -STOP $c; kill -STOP $p"
	default: // thaw
		return pids + "kill -CONT $p; kill -CONT $c"
	}
}

// waitSteadyDRBD waits until exactly one node is DRBD Primary with the
// file system mounted, both disks UpToDate and connected, stable for half
// a second (the keepalived lab's steady state: there is no lease to ask).
func (l *Lab) waitSteadyDRBD(ctx context.Context, timeout time.Duration) error {
	return labctl.WaitStable(ctx, timeout, 200*time.Millisecond, func() (string, bool) {
		var b strings.Builder
		primaries, ok := 0, true
		for _, n := range l.nodes {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := l.DRBDState(cctx, n.name)
			cancel()
			if err != nil {
				fmt.Fprintf(&b, "%s: %v; ", n.name, err)
				ok = false
				continue
			}
			fmt.Fprintf(&b, "%s: %s; ", n.name, st)
			ok = ok && st.Conn == drbd.Connected && st.Disk == drbd.UpToDate && st.PeerDisk == drbd.UpToDate
			if st.Role == drbd.Primary {
				primaries++
				if !l.mounted(ctx, n) {
					b.WriteString("(not mounted) ")
					ok = false
				}
			}
		}
		return b.String(), ok && primaries == 1
	})
}

// mounted reports whether the DRBD file system is mounted in n's VM.
func (l *Lab) mounted(ctx context.Context, n *node) bool {
	v := l.vmOf(n)
	if v == nil || exited(v) {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := v.ReadFile(cctx, "/proc/mounts")
	return err == nil && strings.Contains(string(b), DRBDDevice+" "+DRBDMount+" ")
}
