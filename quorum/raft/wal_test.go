package raft

import (
	"os"
	"path/filepath"
	"testing"

	hraft "github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// TestWALReopensAfterTailTruncation: a follower that loses an election
// clears its log suffix (raft: "clearing log suffix"); raft-wal before
// v0.4.1 then recorded the tail segment as sealed without writing its index,
// and the next start failed with "sealed segment has no index block"
// (hashicorp/raft-wal#31, seen here after a voter was killed). The same
// sequence against the pinned version: store, truncate the tail, close,
// reopen, read everything.
func TestWALReopensAfterTailTruncation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	open := func() (*wal.WAL, *metadb.BoltMetaDB) {
		meta := &metadb.BoltMetaDB{}
		w, err := wal.Open(dir, wal.WithMetaStore(meta))
		if err != nil {
			t.Fatal(err)
		}
		return w, meta
	}
	w, meta := open()
	var logs []*hraft.Log
	for i := uint64(1); i <= 424; i++ {
		logs = append(logs, &hraft.Log{Index: i, Term: 1, Type: hraft.LogCommand, Data: []byte("renew")})
	}
	if err := w.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteRange(424, 424); err != nil {
		t.Fatal(err)
	}
	if err := w.StoreLog(&hraft.Log{Index: 424, Term: 2, Type: hraft.LogCommand, Data: []byte("renew")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	meta.Close()

	w, meta = open()
	defer meta.Close()
	defer w.Close()
	last, err := w.LastIndex()
	if err != nil || last != 424 {
		t.Fatalf("last index %d, %v; want 424", last, err)
	}
	for _, i := range []uint64{1, 423, 424} {
		var l hraft.Log
		if err := w.GetLog(i, &l); err != nil {
			t.Fatalf("get log %d after reopen: %v", i, err)
		}
		if i == 424 && l.Term != 2 {
			t.Fatalf("log 424 has term %d, want 2 (the rewritten entry)", l.Term)
		}
	}
}
