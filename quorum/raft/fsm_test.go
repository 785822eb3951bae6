package raft

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/leasehold/leasehold/quorum"
)

// fsmLog applies commands to f with consecutive indexes.
type fsmLog struct {
	f     *fsm
	index uint64
}

func (l *fsmLog) apply(t *testing.T, c command) applyResult {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	l.index++
	res, _ := l.f.Apply(&hraft.Log{Index: l.index, Type: hraft.LogCommand, Data: b}).(applyResult)
	return res
}

func TestFSMExpireAndStale(t *testing.T) {
	var touched []uint64
	var dropped []string
	f := newFSM()
	f.onTouch = func(id string, idx uint64, ttl time.Duration) { touched = append(touched, idx) }
	f.onDrop = func(id string) { dropped = append(dropped, id) }
	l := &fsmLog{f: f}
	open := l.apply(t, command{Op: opOpen, Node: "a", TTL: time.Second})
	acq := l.apply(t, command{Op: opAcquire, Session: open.Session, Group: "g", HistoryLen: 2})
	if acq.Err != nil || acq.Epoch != 2 {
		t.Fatalf("acquire: %+v", acq)
	}
	ren := l.apply(t, command{Op: opRenew, Session: open.Session})
	if ren.Err != nil {
		t.Fatal(ren.Err)
	}
	// An expire armed for the open (index 1) lost to the renewal (index 3).
	if res := l.apply(t, command{Op: opExpire, Session: open.Session, Epoch: 1}); !res.Stale || res.Epoch != 3 {
		t.Fatalf("stale expire: %+v", res)
	}
	if hs, _ := f.holders("g"); len(hs) != 1 {
		t.Fatal("stale expire deleted the key")
	}
	if res := l.apply(t, command{Op: opExpire, Session: open.Session, Epoch: 3}); res.Stale || res.Err != nil {
		t.Fatalf("expire: %+v", res)
	}
	if hs, _ := f.holders(""); len(hs) != 0 {
		t.Fatalf("expired session's key remains: %+v", hs)
	}
	if res := l.apply(t, command{Op: opRenew, Session: open.Session}); !errors.Is(res.Err, quorum.ErrLost) {
		t.Fatalf("renew after expiry: %v", res.Err)
	}
	if res := l.apply(t, command{Op: opAcquire, Session: open.Session, Group: "g"}); !errors.Is(res.Err, quorum.ErrLost) {
		t.Fatalf("acquire after expiry: %v", res.Err)
	}
	if len(touched) != 2 || touched[0] != 1 || touched[1] != 3 || len(dropped) != 1 {
		t.Fatalf("hooks: touched %v dropped %v", touched, dropped)
	}
}

