// Package node combines VRRP and the quorum lease per group: VRRP picks the
// candidate, the lease decides the owner (DESIGN.md "The ownership
// protocol").
//
// machine.go is the pure role state machine (BACKUP, CANDIDATE, OWNER,
// DEMOTING, FAULT) with scenario scripts in testdata/scenarios; the
// actuator performs its actions (acquire, peer-fence hooks, VIP probe,
// resource promotion, VIP + kernel fence, GARP; and the demotion pipeline)
// and feeds the results back as events.
//
// Guaranteed: a node adds a VIP only while it holds the group's grant and
// its local deadline is ahead; completions for an old epoch are ignored;
// losing the session, a deleted or overwritten key, a failed or hung step,
// or the deadline coming within the demote budget all demote. Not
// guaranteed by this package alone: that the VIP disappears if the process
// dies — that is the kernel fence's job (package fencing), armed until the
// local deadline.
package node
