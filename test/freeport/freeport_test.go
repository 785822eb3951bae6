package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestAddrDistinctAndBelowEphemeral(t *testing.T) {
	seen := map[string]bool{}
	low := ephemeralLow()
	for range 200 {
		a := Addr(t)
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		_, ps, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(ps)
		if p < lowest || p >= low {
			t.Fatalf("port %d outside [%d, %d)", p, lowest, low)
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("returned %s but it does not bind: %v", a, err)
		}
		ln.Close()
	}
}
