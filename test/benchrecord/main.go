// Command benchrecord copies benchmark output into docs/benchmarks.md.
//
//	benchrecord codec OUTPUT.txt docs/benchmarks.md   (go test -bench output)
//	benchrecord lease OUTPUT.txt docs/benchmarks.md   (markdown tables printed by TestBench*)
//	benchrecord lvs OUTPUT.txt docs/benchmarks.md     (the block lvs/lvsvm's TestBenchLVS prints)
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/leasehold/leasehold/test/benchdoc"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: benchrecord codec|lease|lvs OUTPUT DOC")
		os.Exit(2)
	}
	kind, in, doc := os.Args[1], os.Args[2], os.Args[3]
	b, err := os.ReadFile(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var body, title string
	switch kind {
	case "codec":
		title = "VRRP codec (go test -bench ./vrrp/)"
		var rows []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Benchmark") {
				rows = append(rows, l)
			}
		}
		if len(rows) == 0 {
			fmt.Fprintln(os.Stderr, "benchrecord: no Benchmark lines in", in)
			os.Exit(1)
		}
		body = "```\n" + strings.Join(rows, "\n") + "\n```"
	case "lease":
		title = "Quorum leases (LEASEHOLD_BENCH=1 go test -run TestBench ./quorum/...)"
		var rows []string
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			t := strings.TrimSpace(l)
			switch {
			case strings.HasPrefix(t, "=== RUN   TestBenchLease"):
				rows = append(rows, "", "**etcd backend**", "")
			case strings.HasPrefix(t, "=== RUN   TestBenchmark"):
				rows = append(rows, "", "**raft backend (3 voters on loopback, 100 ms timeouts)**", "")
			case strings.HasPrefix(t, "|"):
				// A header row (followed by |---) starts a new table.
				if i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "|---") && len(rows) > 0 && rows[len(rows)-1] != "" {
					rows = append(rows, "")
				}
				rows = append(rows, t)
			}
		}
		if len(rows) == 0 {
			fmt.Fprintln(os.Stderr, "benchrecord: no markdown table rows in", in)
			os.Exit(1)
		}
		body = strings.Join(rows, "\n")
	case "lvs":
		title = "LVS directors against keepalived (make bench-lvs)"
		_, rest, ok := strings.Cut(string(b), "BENCH-LVS-BEGIN\n")
		block, _, ok2 := strings.Cut(rest, "BENCH-LVS-END")
		if !ok || !ok2 {
			fmt.Fprintln(os.Stderr, "benchrecord: no BENCH-LVS block in", in, "(did TestBenchLVS finish?)")
			os.Exit(1)
		}
		body = block
	default:
		fmt.Fprintln(os.Stderr, "benchrecord: unknown kind", kind)
		os.Exit(2)
	}
	if err := benchdoc.Record(doc, kind, title, body); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("recorded", kind, "in", doc)
}
