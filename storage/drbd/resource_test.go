package drbd_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/node/resource"
	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/storage/drbd/drbdtest"
)

var _ resource.Resource = (*drbd.Resource)(nil)
var _ resource.Starter = (*drbd.Resource)(nil)

func cfg() drbd.Config {
	return drbd.Config{Resource: "r0", Device: "/dev/drbd0", Mount: "/srv", FSType: "ext4", MountOptions: "noatime",
		Services: []drbd.Service{{Unit: "nginx.service"}, {Script: "/usr/local/bin/app"}}}
}

func newRes(t *testing.T, c drbd.Config, h *drbdtest.Host) *drbd.Resource {
	t.Helper()
	r, err := drbd.New(c, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPromoteAndDemoteInOrder(t *testing.T) {
	h := drbdtest.NewHost("r0", 0)
	r := newRes(t, cfg(), h)
	ctx := context.Background()
	if r.Name() != "drbd r0" {
		t.Fatalf("name %q", r.Name())
	}
	if err := r.Promote(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if dev, ok := h.Mounted("/srv"); h.Role() != drbd.Primary || !ok || dev != "/dev/drbd0" || !h.Running("nginx.service") || !h.Running("/usr/local/bin/app") {
		t.Fatalf("after promote: role %s mount %q %v calls %v", h.Role(), dev, ok, h.Calls())
	}
	// Idempotent for the epoch: already Primary, mounted; services started again.
	if err := r.Promote(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := r.Demote(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Mounted("/srv"); h.Role() != drbd.Secondary || ok || h.Running("nginx.service") || h.Running("/usr/local/bin/app") {
		t.Fatalf("after demote: role %s mounted %v calls %v", h.Role(), ok, h.Calls())
	}
	want := []string{
		"drbdadm primary r0", "mount -t ext4 -o noatime /dev/drbd0 /srv", "systemctl start nginx.service", "app start",
		"systemctl start nginx.service", "app start",
		"app stop", "systemctl stop nginx.service", "umount /srv", "drbdadm secondary r0",
	}
	if got := h.Calls(); !slices.Equal(got, want) {
		t.Fatalf("calls\n got %q\nwant %q", got, want)
	}
	// A second demote stops the services again but leaves DRBD alone.
	if err := r.Demote(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if got := h.Calls()[len(want):]; !slices.Equal(got, []string{"app stop", "systemctl stop nginx.service"}) {
		t.Fatalf("second demote: %q", got)
	}
}

func TestPromoteRefusals(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		setup  func(h, peer *drbdtest.Host, r *drbd.Resource)
		reason string
	}{
		{"inconsistent", func(h, _ *drbdtest.Host, _ *drbd.Resource) { h.Set(drbd.Secondary, drbd.Inconsistent, drbd.Connected) }, "Inconsistent"},
		{"outdated", func(h, _ *drbdtest.Host, _ *drbd.Resource) { h.Set(drbd.Secondary, drbd.Outdated, drbd.WFConnection) }, "Outdated"},
		{"consistent, peer unknown", func(h, _ *drbdtest.Host, _ *drbd.Resource) { h.Set(drbd.Secondary, drbd.Consistent, drbd.WFConnection) },
			"not known Outdated"},
		{"peer primary", func(h, peer *drbdtest.Host, _ *drbd.Resource) {
			drbdtest.Link(h, peer)
			peer.Set(drbd.Primary, drbd.UpToDate, drbd.Connected)
		}, "peer is Primary"},
		{"unconfigured", func(h, _ *drbdtest.Host, _ *drbd.Resource) { h.Unconfigure() }, "not configured"},
		{"marked at the quorum", func(_, _ *drbdtest.Host, r *drbd.Resource) {
			r.OutdatedAtQuorum = func(context.Context) (bool, error) { return true, nil }
		}, "marked outdated at the quorum"},
		{"mark unreadable", func(_, _ *drbdtest.Host, r *drbd.Resource) {
			r.OutdatedAtQuorum = func(context.Context) (bool, error) { return false, errors.New("etcd: no leader") }
		}, "no leader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, peer := drbdtest.NewHost("r0", 0), drbdtest.NewHost("r0", 0)
			r := newRes(t, cfg(), h)
			tc.setup(h, peer, r)
			err := r.Promote(ctx, 3)
			if !errors.Is(err, drbd.ErrRefused) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %v, want ErrRefused with %q", err, tc.reason)
			}
			if n, last := r.Refusals(); n != 1 || !strings.Contains(last, tc.reason) {
				t.Fatalf("refusals %d, last %q", n, last)
			}
			for _, c := range h.Calls() {
				if strings.HasPrefix(c, "drbdadm primary") || strings.HasPrefix(c, "mount") {
					t.Fatalf("refused promotion ran %q", c)
				}
			}
		})
	}
	// Consistent with the peer known Outdated may promote.
	h := drbdtest.NewHost("r0", 0)
	h.Set(drbd.Secondary, drbd.Consistent, drbd.WFConnection)
	h.SetPeerDiskAlone(drbd.Outdated)
	r := newRes(t, drbd.Config{Resource: "r0", Device: "/dev/drbd0"}, h)
	if err := r.Promote(ctx, 3); err != nil || h.Role() != drbd.Primary {
		t.Fatalf("consistent with an outdated peer: %v, role %s", err, h.Role())
	}
}

func TestFailedPromoteUndoesItself(t *testing.T) {
	h := drbdtest.NewHost("r0", 0)
	h.Fail("systemctl start", &drbd.ExitError{Code: 5, Output: "Unit nginx.service not found."})
	r := newRes(t, cfg(), h)
	err := r.Promote(context.Background(), 4)
	if err == nil || !strings.Contains(err.Error(), "start nginx.service") || !strings.Contains(err.Error(), "not found") ||
		!strings.Contains(err.Error(), "DRBD now minor 0 cs:StandAlone ro:Primary") {
		t.Fatalf("err %v", err)
	}
	if _, ok := h.Mounted("/srv"); h.Role() != drbd.Secondary || ok {
		t.Fatalf("not undone: role %s mounted %v calls %v", h.Role(), ok, h.Calls())
	}
}

func TestDemoteBusyMount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		h := drbdtest.NewHost("r0", 0)
		r := newRes(t, cfg(), h)
		if err := r.Promote(ctx, 1); err != nil {
			t.Fatal(err)
		}
		h.Busy(100)
		err := r.Demote(ctx, 1)
		if err == nil || !strings.Contains(err.Error(), "umount /srv: still mounted after 5 attempts (kill_holders is off)") ||
			!errors.Is(err, drbd.ErrStillPrimary) || !strings.Contains(err.Error(), "held open") {
			t.Fatalf("err %v", err)
		}
		if n := strings.Count(strings.Join(h.Calls(), ","), "umount /srv"); n != 5 {
			t.Fatalf("%d umount attempts", n)
		}

		// kill_holders: the holders are killed, then the unmount succeeds.
		c := cfg()
		c.KillHolders = true
		r = newRes(t, c, h)
		start := time.Now()
		if err := r.Demote(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if h.Role() != drbd.Secondary || time.Since(start) != drbd.DefaultRetryInterval {
			t.Fatalf("role %s took %v", h.Role(), time.Since(start))
		}
		calls := h.Calls()
		if tail := calls[len(calls)-4:]; !slices.Equal(tail, []string{"umount /srv", "kill-holders /srv", "umount /srv", "drbdadm secondary r0"}) {
			t.Fatalf("calls %q", tail)
		}
	})
}

func TestDemoteIsBoundedByCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := drbdtest.NewHost("r0", 0)
		r := newRes(t, cfg(), h)
		if err := r.Promote(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		h.Hang("umount")
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := r.Demote(ctx, 1)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 300*time.Millisecond {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
		if !strings.Contains(err.Error(), "DRBD now minor 0 cs:StandAlone ro:Primary") {
			t.Fatalf("the error does not say DRBD's state: %v", err)
		}
	})
}

