package drbd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Config.
const (
	DefaultStepTimeout     = 10 * time.Second
	DefaultUnmountAttempts = 5
	DefaultRetryInterval   = 200 * time.Millisecond
)

// Config is one DRBD resource of a group.
type Config struct {
	// Resource is the DRBD resource name (drbdadm's argument).
	Resource string
	// Device is its block device, /dev/drbdN; N is the minor /proc/drbd
	// lists it under.
	Device string
	// Mount, if set, is where the device is mounted after promotion
	// (FSType required, MountOptions passed as -o).
	Mount, FSType, MountOptions string
	// Services are started in order after the mount and stopped in
	// reverse before the unmount.
	Services []Service
	// KillHolders: when the unmount finds the filesystem busy, kill the
	// processes holding it (SIGKILL, found as fuser -km finds them) before
	// retrying.
	KillHolders bool
	// AfterSplitBrain is SplitBrainManual (default) or SplitBrainLease.
	AfterSplitBrain string
	// StepTimeout bounds each program run (default DefaultStepTimeout);
	// the caller's context bounds the whole promotion or demotion.
	StepTimeout time.Duration
	// UnmountAttempts and RetryInterval bound the unmount's retries.
	UnmountAttempts int
	RetryInterval   time.Duration
	// Paths of the programs and files (DefaultPaths when zero).
	Paths Paths
}

// Service is a systemd unit (Unit) or a script run with "start" and
// "stop" (Script, an absolute path).
type Service struct {
	Unit, Script string
}

func (s Service) String() string {
	if s.Script != "" {
		return s.Script
	}
	return s.Unit
}

// unitSuffixes are the unit types `systemctl start` takes.
var unitSuffixes = []string{".service", ".target", ".mount", ".socket", ".timer", ".path", ".swap", ".scope", ".slice", ".automount", ".device"}

// ParseService reads a services entry: an absolute path is a script,
// anything else a systemd unit name with its type suffix
// ("nginx.service").
func ParseService(s string) (Service, error) {
	if strings.HasPrefix(s, "/") {
		if filepath.Clean(s) != s {
			return Service{}, fmt.Errorf("%q: write the script's path plainly (%s)", s, filepath.Clean(s))
		}
		return Service{Script: s}, nil
	}
	if s == "" || len(s) > 255 || strings.HasPrefix(s, "-") {
		return Service{}, fmt.Errorf("%q: want a systemd unit (nginx.service) or a script's absolute path", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":-_.\\@", c)) {
			return Service{}, fmt.Errorf("%q: %q is not allowed in a unit name (a script needs an absolute path)", s, c)
		}
	}
	for _, suf := range unitSuffixes {
		if strings.HasSuffix(s, suf) && len(s) > len(suf) {
			return Service{Unit: s}, nil
		}
	}
	return Service{}, fmt.Errorf("%q: a unit name needs its type (nginx.service, app.target, ...)", s)
}

// MinorOf returns N of /dev/drbdN.
func MinorOf(device string) (int, error) {
	n, ok := strings.CutPrefix(device, "/dev/drbd")
	m, err := strconv.Atoi(n)
	if !ok || err != nil || m < 0 || m > 1<<20 || strconv.Itoa(m) != n {
		return 0, fmt.Errorf("%q: want /dev/drbdN (the minor is read from /proc/drbd)", device)
	}
	return m, nil
}

// withDefaults fills in the zero fields.
func (c Config) withDefaults() Config {
	if c.StepTimeout <= 0 {
		c.StepTimeout = DefaultStepTimeout
	}
	if c.UnmountAttempts <= 0 {
		c.UnmountAttempts = DefaultUnmountAttempts
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.Paths == (Paths{}) {
		c.Paths = DefaultPaths()
	}
	return c
}

// Validate checks c. Errors are "drbd: KEY: message", KEY as the
// configuration file names it (resource, device, mount, fstype,
// mount_options, services[i], kill_holders).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("drbd: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.Resource == "":
		bad("resource", "required (the DRBD resource name, as drbdadm takes it)")
	case strings.HasPrefix(c.Resource, "-") || strings.ContainsAny(c.Resource, " \t\n/\"'\\") || len(c.Resource) > 128:
		bad("resource", "%q is not a DRBD resource name", c.Resource)
	}
	if c.Device == "" {
		bad("device", "required (/dev/drbdN)")
	} else if _, err := MinorOf(c.Device); err != nil {
		bad("device", "%v", err)
	}
	switch {
	case c.Mount == "":
		if c.FSType != "" || c.MountOptions != "" {
			bad("mount", "fstype and mount_options need a mount")
		}
		if c.KillHolders {
			bad("kill_holders", "needs a mount")
		}
	case !filepath.IsAbs(c.Mount) || filepath.Clean(c.Mount) != c.Mount || c.Mount == "/":
		bad("mount", "%q: want an absolute, clean path other than /", c.Mount)
	case strings.ContainsAny(c.Mount, " \t\n\\"):
		bad("mount", "%q: whitespace and backslashes are not supported in the mountpoint", c.Mount)
	case c.FSType == "":
		bad("fstype", "required with mount (ext4, xfs, ...)")
	}
	if c.FSType != "" && (strings.ContainsAny(c.FSType, " \t\n,/") || strings.HasPrefix(c.FSType, "-")) {
		bad("fstype", "%q is not a filesystem type", c.FSType)
	}
	if strings.ContainsAny(c.MountOptions, " \t\n") || strings.HasPrefix(c.MountOptions, "-") {
		bad("mount_options", "%q: want comma-separated options without spaces (noatime,data=ordered)", c.MountOptions)
	}
	seen := map[Service]bool{}
	for i, s := range c.Services {
		if (s.Unit == "") == (s.Script == "") {
			bad(fmt.Sprintf("services[%d]", i), "want a unit or a script")
			continue
		}
		if seen[s] {
			bad(fmt.Sprintf("services[%d]", i), "%s is listed twice", s)
		}
		seen[s] = true
	}
	return errors.Join(errs...)
}
