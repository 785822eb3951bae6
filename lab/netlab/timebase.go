package netlab

import (
	"fmt"
	"time"
)

// Stamp is an instant as recorded by a checker: microseconds since the
// Timebase's origin on the monotonic clock (for ordering and durations),
// plus Unix wall-clock microseconds (for correlating with logs).
type Stamp struct {
	MonoUS int64 `json:"mono_us"`
	WallUS int64 `json:"wall_us"`
}

// Before reports whether s is strictly earlier than o.
func (s Stamp) Before(o Stamp) bool { return s.MonoUS < o.MonoUS }

// Sub returns s − o.
func (s Stamp) Sub(o Stamp) time.Duration { return time.Duration(s.MonoUS-o.MonoUS) * time.Microsecond }

// IsZero reports whether s was never set.
func (s Stamp) IsZero() bool { return s.MonoUS == 0 && s.WallUS == 0 }

// Time returns the wall-clock time of s.
func (s Stamp) Time() time.Time { return time.UnixMicro(s.WallUS) }

func (s Stamp) String() string {
	return fmt.Sprintf("+%s", time.Duration(s.MonoUS)*time.Microsecond)
}

// Timebase turns clock readings into Stamps relative to one origin. All
// checkers of one measurement must share a Timebase (Lab.Timebase) so their
// samples are comparable.
type Timebase struct {
	origin time.Time
}

// NewTimebase returns a Timebase whose origin is now.
func NewTimebase() Timebase { return Timebase{origin: time.Now()} }

// Now returns the current Stamp.
func (tb Timebase) Now() Stamp { return tb.Stamp(time.Now()) }

// Stamp converts t (which should carry a monotonic reading) to a Stamp.
// The origin itself maps to MonoUS 1, so no real Stamp is zero.
func (tb Timebase) Stamp(t time.Time) Stamp {
	return Stamp{MonoUS: t.Sub(tb.origin).Microseconds() + 1, WallUS: t.UnixMicro()}
}

// Interval is a half-open span of time [Start, End). Open is true when the
// condition still held at the end of the observation; End is then the last
// observation instant.
type Interval struct {
	Start Stamp    `json:"start"`
	End   Stamp    `json:"end"`
	Open  bool     `json:"open,omitempty"`
	Who   []string `json:"who,omitempty"`
	DurUS int64    `json:"dur_us"`
}

func newInterval(start, end Stamp, open bool, who []string) Interval {
	return Interval{Start: start, End: end, Open: open, Who: who, DurUS: end.MonoUS - start.MonoUS}
}

// Duration returns End − Start.
func (iv Interval) Duration() time.Duration { return iv.End.Sub(iv.Start) }

// sumMax returns the total and the longest duration of ivs.
func sumMax(ivs []Interval) (total, longest time.Duration) {
	for _, iv := range ivs {
		d := iv.Duration()
		total += d
		if d > longest {
			longest = d
		}
	}
	return total, longest
}