func TestStartDemotesLeftovers(t *testing.T) {
	ctx := context.Background()
	// Primary and mounted from an earlier run: demoted.
	h := drbdtest.NewHost("r0", 0)
	h.Set(drbd.Primary, drbd.UpToDate, drbd.WFConnection)
	h.Mount("/dev/drbd0", "/srv")
	if err := newRes(t, cfg(), h).Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Mounted("/srv"); h.Role() != drbd.Secondary || ok {
		t.Fatalf("role %s mounted %v", h.Role(), ok)
	}
	// Nothing to do: no calls at all.
	for name, setup := range map[string]func(*drbdtest.Host){
		"secondary":    func(*drbdtest.Host) {},
		"unconfigured": (*drbdtest.Host).Unconfigure,
		"no module":    (*drbdtest.Host).NoModule,
	} {
		h := drbdtest.NewHost("r0", 0)
		setup(h)
		if err := newRes(t, cfg(), h).Start(ctx); err != nil || len(h.Calls()) != 0 {
			t.Fatalf("%s: err %v calls %v", name, err, h.Calls())
		}
	}
	// A Primary that will not demote fails the start, saying why.
	h = drbdtest.NewHost("r0", 0)
	h.Set(drbd.Primary, drbd.UpToDate, drbd.WFConnection)
	h.Fail("drbdadm secondary", &drbd.ExitError{Code: 11, Output: "State change failed: (-12) Device is held open by someone"})
	if err := newRes(t, cfg(), h).Start(ctx); err == nil || !strings.Contains(err.Error(), "held open") {
		t.Fatalf("err %v", err)
	}
}

