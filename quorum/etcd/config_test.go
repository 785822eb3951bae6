package etcd

import (
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Endpoints = []string{"http://127.0.0.1:2379"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	cases := map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no endpoints":    {func(c *Config) { c.Endpoints = nil }, "endpoints"},
		"empty endpoint":  {func(c *Config) { c.Endpoints = []string{" "} }, "endpoints"},
		"prefix no slash": {func(c *Config) { c.Prefix = "/leasehold" }, "prefix"},
		"prefix relative": {func(c *Config) { c.Prefix = "leasehold/" }, "prefix"},
		"cert no key":     {func(c *Config) { c.CertFile = "a.crt" }, "cert_file"},
		"user no pass":    {func(c *Config) { c.Username = "u" }, "username"},
		"no dial timeout": {func(c *Config) { c.DialTimeout = 0 }, "dial_timeout"},
	}
	for name, tc := range cases {
		c := good
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", name, err, tc.want)
		}
	}
}

func TestNewChecksTTL(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Endpoints = []string{"http://127.0.0.1:2379"}
	o := quorum.ScaledOptions(time.Second)
	o.Node = "n1"
	b, err := New(cfg, o, nil)
	if err != nil {
		t.Fatalf("1 s TTL refused: %v", err)
	}
	b.Close()
	o = quorum.ScaledOptions(500 * time.Millisecond)
	o.Node = "n1"
	if _, err := New(cfg, o, nil); err == nil || !strings.Contains(err.Error(), "ttl") {
		t.Fatalf("500 ms TTL: %v, want a ttl error", err)
	}
}

func TestMergeHistory(t *testing.T) {
	var list []historyEntry
	for _, ep := range []uint64{5, 3, 9, 7, 9, 11} {
		list = mergeHistory(list, historyEntry{Epoch: ep, Node: "n"}, 4)
	}
	var got []uint64
	for _, e := range list {
		got = append(got, e.Epoch)
	}
	want := []uint64{5, 7, 9, 11}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
