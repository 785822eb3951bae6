package fencing_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/fencing"
)

func TestWatchdogFakeDevice(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "watchdog")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w := fencing.NewWatchdog(dev, fencing.WatchdogRequired, log(t))
	if err := w.Probe(); err != nil {
		t.Fatal(err)
	}
	if err := w.Feed(); err != nil || w.Armed() {
		t.Fatalf("Feed before Arm: %v, armed %v", err, w.Armed())
	}
	if err := w.Arm(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := w.Feed(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Disarm(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dev); string(b) != "1111V" {
		t.Errorf("device got %q, want arm+3 feeds+magic close = %q", b, "1111V")
	}
	if w.Armed() || w.Disarm() != nil || w.Feed() != nil {
		t.Errorf("after Disarm: armed=%v, or repeated Disarm/Feed failed", w.Armed())
	}
	if w.Timeout() != 0 {
		t.Errorf("regular file reports a device timeout %v", w.Timeout())
	}
}

func TestWatchdogFIFO(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "wd.fifo")
	if err := syscall.Mkfifo(dev, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		r, err := os.Open(dev)
		if err != nil {
			got <- nil
			return
		}
		defer r.Close()
		var all []byte
		buf := make([]byte, 16)
		for {
			n, err := r.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				got <- all
				return
			}
		}
	}()
	w := fencing.NewWatchdog(dev, fencing.WatchdogAuto, log(t))
	if err := w.Arm(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	w.Feed()
	w.Disarm()
	if b := <-got; string(b) != "11V" {
		t.Errorf("FIFO got %q, want %q", b, "11V")
	}
}

func TestWatchdogModes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	req := fencing.NewWatchdog(missing, fencing.WatchdogRequired, log(t))
	if err := req.Probe(); !errors.Is(err, fencing.ErrUnavailable) {
		t.Errorf("required Probe without device = %v", err)
	}
	if err := req.Arm(5 * time.Second); !errors.Is(err, fencing.ErrUnavailable) {
		t.Errorf("required Arm without device = %v", err)
	}
	auto := fencing.NewWatchdog(missing, fencing.WatchdogAuto, log(t))
	if err := auto.Arm(5 * time.Second); err != nil || auto.Armed() {
		t.Errorf("auto Arm without device = %v, armed %v", err, auto.Armed())
	}
	dev := filepath.Join(t.TempDir(), "wd")
	os.WriteFile(dev, nil, 0o600)
	off := fencing.NewWatchdog(dev, fencing.WatchdogOff, log(t))
	if err := errors.Join(off.Arm(time.Second), off.Feed(), off.Disarm()); err != nil || off.Armed() {
		t.Errorf("mode off: %v, armed %v", err, off.Armed())
	}
	if b, _ := os.ReadFile(dev); len(b) != 0 {
		t.Errorf("mode off wrote %q", b)
	}
	if err := fencing.NewWatchdog(dev, fencing.WatchdogRequired, log(t)).Arm(999 * time.Millisecond); err == nil {
		t.Errorf("sub-second timeout accepted")
	}
	// A character device that is not a watchdog: the timeout ioctl fails.
	if _, err := os.Stat("/dev/null"); err == nil {
		if err := fencing.NewWatchdog("/dev/null", fencing.WatchdogRequired, log(t)).Arm(5 * time.Second); err == nil {
			t.Errorf("required Arm on /dev/null (no WDIOC_SETTIMEOUT) succeeded")
		}
		a := fencing.NewWatchdog("/dev/null", fencing.WatchdogAuto, log(t))
		if err := a.Arm(5 * time.Second); err != nil || a.Armed() {
			t.Errorf("auto Arm on /dev/null = %v, armed %v; want nil, not armed", err, a.Armed())
		}
	}
	for _, s := range []string{"off", "auto", "required"} {
		if m, err := fencing.ParseWatchdogMode(s); err != nil || m.String() != s {
			t.Errorf("ParseWatchdogMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := fencing.ParseWatchdogMode("on"); err == nil {
		t.Errorf("ParseWatchdogMode(on) accepted")
	}
}
