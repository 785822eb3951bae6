package agent

import "testing"

func TestParseStat(t *testing.T) {
	rest := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 20 21"
	for _, comm := range []string{"(sleep)", "(a) b)", "(x (y) z)", "( )"} {
		st, err := parseStat("123 " + comm + rest)
		if err != nil || st.state != 'S' || st.startTime != 4242 {
			t.Errorf("comm %s: %+v, %v; want state S, start 4242", comm, st, err)
		}
	}
	for _, bad := range []string{"", "123 (x) S 1 2", "123 x S" + rest[2:], "123 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 nope 20"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}
