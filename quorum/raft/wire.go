package raft

import (
	"errors"
	"fmt"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// The client API is HTTP/JSON on each member's ClientAddr: POST /v1/<op>
// with a wireRequest, answered by a wireResponse; GET /v1/watch?group=G
// streams wireEvent lines. Only the leader serves; others answer code
// not_leader with the leader's client address.

const (
	codeHeld        = "held"
	codeNotOwner    = "not_owner"
	codeLost        = "lost"
	codeNotLeader   = "not_leader"
	codeMayHave     = "leadership_lost"
	codeUnavailable = "unavailable"
	codeBadRequest  = "bad_request"
)

type wireRequest struct {
	Session    string        `json:"session,omitempty"`
	Node       string        `json:"node,omitempty"`
	Addr       string        `json:"addr,omitempty"`
	TTL        time.Duration `json:"ttl,omitempty"`
	Group      string        `json:"group,omitempty"`
	Priority   int           `json:"priority,omitempty"`
	AcquiredAt time.Time     `json:"acquired_at,omitzero"`
	Epoch      uint64        `json:"epoch,omitempty"`
	HistoryLen int           `json:"history_len,omitempty"`
	// Mark is an outdated mark to record (mark) or clear (unmark: Group and
	// Node).
	Mark *quorum.Mark `json:"mark,omitempty"`
	// Timeout is the client's remaining request budget; the member bounds
	// its raft apply by it.
	Timeout time.Duration `json:"timeout,omitempty"`
}

type wireResponse struct {
	Code    string          `json:"code,omitempty"`
	Error   string          `json:"error,omitempty"`
	Leader  string          `json:"leader,omitempty"` // client address of the leader
	Session string          `json:"session,omitempty"`
	Epoch   uint64          `json:"epoch,omitempty"`
	TTL     time.Duration   `json:"ttl,omitempty"`
	Holders []quorum.Holder `json:"holders,omitempty"`
	Marks   []quorum.Mark   `json:"marks,omitempty"`
}

const (
	wireSnapshot = "snapshot"
	wireEvent    = "event"
	wirePing     = "ping"
)

type wireEventLine struct {
	Kind    string          `json:"kind"`
	Event   *quorum.Event   `json:"event,omitempty"`
	Holders []quorum.Holder `json:"holders,omitempty"`
}

// Internal errors of the member, mapped to codes.
var (
	errNotLeader = errors.New("raft: not the leader")
	// errMayHaveApplied: the leader lost its leadership while committing
	// the command; a later leader may still commit it (raft's
	// ErrLeadershipLost). A retry must treat the command as possibly done.
	errMayHaveApplied = errors.New("raft: leadership lost while committing")
	errUnavailable    = errors.New("raft: leader not ready")
	errBadRequest     = errors.New("raft: bad request")
)

func codeOf(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, quorum.ErrHeld):
		return codeHeld
	case errors.Is(err, quorum.ErrNotOwner):
		return codeNotOwner
	case errors.Is(err, quorum.ErrLost):
		return codeLost
	case errors.Is(err, errMayHaveApplied):
		return codeMayHave
	case errors.Is(err, errNotLeader):
		return codeNotLeader
	case errors.Is(err, errBadRequest):
		return codeBadRequest
	}
	return codeUnavailable
}

// errOf turns a response code back into a sentinel-wrapping error.
func errOf(r wireResponse) error {
	var base error
	switch r.Code {
	case "":
		return nil
	case codeHeld:
		base = quorum.ErrHeld
	case codeNotOwner:
		base = quorum.ErrNotOwner
	case codeLost:
		base = quorum.ErrLost
	case codeNotLeader:
		base = errNotLeader
	case codeMayHave:
		base = errMayHaveApplied
	case codeBadRequest:
		base = errBadRequest
	default:
		base = errUnavailable
	}
	return fmt.Errorf("%w (%s)", base, r.Error)
}
