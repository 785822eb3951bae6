package lvs_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/lvs/lvstest"
)

func states(t *testing.T, k *lvstest.Kernel) []string {
	t.Helper()
	ds, err := k.SyncDaemons()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.State.String()+" "+d.Interface)
	}
	return out
}

// The sync daemons follow the lease: backup from the start, master while
// owning, backup again after, none after Stop; a daemon left with other
// settings (an earlier run, another tool) is replaced.
func TestSyncFollowsTheLease(t *testing.T) {
	k := lvstest.NewKernel()
	// An earlier run's master with another syncid.
	if err := k.StartSync(lvs.SyncMaster, lvs.SyncConfig{Interface: "eth1", SyncID: 9}); err != nil {
		t.Fatal(err)
	}
	k.Ops()
	s := lvs.NewSync(k, lvs.SyncConfig{Interface: "eth1", Group: "VI_1", SyncID: 5}, nil)
	ctx := context.Background()
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"start", s.Start, []string{"backup eth1"}},
		{"promote", func() error { return s.Promote(ctx, 1) }, []string{"master eth1"}},
		{"promote again", func() error { return s.Promote(ctx, 2) }, []string{"master eth1"}},
		{"demote", func() error { return s.Demote(ctx, 2) }, []string{"backup eth1"}},
		{"stop", s.Stop, nil},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := states(t, k); !slices.Equal(got, st.want) {
			t.Errorf("after %s: %v, want %v", st.name, got, st.want)
		}
	}
	if ops := k.Ops(); !slices.Contains(ops, "stop sync master") || !slices.Contains(ops, "start sync master on eth1 id 5") {
		t.Errorf("the old master was not replaced: %v", ops)
	}
	if st := s.Status(); st.State != "none" || st.Changes != 3 || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
}

// A start that fails is an error of the promotion (the group demotes),
// and the status says so.
func TestSyncFailure(t *testing.T) {
	k := lvstest.NewKernel()
	k.Fail = func(op string) bool { return strings.HasPrefix(op, "start sync master") }
	s := lvs.NewSync(k, lvs.SyncConfig{Interface: "eth1", Group: "VI_1"}, nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	err := s.Promote(context.Background(), 1)
	if !errors.Is(err, lvstest.ErrInjected) {
		t.Fatalf("promote: %v", err)
	}
	if st := s.Status(); st.State != "none" || !strings.Contains(st.LastError, "start master on eth1") {
		t.Errorf("status %+v", st)
	}
	k.Fail = nil
	if err := s.Demote(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != "backup" || st.LastError != "" {
		t.Errorf("status after the demotion %+v", st)
	}
}
