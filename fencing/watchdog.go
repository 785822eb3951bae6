package fencing

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// WatchdogMode says how much the node relies on a watchdog device
// (Patroni's vocabulary).
type WatchdogMode int

const (
	// WatchdogOff never touches the device.
	WatchdogOff WatchdogMode = iota
	// WatchdogAuto uses the device when it can be opened and its timeout
	// set, and logs a warning otherwise.
	WatchdogAuto
	// WatchdogRequired makes every Arm fail unless the device is armed
	// with a timeout no longer than asked: the caller must not own then.
	WatchdogRequired
)

func (m WatchdogMode) String() string {
	switch m {
	case WatchdogOff:
		return "off"
	case WatchdogAuto:
		return "auto"
	case WatchdogRequired:
		return "required"
	}
	return fmt.Sprintf("WatchdogMode(%d)", int(m))
}

// ParseWatchdogMode parses "off", "auto" or "required".
func ParseWatchdogMode(s string) (WatchdogMode, error) {
	for _, m := range []WatchdogMode{WatchdogOff, WatchdogAuto, WatchdogRequired} {
		if s == m.String() {
			return m, nil
		}
	}
	return WatchdogOff, fmt.Errorf("fencing: watchdog mode %q: want off, auto or required", s)
}

// Watchdog drives a Linux watchdog device (/dev/watchdog): Arm opens it
// (which starts the hardware or softdog countdown) and sets its timeout,
// Feed restarts the countdown, Disarm writes the magic 'V' and closes it
// so the driver stops (unless built with nowayout). If the process dies or
// freezes while armed, the machine resets when the timeout passes.
//
// A path that is not a character device (a regular file or a FIFO, as in
// tests) gets the same writes, but no timeout ioctl: Arm logs that the
// timeout is not enforced. Safe for concurrent use.
type Watchdog struct {
	path string
	mode WatchdogMode
	log  *slog.Logger

	mu      sync.Mutex
	dev     *os.File
	timeout time.Duration // as set in the device (0: not a watchdog device)
}

// NewWatchdog returns a watchdog for the device at path; it opens nothing.
func NewWatchdog(path string, mode WatchdogMode, log *slog.Logger) *Watchdog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watchdog{path: path, mode: mode, log: log}
}

// Mode returns the configured mode.
func (w *Watchdog) Mode() WatchdogMode { return w.mode }

// Probe checks, without opening it (opening starts the countdown), that
// the device exists: mode required fails without one, auto only logs.
func (w *Watchdog) Probe() error {
	if w.mode == WatchdogOff {
		return nil
	}
	_, err := os.Stat(w.path)
	if err != nil {
		return w.fail(fmt.Errorf("%w: watchdog %s: %w", ErrUnavailable, w.path, err))
	}
	return nil
}

// fail returns err in mode required; in mode auto it logs it and returns nil.
func (w *Watchdog) fail(err error) error {
	if w.mode == WatchdogRequired {
		return err
	}
	w.log.Warn("fencing: watchdog not used", "err", err)
	return nil
}

// Armed reports whether the device is open (being fed).
func (w *Watchdog) Armed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dev != nil
}

// Arm opens the device if it is not open and sets its timeout to timeout
// rounded down to whole seconds (at least 1 s). It then feeds it once.
// A driver that keeps a longer timeout than asked is refused (disarmed):
// required → error, auto → warning.
func (w *Watchdog) Arm(timeout time.Duration) error {
	if w.mode == WatchdogOff {
		return nil
	}
	secs := int(timeout / time.Second)
	if secs < 1 {
		return fmt.Errorf("fencing: watchdog timeout %v below 1s", timeout)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dev == nil {
		dev, err := os.OpenFile(w.path, os.O_WRONLY, 0)
		if err != nil {
			return w.fail(fmt.Errorf("%w: watchdog %s: %w", ErrUnavailable, w.path, err))
		}
		w.dev = dev
	}
	fi, err := w.dev.Stat()
	if err != nil {
		return w.fail(errors.Join(fmt.Errorf("fencing: watchdog %s: %w", w.path, err), w.closeLocked()))
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		w.log.Warn("fencing: watchdog path is not a character device: timeout not set, only writes", "path", w.path)
		w.timeout = 0
	} else if err := w.setTimeout(secs); err != nil {
		return w.fail(errors.Join(err, w.closeLocked()))
	}
	return w.feedLocked()
}

func (w *Watchdog) setTimeout(secs int) error {
	fd := int(w.dev.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, secs); err != nil {
		return fmt.Errorf("fencing: watchdog %s: set timeout %ds: %w", w.path, secs, err)
	}
	got, err := unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT)
	if err != nil {
		return fmt.Errorf("fencing: watchdog %s: read timeout: %w", w.path, err)
	}
	if got > secs {
		return fmt.Errorf("fencing: watchdog %s: driver set timeout %ds, longer than the %ds asked", w.path, got, secs)
	}
	w.timeout = time.Duration(got) * time.Second
	return nil
}

// Timeout returns the timeout the device confirmed (0 if none was set).
func (w *Watchdog) Timeout() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.timeout
}

// Feed restarts the device's countdown. Not armed: nothing to do.
func (w *Watchdog) Feed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dev == nil {
		return nil
	}
	return w.feedLocked()
}

func (w *Watchdog) feedLocked() error {
	// Any byte but 'V' pings the driver (and cancels a pending magic close).
	if _, err := w.dev.Write([]byte{'1'}); err != nil {
		return fmt.Errorf("fencing: watchdog %s: feed: %w", w.path, err)
	}
	return nil
}

// Disarm writes the magic close character 'V' and closes the device, so
// the driver stops counting (drivers built with nowayout keep counting:
// the machine then resets after the timeout).
func (w *Watchdog) Disarm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dev == nil {
		return nil
	}
	return w.closeLocked()
}

func (w *Watchdog) closeLocked() error {
	_, werr := w.dev.Write([]byte{'V'})
	cerr := w.dev.Close()
	w.dev, w.timeout = nil, 0
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("fencing: watchdog %s: magic close: %w", w.path, err)
	}
	return nil
}
