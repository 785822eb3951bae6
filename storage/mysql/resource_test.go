package mysql_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/storage/mysql"
	"github.com/leasehold/leasehold/storage/mysql/mysqltest"
)

func credFile(t *testing.T, mode os.FileMode, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cred.cnf")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func fakeResource(t *testing.T, local, peer *mysqltest.Fake) *mysql.Resource {
	t.Helper()
	cfg := mysql.Config{Socket: "/run/mysqld/mysqld.sock", CredentialsFile: credFile(t, 0o600, "user = root\npassword = x\n")}
	var p mysql.Server
	if peer != nil {
		cfg.Peer, p = "10.0.0.2:3306", peer
	}
	r, err := mysql.New(cfg, local, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReadCredentials(t *testing.T) {
	c, err := mysql.ReadCredentials(credFile(t, 0o640, "# leasehold\n[client]\nuser = leasehold\npassword = \"s3cr=t\"\n[mysqld]\nport = 3306\n"))
	if err != nil || c.User != "leasehold" || c.Password != "s3cr=t" {
		t.Fatalf("%+v %v", c, err)
	}
	if strings.Contains(c.String(), "s3cr") {
		t.Fatalf("String shows the password: %s", c)
	}
	_, err = mysql.ReadCredentials(credFile(t, 0o644, "user = root\npassword = hunter2\n"))
	if err == nil || !strings.Contains(err.Error(), "chmod o-rwx") {
		t.Fatalf("world-readable credentials accepted: %v", err)
	}
	_, err = mysql.ReadCredentials(credFile(t, 0o600, "user = root\npasswd hunter2\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), ":2:") {
		t.Fatalf("bad line: %v (must name the line, never the content)", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := credFile(t, 0o600, "user = root\n")
	for _, tc := range []struct {
		cfg  mysql.Config
		want string
	}{
		{mysql.Config{CredentialsFile: good}, "mysql: socket: socket or address is required"},
		{mysql.Config{Socket: "/s", Address: "h:1", CredentialsFile: good}, "mysql: address: give socket or address"},
		{mysql.Config{Socket: "rel/s", CredentialsFile: good}, "mysql: socket:"},
		{mysql.Config{Address: "nohost", CredentialsFile: good}, "mysql: address:"},
		{mysql.Config{Socket: "/s"}, "mysql: credentials_file: required"},
		{mysql.Config{Socket: "/s", CredentialsFile: good, CatchupPolicy: "wait"}, "mysql: catchup_policy:"},
		{mysql.Config{Socket: "/s", CredentialsFile: good, PeerCredentialsFile: good}, "mysql: peer_credentials_file: needs a peer"},
		{mysql.Config{Socket: "/s", CredentialsFile: good, Check: mysql.CheckConfig{Weight: 300}}, "mysql: check.weight:"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if err := (mysql.Config{Address: "127.0.0.1:3306", CredentialsFile: good, Peer: "10.0.0.2:3306"}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPromoteOrder(t *testing.T) {
	f := &mysqltest.Fake{ServerID: 1, RO: true, Applied: true,
		Rep: mysql.Replica{Configured: true, IORunning: "Yes", SQLRunning: "Yes", IOPos: "1-1-4,2-2-9"}}
	peer := &mysqltest.Fake{ServerID: 2, Binlog: "1-1-4,2-2-11",
		Conns: []mysql.Session{{ID: 8, User: "app", Command: "Query"}, {ID: 9, User: "repl", Command: "Binlog Dump GTID"}}}
	r := fakeResource(t, f, peer)
	if err := r.Promote(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	// The peer is fenced and its clients killed (not replication); the
	// wait covers what the peer wrote (2-2-11), not what this server
	// originated; the epoch is recorded before read_only goes off.
	if got := peer.Calls(); !slices.Equal(got, []string{"SetReadOnly true", "Sessions", "Kill 8", "Status"}) {
		t.Errorf("peer calls %q", got)
	}
	want := []string{"Status", "Epochs", "Replica", "WaitApplied 2-2-11", "Epochs", "RecordEpoch 7", "SetReadOnly false"}
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if f.ReadOnly() || r.Stats().Promoted != 7 {
		t.Fatalf("not writable after Promote: %+v", r.Stats())
	}
}

func TestPromoteRefusedStaysReadOnly(t *testing.T) {
	f := &mysqltest.Fake{ServerID: 1, RO: true, Rows: []mysql.EpochRow{{ServerID: 2, Epoch: 9}}}
	peer := &mysqltest.Fake{ServerID: 2}
	r := fakeResource(t, f, peer)
	err := r.Promote(context.Background(), 7)
	if !errors.Is(err, mysql.ErrRefused) || !f.ReadOnly() || slices.ContainsFunc(f.Calls(), func(c string) bool { return strings.HasPrefix(c, "RecordEpoch") }) {
		t.Fatalf("stale promotion: %v, calls %q", err, f.Calls())
	}
	if n, last := r.Stats().Refusals, r.Stats().LastRefusal; n != 1 || !strings.Contains(last, "stale epoch 7") {
		t.Fatalf("refusals %d %q", n, last)
	}
	// A late promotion from an old grant leaves the peer (the real owner)
	// alone.
	if got := peer.Calls(); len(got) != 0 {
		t.Fatalf("a stale promotion fenced the peer: %q", got)
	}
	// An unreadable epoch table refuses too (doubt means no).
	f2 := &mysqltest.Fake{ServerID: 1, RO: true, Fail: map[string]error{"Epochs": errors.New("denied")}}
	if err := fakeResource(t, f2, nil).Promote(context.Background(), 7); !errors.Is(err, mysql.ErrRefused) {
		t.Fatalf("unreadable epoch table: %v", err)
	}
}

func TestPromoteUndoesReadOnlyOff(t *testing.T) {
	f := &mysqltest.Fake{ServerID: 1, RO: true, Fail: map[string]error{"SetReadOnly ": errors.New("lost connection")}}
	err := fakeResource(t, f, nil).Promote(context.Background(), 3)
	if err == nil || !strings.Contains(err.Error(), "set read_only off") || !strings.Contains(err.Error(), "undo") {
		t.Fatalf("%v", err)
	}
}

func TestDemoteRunsEveryStep(t *testing.T) {
	f := &mysqltest.Fake{ServerID: 1, RO: false, Fail: map[string]error{"SetReadOnly ": errors.New("timeout")},
		Conns: []mysql.Session{{ID: 3, User: "app", Command: "Sleep"}, {ID: 4, User: "system user", Command: "Slave_SQL"}}}
	err := fakeResource(t, f, nil).Demote(context.Background(), 5)
	if err == nil || !strings.Contains(err.Error(), "set read_only on") || !errors.Is(err, mysql.ErrStillWritable) {
		t.Fatalf("%v", err)
	}
	if got := f.Calls(); !slices.Contains(got, "Kill 3") || slices.Contains(got, "Kill 4") {
		t.Fatalf("calls %q: the client must be killed even when read_only failed, replication spared", got)
	}
}

func TestStartAndWatch(t *testing.T) {
	// Unreachable at start: not an error (the watch covers it later).
	down := &mysqltest.Fake{Fail: map[string]error{"Status": errors.New("no socket")}}
	if err := fakeResource(t, down, nil).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &mysqltest.Fake{ServerID: 1, RO: false}
	r := fakeResource(t, f, nil)
	if err := r.Start(context.Background()); err != nil || !f.ReadOnly() {
		t.Fatalf("Start left a writable server: %v", err)
	}
	// Promoted: the watch leaves it writable.
	if err := r.Promote(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(context.Background()); err != nil || f.ReadOnly() {
		t.Fatalf("the watch touched the owner's server: %v", err)
	}
	if err := r.Demote(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	f.SetReadOnly(context.Background(), false) // someone turns it writable
	if err := r.Check(context.Background()); err != nil || !f.ReadOnly() || r.Stats().Corrected != 2 {
		t.Fatalf("watch: %v, read-only %v, %+v", err, f.ReadOnly(), r.Stats())
	}
}

// A server that is not running takes no writes: its demotion succeeds
// (so the watchdog is not left armed for a crashed mysqld); one that does
// not answer is doubt: an error.
func TestDemoteOfAServerDownOrHung(t *testing.T) {
	down := &mysqltest.Fake{Fail: map[string]error{"Status": mysql.ErrDown, "SetReadOnly ": mysql.ErrDown, "Sessions": mysql.ErrDown}}
	if err := fakeResource(t, down, nil).Demote(context.Background(), 3); err != nil {
		t.Fatalf("demote of a server that is not running: %v", err)
	}
	hung := &mysqltest.Fake{Fail: map[string]error{"Status": context.DeadlineExceeded, "SetReadOnly ": context.DeadlineExceeded, "Sessions": context.DeadlineExceeded}}
	if err := fakeResource(t, hung, nil).Demote(context.Background(), 3); err == nil {
		t.Fatal("demote of a server that does not answer succeeded")
	}
}

// A promotion refused because the relay log was not applied in time (a
// node back from a partition, its replication behind) fails the health
// check until the server has applied what the peer wrote, so the group
// stops taking the lease from the serving peer; a peer that does not
// answer ends the wait (this node may be needed).
func TestRefusedCatchupFailsCheckUntilCaughtUp(t *testing.T) {
	ctx := context.Background()
	rep := mysql.Replica{Configured: true, IORunning: "Yes", SQLRunning: "Yes", IOPos: "2-2-9"}
	f := &mysqltest.Fake{ServerID: 1, RO: true, Rep: rep}
	peer := &mysqltest.Fake{ServerID: 2, Binlog: "2-2-40"}
	r := fakeResource(t, f, peer)
	if err := r.Promote(ctx, 7); !errors.Is(err, mysql.ErrRefused) {
		t.Fatalf("promotion with the relay log not applied: %v", err)
	}
	err := r.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "catching up with the peer") || !strings.Contains(err.Error(), "2-2-40") {
		t.Fatalf("check while behind: %v", err)
	}
	if r.Stats().Healthy {
		t.Fatal("healthy while behind")
	}
	f.Applied = true
	if err := r.Check(ctx); err != nil {
		t.Fatalf("check once caught up: %v", err)
	}
	// Behind again, then the peer stops answering: healthy.
	f.Applied = false
	if err := r.Promote(ctx, 8); !errors.Is(err, mysql.ErrRefused) {
		t.Fatalf("second refusal: %v", err)
	}
	peer.Fail = map[string]error{"Status": mysql.ErrDown}
	if err := r.Check(ctx); err != nil {
		t.Fatalf("check with the peer down: %v", err)
	}
}
