package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/lvs/lvstest"
)

// /metrics has per-real-server check results, transitions, liveness and
// table weight.
func TestLVSMetrics(t *testing.T) {
	rs := netip.MustParseAddrPort("10.0.1.1:80")
	c := lvs.Check{Kind: lvs.TCPCheck, Target: rs, DelayLoop: time.Second, ConnectTimeout: time.Second}
	cfg := lvs.Config{Mode: lvs.ModeAll, Services: []lvs.Service{{Name: "10.0.0.99 80", Scheduler: "rr", Quorum: 1,
		Keys:  []lvs.Key{{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("10.0.0.99:80")}},
		Reals: []lvs.RealServer{{Addr: rs, Weight: 5, Checks: []lvs.Check{c}}}}}}
	dir, err := lvs.New(cfg, lvs.Options{Kernel: lvstest.NewKernel(), Prober: lvstest.NewProber()})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Reconcile(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newLVSCollector(&Daemon{lvs: dir}))
	want := `
# HELP leasehold_lvs_real_server_up 1 while every checker of the real server is up.
# TYPE leasehold_lvs_real_server_up gauge
leasehold_lvs_real_server_up{real_server="10.0.1.1:80",virtual_server="10.0.0.99 80"} 1
# HELP leasehold_lvs_real_server_weight The real server's weight in the desired IPVS table (absent: not in it).
# TYPE leasehold_lvs_real_server_weight gauge
leasehold_lvs_real_server_weight{real_server="10.0.1.1:80",virtual_server="10.0.0.99 80"} 5
# HELP leasehold_lvs_table_changes_total Changes made to the kernel's IPVS table.
# TYPE leasehold_lvs_table_changes_total counter
leasehold_lvs_table_changes_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "leasehold_lvs_real_server_up",
		"leasehold_lvs_real_server_weight", "leasehold_lvs_table_changes_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "leasehold_lvs_check_results_total", "leasehold_lvs_real_server_transitions_total"); err != nil || n != 4 {
		t.Errorf("%d check and transition series (%v), want 4", n, err)
	}
}
