package drill

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"sort"
	"strings"
	"time"
)

// Node colours for the client row (answering node) and the epoch marks.
var nodeColors = []string{"#2b7bb9", "#e08a1e", "#3a9a4a", "#8a4fb5", "#b5654f", "#4fa5b5"}

const (
	svgW    = 1200
	labelW  = 170
	rowH    = 22
	rowGap  = 6
	axisH   = 24
	plotW   = svgW - labelW - 20
	htmlCSS = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 4px}
.meta{color:#666;margin-bottom:14px}
table.sum{border-collapse:collapse;background:#fff}
table.sum td,table.sum th{border:1px solid #ddd;padding:4px 8px;text-align:left;font-variant-numeric:tabular-nums}
table.sum th{background:#f0f0f0}
.PASS{color:#1d7a2e;font-weight:600}.FAIL{color:#c0261d;font-weight:700}
section.run{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;margin:18px 0}
.fault{color:#444;margin:2px 0 8px}
ul.figs{margin:4px 0;padding-left:18px}ul.figs li{margin:1px 0}
.note{color:#8a5a00}.reason{color:#c0261d;font-weight:600}
pre{font-size:12px;background:#f6f6f6;padding:8px;overflow-x:auto;max-height:320px}
svg.timeline text{font:12px system-ui,sans-serif;fill:#333}
svg.timeline .lbl{font-weight:600}
.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px;border-radius:2px}`
)

// WriteHTML writes a self-contained page (inline CSS and SVG, no external
// assets): a summary table, then per result its figures, a timeline
// (svg.timeline: VIP configured and ARP answers per node, client
// successes and failures, lease epoch changes, the fault window) and the
// logged transitions.
func WriteHTML(w io.Writer, rep Report) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	e := html.EscapeString
	verdict := "PASS"
	if !rep.Pass() {
		verdict = "FAIL"
	}
	p("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>leasehold drill report — %s</title>\n<style>%s</style></head><body>\n", e(rep.Target), htmlCSS)
	p("<h1>leasehold drill report: <span class=\"%s\">%s</span></h1>\n", verdict, verdict)
	p("<div class=\"meta\">%s · quorum %s · host %s · %s · %d run(s)</div>\n", e(rep.Target), e(rep.Backend), e(rep.Host), rep.Created.Format(time.RFC3339), len(rep.Results))
	p("<p>The invariant is <b>dual ARP = 0</b>: never two MACs answering an ARP probe (sender 0.0.0.0, every 100 ms) for the VIP. " +
		"\"VIP on both\" is the netlink view (address configured in two namespaces); it can be non-zero after kill -9 because the dead " +
		"node's address stays configured until its lifetime runs out, while the nftables fence already stops it answering ARP or accepting traffic.</p>\n")
	p("<table class=\"sum\"><tr><th>scenario</th><th>run</th><th>verdict</th><th>dual ARP rounds</th><th>VIP on both (netlink)</th><th>client outage (fault)</th><th>client outage (restore)</th><th>new owner</th><th>epoch</th><th>owner</th></tr>\n")
	for i, r := range rep.Results {
		no := "-"
		if r.NewOwner != "" {
			no = fmt.Sprintf("%s after %s", r.NewOwner, us(r.TimeToNewOwnerUS))
		}
		p("<tr><td><a href=\"#r%d\">%s</a></td><td>%d</td><td class=\"%s\">%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			i, e(r.Scenario), r.Run, r.Verdict, r.Verdict, r.DualARPRounds, orDash(r.AddrBothUS, us(r.AddrBothUS)), us(r.OutageUS),
			us(r.RestoreOutageUS), e(no), epochChange(r), e(ownerPath(r)))
	}
	p("</table>\n")
	if rep.Health != nil {
		writeHealthHTML(bw, *rep.Health)
	}
	for i, r := range rep.Results {
		p("<section class=\"run\" id=\"r%d\"><h2>%s · run %d · <span class=\"%s\">%s</span></h2>\n", i, e(r.Scenario), r.Run, r.Verdict, r.Verdict)
		p("<div class=\"fault\">%s</div>\n", e(r.Fault))
		for _, x := range r.Reasons {
			p("<div class=\"reason\">FAIL: %s</div>\n", e(x))
		}
		p("<ul class=\"figs\">")
		p("<li>dual-holder (ARP rounds answered by two MACs): <b>%d</b> of %d rounds</li>", r.DualARPRounds, r.ARPRounds)
		p("<li>VIP configured on two nodes (netlink): %s</li>", us(r.AddrBothUS))
		p("<li>client outage during the fault: %s (longest %s; %d of %d probes failed overall); after the restore: %s</li>",
			us(r.OutageUS), us(r.OutageMaxUS), r.ClientFailures, r.ClientProbes, us(r.RestoreOutageUS))
		if r.NewOwner != "" {
			p("<li>time to new owner: %s served the client %s after the fault (VIP added after %s)</li>", e(r.NewOwner), us(r.TimeToNewOwnerUS), us(r.AddrNewOwnerUS))
		}
		_, arp := oldOwnerARP(r)
		p("<li>%s</li>", e(arp))
		if r.WatchdogResetUS > 0 {
			p("<li>watchdog: %s's machine reset <b>%s</b> after the fault; another node took over after <b>%s</b></li>",
				e(r.OldOwner), us(r.WatchdogResetUS), us(r.TakeoverUS))
		}
		p("<li>gratuitous ARPs from nodes without the VIP: <b>%d</b>; client outage after the lab was steady again: %s</li>",
			sumCounts(r.NonHolderGARPs), us(r.SteadyOutageUS))
		if r.ServedAfterVIPUS >= 0 {
			p("<li>after the restore the client reached the VIP's holder %s after the VIP went up on it</li>", us(r.ServedAfterVIPUS))
		}
		p("<li>epochs before %s, after %s</li>", e(fmtEpochs(r.EpochBefore)), e(fmtEpochs(r.EpochAfter)))
		p("</ul>\n")
		for _, x := range r.Notes {
			p("<div class=\"note\">note: %s</div>\n", e(x))
		}
		writeSVG(bw, r)
		if len(r.Transitions) > 0 {
			p("<details><summary>logged transitions (%d)</summary><pre>", len(r.Transitions))
			for _, t := range r.Transitions {
				p("%-3s %s\n", e(t.Node), e(trimLog(t.Line)))
			}
			p("</pre></details>\n")
		}
		p("</section>\n")
	}
	p("</body></html>\n")
	return bw.Flush()
}

func fmtEpochs(m map[string]uint64) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	s := ""
	for _, k := range ks {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%s=%d", k, m[k])
	}
	if s == "" {
		return "-"
	}
	return s
}

func writeSVG(w io.Writer, r Result) {
	e := html.EscapeString
	end := max(r.Timeline.EndUS, 1)
	x := func(t int64) float64 {
		t = min(max(t, 0), end)
		return float64(labelW) + float64(t)*float64(plotW)/float64(end)
	}
	color := map[string]string{}
	for i, n := range r.Nodes {
		color[n] = nodeColors[i%len(nodeColors)]
	}
	type row struct {
		label string
		draw  func(y float64)
	}
	var rows []row
	rect := func(y float64, sp Span, fill, title string) {
		x0, x1 := x(sp.From), x(sp.To)
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`,
			x0, y+2, max(x1-x0, 1), rowH-4, fill, e(title))
	}
	for _, n := range r.Nodes {
		rows = append(rows, row{"VIP configured · " + n, func(y float64) {
			for _, sp := range r.Timeline.VIP[n] {
				rect(y, sp, color[n], fmt.Sprintf("%s has the VIP configured %s–%s", n, us(sp.From), us(sp.To)))
			}
		}})
	}
	for _, n := range r.Nodes {
		rows = append(rows, row{"answers ARP · " + n, func(y float64) {
			for _, sp := range r.Timeline.ARP[n] {
				rect(y, sp, color[n], fmt.Sprintf("%s answers ARP %s–%s", n, us(sp.From), us(sp.To)))
			}
			for _, sp := range r.Timeline.DualARP {
				rect(y, sp, "#d11", "two MACs answered: "+sp.Who)
			}
		}})
	}
	rows = append(rows, row{"client (TCP every 20 ms)", func(y float64) {
		for _, sp := range r.Timeline.Client {
			if sp.Who == "" {
				rect(y, sp, "#d33", fmt.Sprintf("client probes failing %s–%s (%s)", us(sp.From), us(sp.To), us(sp.To-sp.From)))
			} else {
				c := color[sp.Who]
				if c == "" {
					c = "#999"
				}
				rect(y, sp, c, fmt.Sprintf("client answered by %s %s–%s", sp.Who, us(sp.From), us(sp.To)))
			}
		}
	}})
	rows = append(rows, row{"lease epoch / role", func(y float64) {
		last := map[string]Mark{}
		free := 0.0 // where the next label may start without overlapping the previous one
		for _, m := range r.Timeline.Status {
			p, seen := last[m.Node]
			last[m.Node] = m
			if seen && p.Epoch == m.Epoch && p.Role == m.Role && p.Up == m.Up {
				continue
			}
			c := color[m.Node]
			xx := x(m.At)
			label := fmt.Sprintf("%s %s", m.Node, m.Role)
			if !m.Up {
				label = m.Node + " down"
			}
			if m.Role == "owner" {
				label = fmt.Sprintf("%s owner e%d", m.Node, m.Epoch)
			}
			fmt.Fprintf(w, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"><title>%s at %s (epoch %d)</title></line>`,
				xx, xx, y+1, y+rowH-1, c, e(label), us(m.At), m.Epoch)
			if m.Role == "owner" || !m.Up {
				// Marks close in time would print their labels on top of
				// each other: a label starts after the previous one ends
				// (the line marks the instant; its title has the time).
				tx := max(xx+3, free)
				free = tx + labelWidth(label) + 6
				fmt.Fprintf(w, `<text class="mark" x="%.1f" y="%.1f" style="font-size:10px;fill:%s">%s</text>`, tx, y+rowH-7, c, e(label))
			}
		}
	}})
	rows = append(rows, row{"fault", func(y float64) {
		to := r.Timeline.RestoreUS
		if to == 0 {
			to = r.Timeline.EndUS
		}
		if r.Timeline.FaultUS > 0 {
			rect(y, Span{From: r.Timeline.FaultUS, To: max(to, r.Timeline.FaultUS+1)}, "#555", r.Fault)
		}
	}})

	h := axisH + len(rows)*(rowH+rowGap) + 8
	fmt.Fprintf(w, `<svg class="timeline" data-scenario="%s" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="timeline of %s">`,
		e(r.Scenario), svgW, h, svgW, h, e(r.Scenario))
	fmt.Fprintf(w, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, svgW, h)
	// Fault window shading behind all rows.
	if r.Timeline.FaultUS > 0 {
		to := r.Timeline.RestoreUS
		if to == 0 {
			to = r.Timeline.EndUS
		}
		fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#fbecc8" opacity="0.6"/>`,
			x(r.Timeline.FaultUS), axisH, max(x(to)-x(r.Timeline.FaultUS), 1), h-axisH)
	}
	// Axis: a tick every 1, 2, 5 or 10 s.
	step := int64(time.Second / time.Microsecond)
	for _, s := range []int64{1, 2, 5, 10, 30, 60} {
		step = s * int64(time.Second/time.Microsecond)
		if end/step <= 20 {
			break
		}
	}
	for t := int64(0); t <= end; t += step {
		fmt.Fprintf(w, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#e4e4e4"/>`, x(t), x(t), axisH-4, h)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%ds</text>`, x(t), axisH-8, t/int64(time.Second/time.Microsecond))
	}
	for i, rw := range rows {
		y := float64(axisH + i*(rowH+rowGap))
		fmt.Fprintf(w, `<text class="lbl" x="4" y="%.1f">%s</text>`, y+rowH-7, e(rw.label))
		fmt.Fprintf(w, `<rect x="%d" y="%.1f" width="%d" height="%d" fill="none" stroke="#eee"/>`, labelW, y+1, plotW, rowH-2)
		rw.draw(y)
	}
	fmt.Fprint(w, "</svg>\n<div class=\"legend\">")
	for _, n := range r.Nodes {
		fmt.Fprintf(w, `<span><i class="sw" style="background:%s"></i>%s</span>`, color[n], e(n))
	}
	fmt.Fprint(w, `<span><i class="sw" style="background:#d33"></i>client failing / two MACs</span><span><i class="sw" style="background:#fbecc8"></i>fault window</span></div>`+"\n")
}

// labelWidth bounds the width of label in the timeline's 10 px sans-serif
// (no glyph of it is wider than 0.62 em).
func labelWidth(label string) float64 { return 6.2 * float64(len([]rune(label))) }

// writeHealthHTML renders the soak's health series: per process and
// metric, the rule's figures, the verdict and the samples, with a small
// line chart (svg.health).
func writeHealthHTML(w io.Writer, h Health) {
	e := html.EscapeString
	verdict := map[bool]string{true: "PASS", false: "FAIL"}[h.Pass]
	fmt.Fprintf(w, "<h2 id=\"health\">health of the daemons and the soak process: <span class=\"%s\">%s</span></h2>\n", verdict, verdict)
	fmt.Fprintf(w, "<p>Sampled every %s (and at the start and the end) at %s. Rule: %s.</p>\n", e(h.Every), e(h.sampleTimes()), e(h.Rule))
	for _, r := range h.Reasons {
		fmt.Fprintf(w, "<div class=\"reason\">FAIL: %s</div>\n", e(r))
	}
	fmt.Fprint(w, "<table class=\"sum\"><tr><th>process</th><th>metric</th><th>first ⅓ median</th><th>last ⅓ median</th><th>allowed growth</th><th>verdict</th><th>series</th><th>samples (↻ restart)</th></tr>\n")
	for _, s := range h.Series {
		for i, m := range healthMetrics {
			g := s.growth(i, m)
			cls := ""
			if g.Unbounded {
				cls = "FAIL"
			}
			fmt.Fprintf(w, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"%s\">%s</td><td>",
				e(s.Process), m.name, fmtValue(g.First, m.unit), fmtValue(g.Last, m.unit), fmtValue(g.Limit, m.unit), cls, growthVerdict(g))
			sparkline(w, s.Samples, m)
			fmt.Fprintf(w, "</td><td>%s</td></tr>\n", e(s.series(m)))
		}
	}
	fmt.Fprint(w, "</table>\n")
}

// sparkline draws the samples of one metric as a 160×24 polyline.
func sparkline(w io.Writer, samples []HealthSample, m healthMetric) {
	const sw, sh = 160, 24
	var hi int64 = 1
	var last float64 = 1
	for _, x := range samples {
		hi = max(hi, m.get(x))
		last = max(last, x.AtS)
	}
	var pts []string
	for _, x := range samples {
		if v := m.get(x); v >= 0 {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x.AtS/last*(sw-2)+1, sh-1-float64(v)/float64(hi)*(sh-2)))
		}
	}
	fmt.Fprintf(w, `<svg class="health" width="%d" height="%d" viewBox="0 0 %d %d"><polyline fill="none" stroke="#2b7bb9" stroke-width="1.5" points="%s"/></svg>`,
		sw, sh, sw, sh, strings.Join(pts, " "))
}
