package drill

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is a set of drill results, as written by --json and read by the
// HTML renderer.
type Report struct {
	Target  string    `json:"target"`
	Backend string    `json:"backend,omitempty"`
	Host    string    `json:"host,omitempty"`
	Created time.Time `json:"created"`
	Results []Result  `json:"results"`
	// Health is a soak's health series (SoakSummary.Health), nil for drills.
	Health *Health `json:"health,omitempty"`
}

// Pass reports whether every result passed and, for a soak, no health
// series grew without bound.
func (rep Report) Pass() bool {
	for _, r := range rep.Results {
		if !r.Pass {
			return false
		}
	}
	return len(rep.Results) > 0 && (rep.Health == nil || rep.Health.Pass)
}

// WriteJSON writes rep indented.
func (rep Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// ReadJSON parses a report written by WriteJSON.
func ReadJSON(b []byte) (Report, error) {
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("drill: parse report: %w", err)
	}
	return rep, nil
}

func epochChange(r Result) string {
	var before, after uint64
	for _, v := range r.EpochBefore {
		before = max(before, v)
	}
	for _, v := range r.EpochAfter {
		after = max(after, v)
	}
	return fmt.Sprintf("%d→%d", before, after)
}

// ownerPath is who owned the VIP before the fault, during it (the new
// owner, if any) and at the end: "n1→n2→n1" for a takeover and a handback,
// "n1" when it never moved.
func ownerPath(r Result) string {
	path := []string{r.OldOwner}
	for _, o := range []string{r.NewOwner, r.FinalOwner} {
		if o != "" && o != path[len(path)-1] {
			path = append(path, o)
		}
	}
	return strings.Join(path, "→")
}

// oldOwnerARP says when the old owner last answered ARP after the fault,
// against the takeover: answering until the new owner has the VIP is the
// old owner doing its job (and with no new owner it still is the owner);
// only answers after the takeover are worth a look (dual ARP, the
// invariant, is counted separately).
func oldOwnerARP(r Result) (short, long string) {
	takeover := r.AddrNewOwnerUS
	if takeover <= 0 {
		takeover = r.TimeToNewOwnerUS
	}
	switch {
	case r.OldOwnerLastARPUS < 0:
		return "never", fmt.Sprintf("the old owner %s did not answer ARP after the fault", r.OldOwner)
	case r.NewOwner == "" || r.NewOwner == r.OldOwner:
		return "owner throughout", fmt.Sprintf("%s stayed the owner and answered ARP as such (last %s after the fault)", r.OldOwner, us(r.OldOwnerLastARPUS))
	case r.OldOwnerLastARPUS <= takeover:
		return "+" + us(r.OldOwnerLastARPUS) + " (before takeover)",
			fmt.Sprintf("the old owner %s answered ARP until %s after the fault, before %s took over (%s)", r.OldOwner, us(r.OldOwnerLastARPUS), r.NewOwner, us(takeover))
	}
	return "+" + us(r.OldOwnerLastARPUS) + " (after takeover)",
		fmt.Sprintf("the old owner %s still answered ARP %s after the fault, after %s took over (%s)", r.OldOwner, us(r.OldOwnerLastARPUS), r.NewOwner, us(takeover))
}

func orDash(v int64, s string) string {
	if v == 0 {
		return "-"
	}
	return s
}

// WriteTable prints one line per result and, below, the notes, reasons
// and transitions.
func (rep Report) WriteTable(w io.Writer, verbose bool) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tRUN\tVERDICT\tDUAL ARP\tADDR ON BOTH*\tOUTAGE (FAULT)\tOUTAGE (RESTORE)\tNEW OWNER\tOLD OWNER LAST ARP\tEPOCH\tOWNER")
	for _, r := range rep.Results {
		newOwner := "-"
		if r.NewOwner != "" {
			newOwner = fmt.Sprintf("%s after %s", r.NewOwner, us(r.TimeToNewOwnerUS))
		}
		last, _ := oldOwnerARP(r)
		dual := fmt.Sprintf("%d rounds", r.DualARPRounds)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Scenario, r.Run, r.Verdict, dual, orDash(r.AddrBothUS, us(r.AddrBothUS)),
			us(r.OutageUS), us(r.RestoreOutageUS), newOwner, last, epochChange(r), ownerPath(r))
	}
	tw.Flush()
	fmt.Fprintln(w, "* VIP configured on two nodes (netlink). Not a split brain by itself: after kill -9 the dead node's address")
	fmt.Fprintln(w, "  lingers until its lifetime runs out, while the nftables fence already stops it answering ARP. DUAL ARP is the invariant.")
	for _, r := range rep.Results {
		if len(r.Reasons) == 0 && len(r.Notes) == 0 && r.WatchdogResetUS == 0 && r.MySQL == nil && !verbose {
			continue
		}
		fmt.Fprintf(w, "\n%s (run %d): %s\n", r.Scenario, r.Run, r.Fault)
		if m := r.MySQL; m != nil {
			fmt.Fprintf(w, "  mysql %s\n", m.Summary())
		}
		if r.WatchdogResetUS > 0 {
			fmt.Fprintf(w, "  watchdog: %s reset %s after the fault; takeover after %s\n", r.OldOwner, us(r.WatchdogResetUS), us(r.TakeoverUS))
		}
		for _, x := range r.Reasons {
			fmt.Fprintf(w, "  FAIL: %s\n", x)
		}
		for _, x := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", x)
		}
		if verbose {
			for _, t := range r.Transitions {
				fmt.Fprintf(w, "  %-3s %s\n", t.Node, trimLog(t.Line))
			}
		}
	}
	if rep.Health != nil {
		fmt.Fprintln(w)
		rep.Health.Write(w)
	}
}

// trimLog drops the slog time and level prefix (the time is kept short).
func trimLog(line string) string {
	ts := ""
	if v, ok := strings.CutPrefix(line, "time="); ok {
		ts, line, _ = strings.Cut(v, " ")
		if i := strings.IndexByte(ts, 'T'); i >= 0 {
			ts = ts[i+1:]
		}
		if len(ts) > 12 {
			ts = ts[:12]
		}
	}
	line = strings.TrimPrefix(line, "level=INFO ")
	return strings.TrimSpace(ts + " " + line)
}

// Summary aggregates several runs of each scenario (median and max).
func (rep Report) WriteSummary(w io.Writer) {
	by := map[string][]Result{}
	var order []string
	for _, r := range rep.Results {
		if _, ok := by[r.Scenario]; !ok {
			order = append(order, r.Scenario)
		}
		by[r.Scenario] = append(by[r.Scenario], r)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tRUNS\tPASSED\tDUAL ARP (total)\tOUTAGE median\tOUTAGE max\tNEW OWNER median")
	for _, sc := range order {
		rs := by[sc]
		var out, tnew []int64
		pass, dual := 0, 0
		for _, r := range rs {
			if r.Pass {
				pass++
			}
			dual += r.DualARPRounds
			out = append(out, r.OutageUS)
			if r.TimeToNewOwnerUS > 0 {
				tnew = append(tnew, r.TimeToNewOwnerUS)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\n", sc, len(rs), pass, dual, us(median(out)), us(maxOf(out)), us(median(tnew)))
	}
	tw.Flush()
}

func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func maxOf(v []int64) int64 {
	var m int64
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
