package raft

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A peer that is down produces hashicorp/raft ERROR lines every few tens
// of milliseconds: they are logged at WARN, once per peer and message per
// window, with the count dropped meanwhile; other lines keep their level.
func TestSlogWriterPeerTrouble(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	now := time.Unix(1000, 0)
	w := newSlogWriter(log, func() time.Time { return now })
	hb := func(peer string) string {
		return `2026-11-27T12:23:30.609Z [ERROR] raft: failed to heartbeat to: peer=` + peer + ` backoff time=50ms error="dial tcp ` + peer + `: connect: connection refused"` + "\n"
	}
	for i := 0; i < 100; i++ { // 5 s of a peer down
		w.Write([]byte(hb("10.99.0.1:7000")))
		w.Write([]byte(`2026-11-27T12:23:29.671Z [ERROR] raft: failed to appendEntries to: peer="{Voter n1 10.99.0.1:7000}" error="dial tcp 10.99.0.1:7000: connect: connection refused"` + "\n"))
		now = now.Add(50 * time.Millisecond)
	}
	w.Write([]byte(hb("10.99.0.2:7000"))) // another peer: its own line
	now = now.Add(repeatWindow)
	w.Write([]byte(hb("10.99.0.1:7000")))
	w.Write([]byte("2026-11-27T12:23:29.671Z [ERROR] raft: failed to take snapshot: error=\"disk full\"\n"))
	w.Write([]byte("2026-11-27T12:23:27.168Z [WARN]  raft: heartbeat timeout reached, starting election: last-leader-addr= last-leader-id=\n"))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=WARN msg="raft: failed to heartbeat to: peer=10.99.0.1:7000 backoff time=50ms error=\"dial tcp 10.99.0.1:7000: connect: connection refused\""`,
		`level=WARN msg="raft: failed to appendEntries to: peer=\"{Voter n1 10.99.0.1:7000}\" error=\"dial tcp 10.99.0.1:7000: connect: connection refused\""`,
		`level=WARN msg="raft: failed to heartbeat to: peer=10.99.0.2:7000 backoff time=50ms error=\"dial tcp 10.99.0.2:7000: connect: connection refused\""`,
		`level=WARN msg="raft: failed to heartbeat to: peer=10.99.0.1:7000 backoff time=50ms error=\"dial tcp 10.99.0.1:7000: connect: connection refused\"" repeated=99`,
		`level=ERROR msg="raft: failed to take snapshot: error=\"disk full\""`,
		`level=WARN msg="raft: heartbeat timeout reached, starting election: last-leader-addr= last-leader-id="`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
