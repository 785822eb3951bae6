// Command demo is `make demo`: it brings up a lab (2 nodes, raft witness),
// runs every drill against it, prints the table and the path of the HTML
// report, and tears the lab down, also when interrupted. Needs root.
//
// It drives the same packages as `leasehold lab` and `leasehold drill`
// (lab/labctl, lab/drill) in-process, the way a benchmark would.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/lab/labctl"
)

func main() {
	bin := flag.String("bin", "bin/leasehold", "leasehold binary")
	html := flag.String("html", "drill-report.html", "where to write the HTML report")
	quorum := flag.String("quorum", "raft", "raft or etcd")
	withMySQL := flag.Bool("mysql", false, "the nodes also run a MariaDB dual-master pair; every drill runs the write checker, and mysqld-crash runs")
	semiSync := flag.Bool("semi-sync", false, "with -mysql: the pair replicates semi-synchronously")
	flag.Parse()
	if err := run(*bin, *html, *quorum, *withMySQL, *semiSync); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(bin, htmlPath, quorum string, withMySQL, semiSync bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces)")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	extra := ""
	if withMySQL {
		extra = ", a MariaDB dual-master pair (group 1 has a mysql section; a client writes through the VIP)"
		if semiSync {
			extra += ", semi-synchronous replication"
		}
	}
	say("lab up: 2 leasehold nodes (priorities 120/100), quorum %s, VRRPv3 0.1 s, lease TTL 1 s%s", quorum, extra)
	l, err := labctl.Up(ctx, labctl.Options{Nodes: 2, Quorum: quorum, Binary: bin, Name: fmt.Sprintf("demo%d", os.Getpid()), MySQL: withMySQL, SemiSync: semiSync}, log)
	if err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	defer func() {
		if err := l.Down(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "demo: lab down:", err)
		} else {
			say("lab %s down: namespaces, processes and %s removed", l.Name(), l.Dir())
		}
	}()
	say("lab %s up (namespaces %s-*, logs in %s)", l.Name(), l.Meta().ID, l.Dir())
	host, _ := os.Hostname()
	rep := drill.Report{Target: "lab " + l.Name(), Backend: quorum, Host: host, Created: time.Now().UTC()}
	for _, sc := range drill.ScenariosFor(l) {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		r, err := drill.Run(ctx, l, drill.Scenario{Name: sc})
		if err != nil {
			say("drill %-16s ERROR %v", sc, err)
			continue
		}
		r.Run, r.Target = 1, rep.Target
		rep.Results = append(rep.Results, r)
		say("drill %-16s %s  dual ARP rounds %d, client outage %v (%v)", sc, r.Verdict, r.DualARPRounds,
			time.Duration(r.OutageUS)*time.Microsecond, time.Since(t0).Round(100*time.Millisecond))
		if m := r.MySQL; m != nil {
			say("      mysql %s", m.Summary())
		}
	}
	fmt.Println()
	rep.WriteTable(os.Stdout, false)
	f, err := os.Create(htmlPath)
	if err != nil {
		return err
	}
	if err := drill.WriteHTML(f, rep); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	abs, _ := filepath.Abs(htmlPath)
	fmt.Printf("\nHTML report: %s\n", abs)
	say("demo took %v", time.Since(start).Round(time.Second))
	if !rep.Pass() {
		return fmt.Errorf("some drills failed (see the table)")
	}
	return ctx.Err()
}