func TestFSMHistorySnapshot(t *testing.T) {
	f := newFSM()
	l := &fsmLog{f: f}
	s := l.apply(t, command{Op: opOpen, Node: "a", Addr: "10.0.0.1", TTL: time.Second}).Session
	var epochs []uint64
	for i := range 4 {
		r := l.apply(t, command{Op: opAcquire, Session: s, Group: "g", Priority: i, HistoryLen: 3})
		epochs = append(epochs, r.Epoch)
		if res := l.apply(t, command{Op: opRelease, Group: "g", Epoch: r.Epoch + 1}); !errors.Is(res.Err, quorum.ErrNotOwner) {
			t.Fatalf("release with a wrong epoch: %v", res.Err)
		}
		if res := l.apply(t, command{Op: opRelease, Group: "g", Epoch: r.Epoch}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	hg := l.apply(t, command{Op: opAcquire, Session: s, Group: "h", Priority: 7, HistoryLen: 3})
	if res := l.apply(t, command{Op: opMark, Mark: &quorum.Mark{Group: "h", Node: "b", Epoch: hg.Epoch, By: "a"}}); res.Err != nil {
		t.Fatalf("mark: %v", res.Err)
	}
	if res := l.apply(t, command{Op: opMark, Mark: &quorum.Mark{Group: "g", Node: "b", Epoch: epochs[3]}}); !errors.Is(res.Err, quorum.ErrNotOwner) {
		t.Fatalf("mark under a released epoch: %v", res.Err)
	}
	l.apply(t, command{Op: opRaw, Group: "raw", Raw: []byte("\xffnot a record" + strings.Repeat("x", 100))})
	h := f.history("g")
	if len(h) != 3 || h[0].Epoch != epochs[1] || h[2].Epoch != epochs[3] || h[2].Priority != 3 || h[0].Addr != "10.0.0.1" {
		t.Fatalf("history: %+v", h)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&memSink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	g := newFSM()
	if err := g.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	a, _ := f.holders("")
	b, _ := g.holders("")
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) || len(a) != 2 {
		t.Fatalf("restored holders differ:\n%s\n%s", ja, jb)
	}
	if !b[1].Unknown || len(b[1].Raw) > rawPrefix || b[0].Node != "a" || b[0].Priority != 7 {
		t.Fatalf("holders: %+v", b)
	}
	if len(g.history("g")) != 3 || len(g.sessions()) != 1 {
		t.Fatal("history or sessions not restored")
	}
	if m := g.marks("h"); len(m) != 1 || m[0].Node != "b" || m[0].Epoch != hg.Epoch || m[0].By != "a" {
		t.Fatalf("marks not restored: %+v", m)
	}
	// A snapshot from before marks existed restores with none.
	old := newFSM()
	if err := old.Restore(io.NopCloser(strings.NewReader(`{"sessions":{},"keys":{},"history":{}}`))); err != nil {
		t.Fatal(err)
	}
	ol := &fsmLog{f: old, index: 10}
	os := ol.apply(t, command{Op: opOpen, Node: "a", TTL: time.Second}).Session
	og := ol.apply(t, command{Op: opAcquire, Session: os, Group: "g"})
	if res := ol.apply(t, command{Op: opMark, Mark: &quorum.Mark{Group: "g", Node: "b", Epoch: og.Epoch}}); res.Err != nil {
		t.Fatalf("mark after restoring an old snapshot: %v", res.Err)
	}
	ol.apply(t, command{Op: opUnmark, Mark: &quorum.Mark{Group: "g", Node: "b"}})
	if m := old.marks("g"); len(m) != 0 {
		t.Fatalf("unmark left %+v", m)
	}
}

type memSink struct{ *bytes.Buffer }

func (memSink) ID() string    { return "mem" }
func (memSink) Cancel() error { return nil }
func (memSink) Close() error  { return nil }

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.ID, good.BindAddr, good.ClientAddr, good.DataDir = "m1", "127.0.0.1:1", "127.0.0.1:2", "/tmp/x"
	good.Peers = []Peer{{ID: "m1", Addr: "127.0.0.1:1"}, {ID: "m2", Addr: "127.0.0.1:3"}, {ID: "w", Addr: "127.0.0.1:4"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(c *Config){
		"no self":          func(c *Config) { c.ID = "m9" },
		"two voters":       func(c *Config) { c.Peers = c.Peers[:2] },
		"dup addr":         func(c *Config) { c.Peers[1].Addr = c.Peers[0].Addr },
		"lease > hb":       func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout },
		"election < hb":    func(c *Config) { c.ElectionTimeout = c.HeartbeatTimeout / 2 },
		"partial tls":      func(c *Config) { c.TLS = &TLSConfig{CertFile: "x"} },
		"bad client addr":  func(c *Config) { c.ClientAddr = "nope" },
		"tiny heartbeats":  func(c *Config) { c.HeartbeatTimeout, c.LeaderLeaseTimeout = time.Millisecond, time.Millisecond },
		"missing data dir": func(c *Config) { c.DataDir = "" },
	} {
		c := good
		c.Peers = append([]Peer(nil), good.Peers...)
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := good.ValidateTTL(300 * time.Millisecond); err == nil {
		t.Error("ttl below 2×(heartbeat+election) accepted")
	}
	if err := good.ValidateTTL(500 * time.Millisecond); err != nil {
		t.Error(err)
	}
}
