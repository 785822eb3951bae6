// Package monitoring holds leasehold's Prometheus alert rules and Grafana
// dashboard; this test checks them with promtool (Debian's prometheus
// package) and against the metrics the daemon exports.
package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/test/nstest"
)

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	nstest.Require(t, err == nil, "promtool is not installed (Debian package prometheus; make deps installs it)")
	return p
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// The rules are valid, and each alert fires on the series that should
// raise it and not on a healthy pair (leasehold-alerts_test.yaml).
func TestAlertRules(t *testing.T) {
	p := promtool(t)
	run(t, p, "check", "rules", "leasehold-alerts.yaml")
	run(t, p, "test", "rules", "leasehold-alerts_test.yaml")
	b, err := os.ReadFile("leasehold-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, alert := range []string{"LeaseholdSplitBrainSuspected", "LeaseholdNoOwner", "LeaseholdQuorumLost",
		"LeaseholdFenceRefreshFailing", "LeaseholdOwnerWithoutRenewals"} {
		if !strings.Contains(string(b), "alert: "+alert+"\n") {
			t.Errorf("no alert %s", alert)
		}
	}
	checkMetrics(t, "leasehold-alerts.yaml", string(b))
}

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int                      `json:"id"`
		Title   string                   `json:"title"`
		Type    string                   `json:"type"`
		GridPos struct{ X, Y, W, H int } `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// The dashboard loads (Grafana's JSON model: unique panel ids, panels on
// the 24-column grid without overlap, a datasource variable), and every
// query is PromQL promtool accepts, on metrics the daemon exports.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("leasehold-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("leasehold-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) < 10 {
		t.Fatalf("uid %q title %q, %d panels", d.UID, d.Title, len(d.Panels))
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}) bool {
		return v.Name == "datasource" && v.Type == "datasource"
	}) {
		t.Error("no datasource variable: the dashboard would be tied to one Prometheus")
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v off the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			expr := strings.NewReplacer("$__rate_interval", "1m", "$job", ".*", "$instance", ".*").Replace(q.Expr)
			fmt.Fprintf(&rules, "      - record: panel_%d_%s\n        expr: %q\n", p.ID, q.RefID, expr)
		}
		for _, q := range p.Targets {
			checkMetrics(t, fmt.Sprintf("panel %q", p.Title), q.Expr)
		}
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, promtool(t), "check", "rules", f)
}

var metricName = regexp.MustCompile(`\bleasehold_[a-z_]+\b`)

// exported are the metric names daemon/metrics.go registers.
func exported(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../daemon/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`"(leasehold_[a-z_]+)"`).FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	if len(out) < 15 {
		t.Fatalf("found %d metric names in daemon/metrics.go", len(out))
	}
	return out
}

// checkMetrics fails for a leasehold_ metric in text that the daemon does
// not export (a histogram's _bucket, _count and _sum count as its own).
func checkMetrics(t *testing.T, where, text string) {
	t.Helper()
	known := exported(t)
	for _, m := range metricName.FindAllString(text, -1) {
		base := m
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			base = strings.TrimSuffix(base, suf)
		}
		if !slices.Contains(known, m) && !slices.Contains(known, base) {
			t.Errorf("%s: %s is not a metric the daemon exports", where, m)
		}
	}
}