// Demote with the module gone (no /proc/drbd): nothing can be Primary,
// so no drbdadm; an unparseable /proc/drbd is doubt: drbdadm secondary.
func TestDemoteWithoutTheModuleOrAReadableState(t *testing.T) {
	h := drbdtest.NewHost("r0", 0)
	h.NoModule()
	if err := newRes(t, drbd.Config{Resource: "r0", Device: "/dev/drbd0"}, h).Demote(context.Background(), 1); err != nil || len(h.Calls()) != 0 {
		t.Fatalf("err %v calls %v", err, h.Calls())
	}
	h = drbdtest.NewHost("r0", 0)
	h.SetProc("version: 9.2.4 (api:2/proto:86-122)\n")
	err := newRes(t, drbd.Config{Resource: "r0", Device: "/dev/drbd0"}, h).Demote(context.Background(), 1)
	if err != nil || !slices.Equal(h.Calls(), []string{"drbdadm secondary r0"}) {
		t.Fatalf("unreadable state: err %v calls %v", err, h.Calls())
	}
	// At start too: an unreadable state is demoted.
	h = drbdtest.NewHost("r0", 0)
	h.SetProc("garbage\n")
	if err := newRes(t, drbd.Config{Resource: "r0", Device: "/dev/drbd0"}, h).Start(context.Background()); err != nil ||
		!slices.Equal(h.Calls(), []string{"drbdadm secondary r0"}) {
		t.Fatalf("start with an unreadable state: err %v calls %v", err, h.Calls())
	}
}

// Another filesystem on the mountpoint is neither served nor unmounted.
func TestForeignMount(t *testing.T) {
	ctx := context.Background()
	h := drbdtest.NewHost("r0", 0)
	h.Mount("/dev/sdb1", "/srv")
	r := newRes(t, cfg(), h)
	err := r.Promote(ctx, 1)
	if err == nil || !strings.Contains(err.Error(), "/dev/sdb1 is mounted on /srv, not /dev/drbd0") {
		t.Fatalf("err %v", err)
	}
	if dev, _ := h.Mounted("/srv"); dev != "/dev/sdb1" || h.Role() != drbd.Secondary {
		t.Fatalf("mount %q role %s after the refusal; calls %v", dev, h.Role(), h.Calls())
	}
	if err := r.Start(ctx); err != nil || slices.Contains(h.Calls(), "umount /srv") {
		t.Fatalf("start: %v, calls %v", err, h.Calls())
	}
}

