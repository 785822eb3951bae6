package node

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func drain(b *mailbox) string {
	var out []string
	for {
		ev, ok := b.take()
		if !ok {
			return strings.Join(out, " ")
		}
		switch ev := ev.(type) {
		case Renewed:
			out = append(out, fmt.Sprintf("renewed+%v", ev.Deadline.Sub(time.Unix(0, 0))))
		default:
			out = append(out, strings.TrimPrefix(fmt.Sprintf("%T", ev), "node."))
		}
	}
}

func TestMailbox(t *testing.T) {
	d := func(s int) Renewed { return Renewed{Deadline: time.Unix(int64(s), 0)} }
	lost := SessionLost{Err: errors.New("x")}
	for _, c := range []struct {
		name string
		post []Event
		want string
	}{
		{"fifo", []Event{SessionUp{}, KeyPut{}, d(1), KeyDeleted{}}, "SessionUp KeyPut renewed+1s KeyDeleted"},
		{"renewals coalesce in the first one's place, latest deadline",
			[]Event{SessionUp{}, d(1), KeyPut{}, d(3), d(2), VIPUp{}}, "SessionUp renewed+3s KeyPut VIPUp"},
		{"no renewal before a session", []Event{d(1), SessionUp{}, d(2)}, "SessionUp renewed+2s"},
		{"a loss drops the waiting renewal and later ones",
			[]Event{SessionUp{}, d(1), KeyPut{}, lost, d(2), SessionUp{}, d(3)}, "SessionUp KeyPut SessionLost SessionUp renewed+3s"},
		{"a new session drops a waiting renewal", []Event{SessionUp{}, d(1), SessionUp{}}, "SessionUp SessionUp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newMailbox()
			for _, ev := range c.post {
				b.post(ev)
			}
			if got := drain(b); got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	// The waiting renewal is tracked across takes.
	b := newMailbox()
	b.post(SessionUp{})
	b.post(KeyPut{})
	b.post(d(1))
	b.take()
	b.post(d(2))
	b.take()
	b.post(d(3))
	if got := drain(b); got != "renewed+3s" {
		t.Fatalf("after takes: %s", got)
	}
	// Posting never blocks and the ready signal survives many posts.
	b.post(SessionUp{})
	for range 10000 {
		b.post(KeyPut{})
	}
	<-b.ready
	if n := b.len(); n != 10001 {
		t.Fatalf("%d queued", n)
	}
}
