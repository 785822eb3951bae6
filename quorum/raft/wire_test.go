package raft

import (
	"errors"
	"fmt"
	"testing"

	"github.com/leasehold/leasehold/quorum"
)

// Every member error survives the wire as the sentinel the client acts
// on; in particular a leader that lost its leadership while committing
// reaches the client as "may have been applied", so a retry of a release
// or an acquire is treated as possibly done (not as never sent).
func TestWireErrorCodes(t *testing.T) {
	for _, want := range []error{quorum.ErrHeld, quorum.ErrNotOwner, quorum.ErrLost, errNotLeader, errMayHaveApplied, errBadRequest, errUnavailable} {
		err := fmt.Errorf("%w: detail", want)
		got := errOf(wireResponse{Code: codeOf(err), Error: err.Error()})
		if !errors.Is(got, want) {
			t.Errorf("%v → code %q → %v", want, codeOf(err), got)
		}
	}
	if errors.Is(errOf(wireResponse{Code: codeMayHave}), errNotLeader) {
		t.Error("leadership lost while committing must not read as plain not-leader (never applied)")
	}
}