func TestSwitchoverBetweenTwoHosts(t *testing.T) {
	ctx := context.Background()
	a, b := drbdtest.NewHost("r0", 0), drbdtest.NewHost("r0", 0)
	drbdtest.Link(a, b)
	ra, rb := newRes(t, cfg(), a), newRes(t, cfg(), b)
	if err := ra.Promote(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := rb.Promote(ctx, 2); !errors.Is(err, drbd.ErrRefused) {
		t.Fatalf("second Primary: %v", err)
	}
	if err := ra.Demote(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := rb.Promote(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if s, err := ra.State(); err != nil || s.PeerRole != drbd.Primary || s.Role != drbd.Secondary {
		t.Fatalf("a sees %v %v", s, err)
	}
}

func TestMountSource(t *testing.T) {
	mi := []byte("22 1 0:21 / / rw - rootfs rootfs rw\n" +
		"40 22 147:0 / /srv/my\\040data rw,relatime shared:2 master:1 - ext4 /dev/drbd0 rw\n" +
		"41 22 147:1 / /srv rw - ext4 /dev/drbd1 rw\n42 22 147:2 / /srv rw - xfs /dev/drbd2 rw\n")
	if src, ok := drbd.MountSource(mi, "/srv/my data"); !ok || src != "/dev/drbd0" {
		t.Fatalf("%q %v", src, ok)
	}
	if src, ok := drbd.MountSource(mi, "/srv"); !ok || src != "/dev/drbd2" {
		t.Fatalf("last mount wins: %q %v", src, ok)
	}
	if _, ok := drbd.MountSource(mi, "/mnt"); ok {
		t.Fatal("found /mnt")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := cfg().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mod func(*drbd.Config)
		key string
	}{
		{func(c *drbd.Config) { c.Resource = "" }, "drbd: resource:"},
		{func(c *drbd.Config) { c.Resource = "r 0" }, "drbd: resource:"},
		{func(c *drbd.Config) { c.Device = "" }, "drbd: device:"},
		{func(c *drbd.Config) { c.Device = "/dev/sda" }, "drbd: device:"},
		{func(c *drbd.Config) { c.Device = "/dev/drbd01" }, "drbd: device:"},
		{func(c *drbd.Config) { c.Mount = "srv" }, "drbd: mount:"},
		{func(c *drbd.Config) { c.Mount = "/" }, "drbd: mount:"},
		{func(c *drbd.Config) { c.FSType = "" }, "drbd: fstype:"},
		{func(c *drbd.Config) { c.MountOptions = "a, b" }, "drbd: mount_options:"},
		{func(c *drbd.Config) { c.Mount, c.FSType, c.MountOptions = "", "", ""; c.KillHolders = true }, "drbd: kill_holders:"},
		{func(c *drbd.Config) { c.Services = append(c.Services, drbd.Service{Unit: "nginx.service"}) }, "drbd: services[2]:"},
		{func(c *drbd.Config) { c.Services = []drbd.Service{{}} }, "drbd: services[0]:"},
	} {
		c := cfg()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%+v: err %v, want %q", c, err, tc.key)
		}
		if _, err := drbd.New(c, drbdtest.NewHost("r0", 0), nil); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
}

func TestParseService(t *testing.T) {
	for in, want := range map[string]drbd.Service{
		"nginx.service": {Unit: "nginx.service"}, "app@1.service": {Unit: "app@1.service"}, "web.target": {Unit: "web.target"},
		"/usr/local/bin/x": {Script: "/usr/local/bin/x"},
	} {
		if got, err := drbd.ParseService(in); err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "nginx", "-x.service", "a b.service", "bin/x", "/usr/local/../bin/x", ".service", "x;y.service"} {
		if s, err := drbd.ParseService(bad); err == nil {
			t.Errorf("%q accepted as %+v", bad, s)
		}
	}
	if m, err := drbd.MinorOf("/dev/drbd12"); err != nil || m != 12 {
		t.Fatalf("%d %v", m, err)
	}
}

// A split-brain resolution waits for a promotion under way (one
// operation at a time on the resource, bounded by the caller's context),
// and once the resource is free it carries out nothing if its decision
// no longer holds (this node got the lease meanwhile): no demotion of the
// new Primary, no --discard-my-data.
func TestResolveSplitBrainWaitsAndRechecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := drbdtest.NewHost("r0", 0)
		h.Set(drbd.Secondary, drbd.UpToDate, drbd.StandAlone)
		h.Hang("mount") // the promotion stops at its mount
		r := newRes(t, cfg(), h)
		pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer pcancel()
		promoted := make(chan error, 1)
		go func() { promoted <- r.Promote(pctx, 9) }()
		synctest.Wait() // Promote holds the resource, blocked in mount

		wctx, wcancel := context.WithTimeout(context.Background(), time.Second)
		_, err := r.ResolveSplitBrain(wctx, drbd.SplitBrainDiscardMine, nil)
		wcancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for another operation") {
			t.Fatalf("resolve beside a promotion: %v", err)
		}
		asked := false
		resolved := make(chan error, 1)
		go func() {
			_, err := r.ResolveSplitBrain(context.Background(), drbd.SplitBrainDiscardMine, func(context.Context) bool { asked = true; return false })
			resolved <- err
		}()
		synctest.Wait()
		select {
		case err := <-resolved:
			t.Fatalf("resolved while the promotion runs: %v", err)
		default:
		}
		if err := <-promoted; err == nil { // the hung mount ran out at 5 s
			t.Fatal("promotion with a hung mount succeeded")
		}
		if err := <-resolved; !errors.Is(err, drbd.ErrDecisionChanged) || !asked {
			t.Fatalf("resolve after the lease moved: %v (asked %v)", err, asked)
		}
		for _, c := range h.Calls() {
			if strings.Contains(c, "discard-my-data") || strings.HasPrefix(c, "drbdadm get-gi") {
				t.Errorf("ran %q although the decision no longer held: %q", c, h.Calls())
			}
		}
	})
}
