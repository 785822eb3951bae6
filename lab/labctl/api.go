package labctl

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// StatusSocket is the unix socket of a node's status API (GET /status,
// GET /metrics).
func (l *Lab) StatusSocket(node string) string { return l.sock(node) }

// authLine is the instances' authentication line for o.Auth ("" for
// none); for "hmac" it creates the lab's shared key once (mode 0600).
func (l *Lab) authLine(o Options) (string, error) {
	if o.Auth != "hmac" {
		return "", nil
	}
	key := filepath.Join(l.dir, "vrrp.key")
	if _, err := os.Stat(key); errors.Is(err, os.ErrNotExist) {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return "", err
		}
		if err := os.WriteFile(key, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("    authentication: {auth_type: HMAC, key_file: %s}\n", key), nil
}
