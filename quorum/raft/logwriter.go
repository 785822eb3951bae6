package raft

import (
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
)

// peerTrouble are hashicorp/raft's messages (logged at ERROR by the
// library) that a voter cannot reach a peer: routine while a peer restarts,
// is upgraded or is partitioned, and each repeated every few tens of
// milliseconds. They are logged at WARN, once per peer and message per
// repeatWindow, with the count of the lines dropped meanwhile.
var peerTrouble = []string{
	"failed to appendEntries to",
	"failed to heartbeat to",
	"failed to make requestVote RPC",
	"failed to pipeline appendEntries",
	"failed to contact",
}

const repeatWindow = 10 * time.Second

// hclogLine is "TIMESTAMP [LEVEL]  raft: MESSAGE: k=v ...".
var hclogLine = regexp.MustCompile(`^\S+ \[(\w+)\]\s+(.*)$`)

var peerKV = regexp.MustCompile(`\b(?:peer|server-id|target)=("[^"]*"|\S+)`)

// slogWriter forwards hashicorp/raft's hclog lines to slog: hclog's own
// timestamp dropped, its level kept except for peerTrouble (WARN, and
// repeats within repeatWindow dropped and counted).
type slogWriter struct {
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	seen map[string]*repeat // message and peer → last logged
}

type repeat struct {
	at      time.Time
	dropped int
}

func newSlogWriter(log *slog.Logger, now func() time.Time) *slogWriter {
	return &slogWriter{log: log, now: now, seen: map[string]*repeat{}}
}

func (w *slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level, msg := "INFO", line
	if m := hclogLine.FindStringSubmatch(line); m != nil {
		level, msg = m[1], m[2]
	}
	for _, t := range peerTrouble {
		if !strings.Contains(msg, t) {
			continue
		}
		key := t
		if kv := peerKV.FindString(msg); kv != "" {
			key += " " + kv
		}
		w.mu.Lock()
		r := w.seen[key]
		now := w.now()
		if r != nil && now.Sub(r.at) < repeatWindow {
			r.dropped++
			w.mu.Unlock()
			return len(p), nil
		}
		dropped := 0
		if r != nil {
			dropped = r.dropped
		}
		w.seen[key] = &repeat{at: now}
		w.mu.Unlock()
		if dropped > 0 {
			w.log.Warn(msg, "repeated", dropped)
		} else {
			w.log.Warn(msg)
		}
		return len(p), nil
	}
	switch level {
	case "ERROR":
		w.log.Error(msg)
	case "WARN":
		w.log.Warn(msg)
	case "DEBUG", "TRACE":
		w.log.Debug(msg)
	default:
		w.log.Info(msg)
	}
	return len(p), nil
}
