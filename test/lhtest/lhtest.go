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
