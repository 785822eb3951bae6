package drill

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadRecorded(t *testing.T) Report {
	t.Helper()
	b, err := os.ReadFile("testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ReadJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) == 0 {
		t.Fatal("recorded report has no results")
	}
	return rep
}

// The page is self-contained: no external scripts, styles, images or fonts.
func TestHTMLSelfContained(t *testing.T) {
	rep := loadRecorded(t)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script", "src=", "<link", "@import", "url(", "href=\"http"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: not self-contained", bad)
		}
	}
	if got := strings.Count(page, `<svg class="timeline"`); got != len(rep.Results) {
		t.Errorf("%d timelines for %d results", got, len(rep.Results))
	}
}

// chromium returns the path of Debian's chromium, skipping (or failing
// when LEASEHOLD_STRICT=1) without it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("LEASEHOLD_STRICT") == "1" {
		t.Fatal("LEASEHOLD_STRICT=1 and chromium is not installed (Debian package chromium)")
	}
	t.Skip("skipping: needs chromium (Debian package chromium); set LEASEHOLD_STRICT=1 to fail instead")
	return ""
}

// The report loads in headless Chromium and its DOM has one timeline per
// result, each with the rows the report promises.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	rep := loadRecorded(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(f, rep); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--dump-dom", "file://"+page)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := string(out)
	if !strings.Contains(dom, "leasehold drill report") {
		t.Fatalf("chromium's DOM lacks the title; got %d bytes:\n%.500s", len(dom), dom)
	}
	if got := strings.Count(dom, `<svg class="timeline"`); got != len(rep.Results) {
		t.Errorf("DOM has %d svg.timeline elements for %d results", got, len(rep.Results))
	}
	for _, r := range rep.Results {
		if !strings.Contains(dom, `data-scenario="`+r.Scenario+`"`) {
			t.Errorf("no timeline for scenario %s", r.Scenario)
		}
	}
	for _, row := range []string{"VIP configured · n1", "answers ARP · n2", "client (TCP every 20 ms)", "lease epoch / role", "fault"} {
		if c := strings.Count(dom, ">"+row+"<"); c != len(rep.Results) {
			t.Errorf("row %q appears %d times, want once per timeline (%d)", row, c, len(rep.Results))
		}
	}
}

// The recorded results round-trip through JSON and the table names every
// scenario with its verdict.
func TestTableAndJSON(t *testing.T) {
	rep := loadRecorded(t)
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(js.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != len(rep.Results) || back.Results[0].Timeline.EndUS != rep.Results[0].Timeline.EndUS {
		t.Errorf("JSON round trip lost data")
	}
	var tab bytes.Buffer
	rep.WriteTable(&tab, true)
	for _, r := range rep.Results {
		if !strings.Contains(tab.String(), r.Scenario) {
			t.Errorf("table lacks %s", r.Scenario)
		}
	}
	if rep.Pass() != !strings.Contains(tab.String(), "FAIL") {
		t.Errorf("Pass()=%v but the table says:\n%s", rep.Pass(), tab.String())
	}
}

// The labels of the lease row do not overlap as Chromium lays them out
// (marks close in time: "n1 down" and "n2 owner e48" in the graceful drill).
func TestHTMLLeaseLabelsDoNotOverlap(t *testing.T) {
	bin := chromium(t)
	rep := loadRecorded(t)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	// Test-only: a script measures every label and writes what overlaps.
	probe := `<pre id="overlaps"></pre><script>
const out = [];
for (const svg of document.querySelectorAll("svg.timeline")) {
  const boxes = [...svg.querySelectorAll("text.mark")].map(t => [t.textContent, t.getBBox()]);
  for (let i = 1; i < boxes.length; i++) {
    const [pn, p] = boxes[i-1], [n, b] = boxes[i];
    if (b.x < p.x + p.width && Math.abs(b.y - p.y) < b.height) out.push(svg.dataset.scenario + ": " + pn + " / " + n);
  }
  out.push("measured " + svg.dataset.scenario + " " + boxes.length);
}
document.getElementById("overlaps").textContent = out.join("\n");
</script>`
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, []byte(strings.Replace(buf.String(), "</body>", probe+"</body>", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(filepath.Dir(page), "profile"), "--dump-dom", "file://"+page).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	_, res, _ := strings.Cut(string(out), `<pre id="overlaps">`)
	res, _, _ = strings.Cut(res, "</pre>")
	if strings.Count(res, "measured ") != len(rep.Results) {
		t.Fatalf("the probe did not measure every timeline: %q", res)
	}
	for _, l := range strings.Split(res, "\n") {
		if !strings.HasPrefix(l, "measured ") {
			t.Errorf("labels overlap: %s", l)
		}
	}
}

// The table shows the takeover and handback in OWNER, the outage after the
// restore, and the old owner's ARP answers against the takeover.
func TestTableWording(t *testing.T) {
	r := Result{Scenario: "graceful", Run: 1, Verdict: "PASS", Pass: true, OldOwner: "n1", NewOwner: "n2", FinalOwner: "n1",
		OutageUS: 311000, RestoreOutageUS: 193000, TimeToNewOwnerUS: 218000, AddrNewOwnerUS: 119000, OldOwnerLastARPUS: 100000}
	stay := Result{Scenario: "vrrp-partition", Run: 1, Verdict: "PASS", Pass: true, OldOwner: "n1", FinalOwner: "n1", OldOwnerLastARPUS: 9900000}
	var tab bytes.Buffer
	Report{Results: []Result{r, stay}}.WriteTable(&tab, false)
	for _, want := range []string{"OUTAGE (RESTORE)", "193ms", "n1→n2→n1", "+100ms (before takeover)", "owner throughout"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
	if strings.Contains(tab.String(), "n1→n1") {
		t.Errorf("OWNER repeats a node:\n%s", tab.String())
	}
}
