// Package lhtest builds the leasehold binaries once per test process (go
// build), for tests that run them as real processes.
package lhtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/leasehold and, beside it, cmd/leasehold-lab-etcd (the
// lab's etcd server) into a temporary directory (once) and returns the
// path of leasehold.
func Binary() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "leasehold-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "leasehold")
		out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/leasehold/leasehold/cmd/leasehold",
			"github.com/leasehold/leasehold/cmd/leasehold-lab-etcd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build leasehold: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// EtcdBinary returns the path of leasehold-lab-etcd (an embedded etcd member
// as a process), built by Binary.
func EtcdBinary() (string, error) {
	bin, err := Binary()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(bin), "leasehold-lab-etcd"), nil
}

var (
	guestOnce sync.Once
	guestDir  string
	guestErr  error
)

// GuestBinaries builds, once, the binaries a VM lab's guests run —
// cmd/leasehold and cmd/leasehold-lab-guest, static (CGO_ENABLED=0) — into
// a temporary directory and returns it.
func GuestBinaries() (string, error) {
	guestOnce.Do(func() {
		guestDir, guestErr = os.MkdirTemp("", "leasehold-guest-bin-")
		if guestErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", guestDir+"/", "github.com/leasehold/leasehold/cmd/leasehold",
			"github.com/leasehold/leasehold/cmd/leasehold-lab-guest")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			guestErr = fmt.Errorf("build the guest binaries: %v\n%s", err, out)
		}
	})
	return guestDir, guestErr
}
