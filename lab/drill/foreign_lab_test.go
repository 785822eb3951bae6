package drill_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/lab/netlab/netlabtest"
	"github.com/leasehold/leasehold/test/lhtest"
)

// TestLabForeignSpeakerDrill runs the foreign-speaker drill through the
// library on a 2-node raft lab (issue 14), without and with authenticated
// adverts (the latter adds a phase forging the members' addresses): the
// owner keeps serving (no outage, no dual ARP), the lease is not written
// beyond the storm bound, and both nodes report the speaker with its
// priority.
func TestLabForeignSpeakerDrill(t *testing.T) {
	netlabtest.Require(t)
	for _, auth := range []string{"", "hmac"} {
		t.Run("auth="+auth, func(t *testing.T) { testForeignDrill(t, auth) })
	}
}

func testForeignDrill(t *testing.T, auth string) {
	bin, err := lhtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := labctl.Up(ctx, labctl.Options{Name: fmt.Sprintf("f%d%s", os.Getpid(), auth), Nodes: 2, Quorum: "raft",
		Binary: bin, Dir: t.TempDir(), Auth: auth}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down(context.Background()) })
	r, err := drill.Run(ctx, l, drill.Scenario{Name: "foreign-speaker"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", r.Verdict, r.Fault)
	t.Logf("%s: dual ARP %d of %d rounds, client outage %dus, owner %s → %s, notes %v",
		r.Verdict, r.DualARPRounds, r.ARPRounds, r.OutageUS, r.OldOwner, r.FinalOwner, r.Notes)
	if !r.Pass || r.DualARPRounds != 0 || r.OutageUS != 0 || r.ARPRounds < 10 || r.ClientProbes < 100 {
		t.Errorf("verdict %s, dual ARP %d of %d, outage %dus, %d client probes: %v", r.Verdict, r.DualARPRounds, r.ARPRounds,
			r.OutageUS, r.ClientProbes, r.Reasons)
	}
	reported := 0
	for _, n := range r.Notes {
		if strings.Contains(n, "reports foreign speaker") && strings.Contains(n, "priority 254") {
			reported++
		}
	}
	if reported != 2 {
		t.Errorf("%d nodes report the foreign speaker, want 2: %v", reported, r.Notes)
	}
	if forged := strings.Contains(r.Fault, "forged from the members"); forged != (auth == "hmac") {
		t.Errorf("auth %q: phase forging the members' addresses run: %v", auth, forged)
	}
}
