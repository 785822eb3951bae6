package fencing_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/fencing/fencingtest"
)

// clock is a manual clock for the in-memory fence.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var vip = netip.MustParseAddr("10.0.0.1")

func setup(t *testing.T) (*clock, *fencingtest.Fence) {
	c := &clock{t: time.Unix(1000, 0)}
	f := fencingtest.New(c.now)
	if err := errors.Join(f.Install(t.Context()), f.Manage([]netip.Addr{vip})); err != nil {
		t.Fatal(err)
	}
	return c, f
}

func TestRefreshArmsUntilDeadlineMinusMargin(t *testing.T) {
	c, f := setup(t)
	deadline := c.t.Add(2 * time.Second)
	if err := fencing.Refresh(f, vip, deadline, 200*time.Millisecond, c.now); err != nil {
		t.Fatal(err)
	}
	if left, ok, _ := f.Armed(vip); !ok || left != 1800*time.Millisecond {
		t.Errorf("Armed = %v, %v; want 1.8s", left, ok)
	}
	c.t = deadline.Add(-200*time.Millisecond - time.Nanosecond)
	if !f.Passes(vip) {
		t.Errorf("fence closed before deadline − margin")
	}
	c.t = deadline.Add(-200 * time.Millisecond)
	if f.Passes(vip) {
		t.Errorf("fence still open at deadline − margin")
	}
	// Sub-millisecond remainders are truncated, never rounded up.
	c.t = time.Unix(1000, 0)
	fencing.Refresh(f, vip, c.t.Add(1500*time.Microsecond+200*time.Millisecond), 200*time.Millisecond, c.now)
	if left, ok, _ := f.Armed(vip); !ok || left != time.Millisecond {
		t.Errorf("1.5ms left: Armed = %v, %v; want 1ms", left, ok)
	}
}

func TestRefreshPastDeadlineDisarms(t *testing.T) {
	c, f := setup(t)
	deadline := c.t.Add(2 * time.Second)
	fencing.Refresh(f, vip, deadline, 100*time.Millisecond, c.now)
	for _, at := range []time.Duration{1900 * time.Millisecond, 1899*time.Millisecond + 500*time.Microsecond, 3 * time.Second} {
		fencing.Refresh(f, vip, deadline, 100*time.Millisecond, c.now)
		c.t = time.Unix(1000, 0).Add(at)
		err := fencing.Refresh(f, vip, deadline, 100*time.Millisecond, c.now)
		if !errors.Is(err, fencing.ErrExpired) {
			t.Errorf("refresh at %v: err = %v, want ErrExpired", at, err)
		}
		if _, ok, _ := f.Armed(vip); ok {
			t.Errorf("refresh at %v left the VIP armed", at)
		}
		c.t = time.Unix(1000, 0)
	}
}

func TestRefreshLateAfterFreeze(t *testing.T) {
	for _, tc := range []struct {
		name   string
		freeze time.Duration
		late   bool
	}{
		{"no freeze", 0, false},
		{"freeze within margin", 100 * time.Millisecond, false},
		{"freeze longer than margin", 101 * time.Millisecond, true},
		{"freeze past deadline", 5 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := setup(t)
			deadline := c.t.Add(2 * time.Second)
			f.OnArm = func() { c.t = c.t.Add(tc.freeze) } // the clock jumps during the kernel call
			err := fencing.Refresh(f, vip, deadline, 100*time.Millisecond, c.now)
			if got := errors.Is(err, fencing.ErrLate); got != tc.late {
				t.Fatalf("err = %v, late = %v, want %v", err, got, tc.late)
			}
			_, armed, _ := f.Armed(vip)
			if armed == tc.late {
				t.Errorf("armed = %v after err %v", armed, err)
			}
			log := f.Log()
			if tc.late && log[len(log)-1] != "disarm "+vip.String() {
				t.Errorf("late refresh did not end with a disarm: %v", log)
			}
		})
	}
}

func TestRefreshArmFailureDisarms(t *testing.T) {
	c, f := setup(t)
	fencing.Refresh(f, vip, c.t.Add(time.Second), 0, c.now)
	f.ArmErr = errors.New("netlink: boom")
	if err := fencing.Refresh(f, vip, c.t.Add(time.Second), 0, c.now); err == nil {
		t.Fatal("no error")
	}
	if _, ok, _ := f.Armed(vip); ok {
		t.Errorf("VIP still armed after a failed refresh")
	}
	if err := fencing.Refresh(f, vip, c.t.Add(time.Second), -time.Millisecond, c.now); err == nil {
		t.Errorf("negative margin accepted")
	}
}

func TestLifetimeFor(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		left, margin time.Duration
		want         time.Duration
		ok           bool
	}{
		{10 * time.Second, 0, 8 * time.Second, true},                      // 10 − 1.25 = 8.75 → 8
		{10 * time.Second, 750 * time.Millisecond, 8 * time.Second, true}, // 8.0 exactly
		{10 * time.Second, 751 * time.Millisecond, 7 * time.Second, true},
		{2250 * time.Millisecond, 0, time.Second, true},
		{2249 * time.Millisecond, 0, time.Second, false},
		{0, 0, time.Second, false},
		{-time.Hour, 0, time.Second, false},
	} {
		got, ok := fencing.LifetimeFor(now.Add(tc.left), now, tc.margin)
		if got != tc.want || ok != tc.ok {
			t.Errorf("LifetimeFor(left %v, margin %v) = %v, %v; want %v, %v", tc.left, tc.margin, got, ok, tc.want, tc.ok)
		}
		if got == 0 || got%time.Second != 0 {
			t.Errorf("lifetime %v is zero or not whole seconds", got)
		}
		if ok && got+fencing.AddrLifetimeSlack > tc.left-tc.margin {
			t.Errorf("lifetime %v + slack outlives deadline − margin (%v)", got, tc.left-tc.margin)
		}
	}
}
