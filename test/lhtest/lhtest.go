// Package lhtest builds the leasehold binary and the etcd server tool once
// per test process (go build), for tests that run them as real processes.
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

// Binary builds cmd/leasehold into a temporary directory (once) and
// returns its path.
func Binary() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "leasehold-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "leasehold")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/leasehold/leasehold/cmd/leasehold").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build leasehold: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

var (
	etcdOnce sync.Once
	etcdPath string
	etcdErr  error
)

// EtcdBinary builds test/etcdserver (an embedded etcd member as a process)
// once and returns its path.
func EtcdBinary() (string, error) {
	etcdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "leasehold-etcd-")
		if err != nil {
			etcdErr = err
			return
		}
		etcdPath = filepath.Join(dir, "etcdserver")
		out, err := exec.Command("go", "build", "-o", etcdPath, "github.com/leasehold/leasehold/test/etcdserver").CombinedOutput()
		if err != nil {
			etcdErr = fmt.Errorf("build etcdserver: %v\n%s", err, out)
		}
	})
	return etcdPath, etcdErr
}
