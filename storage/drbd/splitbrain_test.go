package drbd

import (
	"strings"
	"testing"
)

func TestDecideSplitBrain(t *testing.T) {
	standalone := State{Minor: 0, Conn: StandAlone, Role: Secondary, PeerRole: RoleUnknown, Disk: UpToDate, PeerDisk: DUnknown}
	primary := standalone
	primary.Role = Primary
	connected := State{Minor: 0, Conn: Connected, Role: Secondary, PeerRole: Primary, Disk: UpToDate, PeerDisk: UpToDate}
	for _, c := range []struct {
		name string
		in   SplitBrainInput
		want SplitBrainAction
		why  string
	}{
		{"connected", SplitBrainInput{State: connected, Marked: true, Policy: SplitBrainLease, HolderKnown: true, Holder: "n2", Self: "n1"}, SplitBrainNone, ""},
		{"wfconnection", SplitBrainInput{State: State{Conn: WFConnection, Role: Primary}, Marked: true, Policy: SplitBrainLease, HolderKnown: true, Holder: "n2", Self: "n1"}, SplitBrainNone, ""},
		{"standalone without the handler's marker", SplitBrainInput{State: standalone, Policy: SplitBrainLease, HolderKnown: true, Holder: "n2", Self: "n1"}, SplitBrainReport, "disconnected by hand"},
		{"manual", SplitBrainInput{State: standalone, Marked: true, Policy: SplitBrainManual, HolderKnown: true, Holder: "n2", Self: "n1"}, SplitBrainReport, "waiting for the operator"},
		{"lease unreadable", SplitBrainInput{State: primary, Marked: true, Policy: SplitBrainLease, Self: "n1"}, SplitBrainReport, "cannot be read"},
		{"nobody holds", SplitBrainInput{State: primary, Marked: true, Policy: SplitBrainLease, HolderKnown: true, Self: "n1"}, SplitBrainReport, "nobody holds"},
		{"holder keeps its data", SplitBrainInput{State: primary, Marked: true, Policy: SplitBrainLease, HolderKnown: true, Holder: "n1", Self: "n1"}, SplitBrainReconnect, "its data survives"},
		{"non-holder Primary discards", SplitBrainInput{State: primary, Marked: true, Policy: SplitBrainLease, HolderKnown: true, Holder: "n2", Self: "n1"}, SplitBrainDiscardMine, "n2 holds the lease"},
		{"non-holder Secondary discards", SplitBrainInput{State: standalone, Marked: true, Policy: SplitBrainLease, HolderKnown: true, Holder: "n2", Self: "n1"}, SplitBrainDiscardMine, "discards its writes"},
		{"a third node holds", SplitBrainInput{State: standalone, Marked: true, Policy: SplitBrainLease, HolderKnown: true, Holder: "n3", Self: "n1"}, SplitBrainDiscardMine, "n3 holds"},
	} {
		got, why := DecideSplitBrain(c.in)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: %v %q, want %v containing %q", c.name, got, why, c.want, c.why)
		}
	}
}
