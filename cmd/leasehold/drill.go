package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/lab/labctl"
)

const drillUsage = `usage: leasehold drill SCENARIO [flags]
       leasehold drill soak --duration D [--lab NAME]
       leasehold drill SCENARIO --live --yes-disrupt [-c FILE]   (on a real node)

scenarios: graceful kill9 freeze vrrp-partition quorum-partition quorum-loss link-flap preempt foreign-speaker
           isolation (the owner's link down 10 s) mysqld-crash (a lab up with --mysql: the owner's mariadbd killed -9) all

flags:
  --lab NAME       the lab (default: the only one up; see leasehold lab up)
  --runs N         runs per scenario (default 1)
  --duration D     how long the fault lasts (freeze/vrrp-partition/foreign-speaker/isolation 10s, quorum-* 5s, link-flap 3s);
                   for soak: how long to soak
  --json           print the results as JSON instead of the table
  --html FILE      also write a self-contained HTML report with a timeline per run
  -v               print the daemons' logged transitions under the table
`

func cmdDrill(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), drillUsage) }
	labName := fs.String("lab", "", "lab name")
	dir := fs.String("dir", labctl.DefaultDir, "parent directory of labs")
	runs := fs.Int("runs", 1, "runs per scenario")
	dur := fs.Duration("duration", 0, "fault duration (soak: total duration)")
	asJSON := fs.Bool("json", false, "JSON output")
	htmlFile := fs.String("html", "", "write an HTML report to FILE")
	verbose := fs.Bool("v", false, "print logged transitions")
	live := fs.Bool("live", false, "drill the local node of a real cluster")
	yes := fs.Bool("yes-disrupt", false, "confirm that --live may disrupt this node")
	conf := fs.String("c", "/etc/leasehold/leasehold.yaml", "--live: the node's configuration file")
	seed := fs.Int64("seed", 0, "soak: random seed (default: time)")
	pos, rc, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return rc
	}
	if len(pos) == 1 && isHelp(pos[0]) {
		fmt.Fprint(stdout, drillUsage)
		return exitOK
	}
	// The arguments are checked before anything is touched.
	switch {
	case len(pos) != 1:
		return usageError(fs, stderr, "want exactly one SCENARIO, have %q", pos)
	case pos[0] != "all" && pos[0] != "soak" && !slices.Contains(drill.Scenarios, pos[0]):
		return usageError(fs, stderr, "unknown scenario %q", pos[0])
	case *runs < 1:
		return usageError(fs, stderr, "--runs %d: want 1 or more", *runs)
	case *dur < 0:
		return usageError(fs, stderr, "--duration %v: want a positive duration", *dur)
	case pos[0] == "soak" && *dur == 0:
		return usageError(fs, stderr, "soak: --duration is required (e.g. --duration 10m)")
	case pos[0] == "soak" && *live:
		return usageError(fs, stderr, "soak runs on a lab, not --live")
	}
	name := pos[0]
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if *live {
		return drillLive(ctx, name, *conf, *dur, *yes, *asJSON, *htmlFile, stdout, stderr)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "leasehold drill: needs root (network namespaces)")
		return exitFailure
	}
	l, rc := openLab(*dir, *labName, stderr)
	if l == nil {
		return rc
	}
	if name != "all" && name != "soak" && !slices.Contains(drill.ScenariosFor(l), name) {
		return usageError(fs, stderr, "lab %s cannot run %q (it runs: %s)", l.Name(), name, strings.Join(drill.ScenariosFor(l), " "))
	}
	host, _ := os.Hostname()
	rep := drill.Report{Target: "lab " + l.Name(), Backend: l.Backend(), Host: host, Created: time.Now().UTC()}
	progress := stderr
	if name == "soak" {
		if *seed == 0 {
			*seed = time.Now().UnixNano()
		}
		sum, err := drill.Soak(ctx, l, drill.SoakOptions{Duration: *dur, Seed: *seed, Progress: progress})
		if err != nil {
			// What the soak saw up to the error, memory series included.
			sum.Write(stderr)
			fmt.Fprintln(stderr, "leasehold drill soak:", err)
			return 1
		}
		rep.Results = sum.Results
		rep.Health = &sum.Health
		if *asJSON {
			rep.WriteJSON(stdout)
		} else {
			sum.Write(stdout)
		}
		if rc := writeHTML(*htmlFile, rep, stdout, stderr); rc != 0 {
			return rc
		}
		if !sum.Pass() {
			return 1
		}
		return 0
	}
	scenarios := []string{name}
	if name == "all" {
		scenarios = drill.ScenariosFor(l)
	}
	for _, sc := range scenarios {
		for i := 1; i <= max(*runs, 1); i++ {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(progress, "drill %s run %d/%d on lab %s ...", sc, i, max(*runs, 1), l.Name())
			start := time.Now()
			r, err := drill.Run(ctx, l, drill.Scenario{Name: sc, Duration: *dur})
			if err != nil {
				fmt.Fprintf(progress, " error\n")
				fmt.Fprintln(stderr, "leasehold drill:", err)
				if len(rep.Results) == 0 {
					return 1
				}
				break
			}
			r.Run, r.Target = i, rep.Target
			rep.Results = append(rep.Results, r)
			fmt.Fprintf(progress, " %s (%v)\n", r.Verdict, time.Since(start).Round(100*time.Millisecond))
		}
	}
	if *asJSON {
		rep.WriteJSON(stdout)
	} else {
		rep.WriteTable(stdout, *verbose)
		if *runs > 1 {
			fmt.Fprintln(stdout)
			rep.WriteSummary(stdout)
		}
	}
	if rc := writeHTML(*htmlFile, rep, stdout, stderr); rc != 0 {
		return rc
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "leasehold drill: interrupted")
		return 1
	}
	if !rep.Pass() {
		return 1
	}
	return 0
}

func writeHTML(path string, rep drill.Report, stdout, stderr io.Writer) int {
	if path == "" {
		return 0
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(stderr, "leasehold drill:", err)
		return 1
	}
	if err := drill.WriteHTML(f, rep); err != nil {
		f.Close()
		fmt.Fprintln(stderr, "leasehold drill: html:", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(stderr, "leasehold drill:", err)
		return 1
	}
	abs, _ := filepath.Abs(path)
	fmt.Fprintf(stdout, "\nHTML report: %s\n", abs)
	return 0
}

func drillLive(ctx context.Context, name, conf string, dur time.Duration, yes, asJSON bool, htmlFile string, stdout, stderr io.Writer) int {
	if !yes {
		fmt.Fprintln(stderr, "leasehold drill --live injects a real fault on THIS node (its VIPs may move, clients may see an outage).\n"+
			"Re-run with --yes-disrupt to confirm.")
		return 2
	}
	if strings.HasPrefix(name, "-") {
		return 2
	}
	r, err := drill.Live(ctx, drill.LiveOptions{Scenario: name, Config: conf, Duration: dur, Progress: stderr})
	if err != nil {
		fmt.Fprintln(stderr, "leasehold drill --live:", err)
		return 1
	}
	rep := drill.Report{Target: "live " + r.Target, Created: time.Now().UTC(), Results: []drill.Result{r}}
	if asJSON {
		rep.WriteJSON(stdout)
	} else {
		rep.WriteTable(stdout, true)
	}
	if rc := writeHTML(htmlFile, rep, stdout, stderr); rc != 0 {
		return rc
	}
	if !r.Pass {
		return 1
	}
	return 0
}
