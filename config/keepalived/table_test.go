package keepalived

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/lvs"
)

// ipvsadmTable renders the IPVS table a configuration asks for with every
// real server's checks in their first state (up unless alpha) the way
// `ipvsadm -Ln` prints it, without the connection counters: one line per
// service ("TCP  192.168.1.99:80 lc persistent 50", "FWM  7 rr") and one
// per real server ("-> 192.168.1.13:80 Route 1"), sorted as ipvsadm sorts
// neither: services and real servers in order.
func ipvsadmTable(c lvs.Config) []string {
	forward := map[lvs.Forward]string{lvs.NAT: "Masq", lvs.DR: "Route", lvs.TUN: "Tunnel"}
	var out []string
	for _, s := range c.Services {
		reals := make([]lvs.RealState, len(s.Reals))
		for i, r := range s.Reals {
			var checks []lvs.CheckState
			for _, ck := range r.Checks {
				checks = append(checks, lvs.InitialState(ck))
			}
			reals[i] = lvs.Real(r, checks)
		}
		quorum := lvs.QuorumStep(false, lvs.LiveWeight(reals), s.Quorum, s.Hysteresis)
		for _, v := range lvs.Desired(s, reals, quorum) {
			head := fmt.Sprintf("%s  %s %s", v.Key.Proto, v.Key.Addr, v.Scheduler)
			if v.Key.FWMark != 0 {
				head = fmt.Sprintf("FWM  %d %s", v.Key.FWMark, v.Scheduler)
			}
			if v.Timeout > 0 {
				head += fmt.Sprintf(" persistent %d", v.Timeout)
			}
			out = append(out, head)
			for _, d := range v.Dests {
				out = append(out, fmt.Sprintf("  -> %s %s %d", d.Addr, forward[d.Forward], d.Weight))
			}
		}
	}
	return out
}

// readIpvsadm reads `ipvsadm -Ln` output into ipvsadmTable's form.
func readIpvsadm(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0 || f[0] == "#" || f[0] == "IP" || f[0] == "Prot" || len(f) > 1 && f[1] == "RemoteAddress:Port":
		case f[0] == "->" && len(f) >= 4:
			out = append(out, fmt.Sprintf("  -> %s %s %s", f[1], f[2], f[3]))
		default:
			out = append(out, fmt.Sprintf("%s  %s", f[0], strings.Join(f[1:], " ")))
		}
	}
	return out
}

// TestSeedIPVSTable: seed 003's keepalived.conf of either director,
// imported, asks for the IPVS table keepalived made from it (the seed
// document prints it: lc, persistent 50, DR, weights 1).
func TestSeedIPVSTable(t *testing.T) {
	want, err := os.ReadFile("testdata/lvs-003.ipvsadm")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"lvs-003-master.conf", "lvs-003-backup.conf"} {
		im, err := importFile(t, filepath.Join("testdata", f), Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got := ipvsadmTable(im.Config.LVS)
		if w := readIpvsadm(string(want)); !slices.Equal(got, w) {
			t.Errorf("%s: the import's table\n%s\nkeepalived's (seed 003)\n%s", f, strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	}
}
