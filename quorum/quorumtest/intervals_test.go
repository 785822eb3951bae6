package quorumtest

import (
	"fmt"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps Errorf's messages.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckIntervals(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, c := range []struct {
		name string
		ivs  []interval
		errs int
	}{
		{"in turn", []interval{{"a", 1, at(0), at(10)}, {"b", 2, at(11), at(20)}, {"a", 3, at(21), at(30)}}, 0},
		{"own grant handed back", []interval{{"a", 1, at(0), at(10)}, {"a", 1, at(12), at(20)}, {"b", 2, at(21), at(30)}}, 0},
		{"handed back, then overlapped", []interval{{"a", 1, at(0), at(10)}, {"a", 1, at(12), at(25)}, {"b", 2, at(21), at(30)}}, 1},
		{"one epoch, two nodes", []interval{{"a", 1, at(0), at(10)}, {"b", 1, at(12), at(20)}}, 1},
		{"overlap", []interval{{"a", 1, at(0), at(10)}, {"b", 2, at(5), at(20)}}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{}
			checkIntervals(r, c.ivs)
			if len(r.errs) != c.errs {
				t.Fatalf("%d errors, want %d: %v", len(r.errs), c.errs, r.errs)
			}
		})
	}
}
