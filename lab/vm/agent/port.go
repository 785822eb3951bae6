package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FindPort returns the device (/dev/vportNpM) of the virtio-serial port
// whose /sys/class/virtio-ports/*/name is name.
func FindPort(name string) (string, error) {
	dirs, err := filepath.Glob("/sys/class/virtio-ports/*")
	if err != nil {
		return "", err
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "name"))
		if err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(d), nil
		}
	}
	return "", fmt.Errorf("agent: no virtio-serial port named %q among %d ports", name, len(dirs))
}
