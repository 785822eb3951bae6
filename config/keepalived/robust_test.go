package keepalived

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// measure imports data once and returns the time it took and the bytes it
// allocated.
func measure(t *testing.T, data []byte) (time.Duration, uint64, *Imported, error) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	im, err := Import("big.conf", data, Options{})
	d := time.Since(start)
	runtime.ReadMemStats(&after)
	return d, after.TotalAlloc - before.TotalAlloc, im, err
}

// instances writes n valid instances (distinct interface and VRID).
func instances(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "vrrp_instance VI_%d {\n interface eth%d\n virtual_router_id %d\n priority 100\n virtual_ipaddress {\n  10.%d.%d.%d\n }\n}\n",
			i, i/255, i%255+1, i/62500%250, i/250%250, i%250+1)
	}
	return []byte(b.String())
}

// Input that once took the importer's stack, memory or time: depth is
// bounded, time and memory are linear in the input (bounds generous for a
// loaded machine: the measured figures are about 25 ms and 1 byte per input
// byte for the brace cases, 2 s and 110 bytes per byte for 43k instances).
func TestImportBoundedInput(t *testing.T) {
	cases := []struct {
		name    string
		data    []byte
		err     string // "" = imports
		perByte uint64 // allocation bound per input byte
		limit   time.Duration
	}{
		{"5 MB of {", []byte(strings.Repeat("{", 5<<20)), "big.conf:1: (syntax): '{' without a keyword before it", 16, 5 * time.Second},
		{"655k nested blocks", []byte(strings.Repeat("a {\n", 655360)), "big.conf:17: (syntax): blocks nested deeper than 16", 16, 5 * time.Second},
		{"5 MB of NUL", make([]byte, 5<<20), "big.conf:1: (syntax): NUL byte at column 1", 16, 5 * time.Second},
		{"5 MB of newlines", []byte(strings.Repeat("\n", 5<<20)), "no vrrp_instance found", 16, 5 * time.Second},
		{"43k instances", instances(43000), "", 256, 60 * time.Second},
		{"200k unicast peers", []byte(vi1 + " unicast_peer {\n" + strings.Repeat("  10.0.0.2\n", 200000) + " }\n}\n"), "", 256, 30 * time.Second},
		{"200k track_script lines", []byte("vrrp_script chk {\n script /bin/true\n}\n" + vi1 + " track_script {\n" + strings.Repeat("  chk weight 2\n", 200000) + " }\n}\n"), "", 256, 30 * time.Second},
		{"200k bad lines", []byte(vi1 + strings.Repeat(" priority x\n", 200000) + "}\n"), "more errors from here on: only the first 50 are shown", 256, 30 * time.Second},
		{"40k instances on one VRID", sameVRID(40000), "more errors, not shown", 256, 60 * time.Second},
		{"10k virtual servers", virtualServers(10000), "", 256, 60 * time.Second},
		{"50k real servers", []byte(vi1 + "}\nvirtual_server 10.0.0.1 80 {\n lb_kind DR\n protocol TCP\n" + realServers(50000) + "}\n"), "", 256, 60 * time.Second},
		{"50k sync groups", []byte(vi1 + "}\n" + strings.Repeat("vrrp_sync_group G {\n group {\n  VI_1\n }\n}\n", 50000)), "vrrp_sync_group G is also defined at line 9", 256, 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.err == "" {
				t.Skip("-short")
			}
			d, alloc, im, err := measure(t, tc.data)
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err %.300v\nwant %q", err, tc.err)
			case err != nil && len(err.Error()) > 64<<10:
				t.Errorf("a %d byte error message", len(err.Error()))
			case err == nil && len(warningText(im)) > 256<<10:
				t.Errorf("%d bytes of warnings", len(warningText(im)))
			}
			if max := tc.perByte * uint64(len(tc.data)); alloc > max {
				t.Errorf("%d MB allocated for %d MB of input, want at most %d MB", alloc>>20, len(tc.data)>>20, max>>20)
			}
			if d > tc.limit {
				t.Errorf("took %v, want at most %v", d, tc.limit)
			}
			t.Logf("%v, %d MB allocated", d, alloc>>20)
		})
	}
}

// Ten times the instances cost about ten times the memory.
func TestImportLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	_, small, _, err := measure(t, instances(2000))
	if err != nil {
		t.Fatal(err)
	}
	_, big, _, err := measure(t, instances(20000))
	if err != nil {
		t.Fatal(err)
	}
	if ratio := float64(big) / float64(small); ratio > 15 {
		t.Errorf("2,000 instances: %d MB allocated, 20,000: %d MB (%.1f times)", small>>20, big>>20, ratio)
	}
}

// virtualServers writes an instance with n VIPs and a virtual server on
// each, one TCP-checked real server apiece.
func virtualServers(n int) []byte {
	var b strings.Builder
	b.WriteString("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n")
	for i := range n {
		fmt.Fprintf(&b, "  10.%d.%d.%d\n", i/62500%250, i/250%250, i%250+1)
	}
	b.WriteString(" }\n}\n")
	for i := range n {
		fmt.Fprintf(&b, "virtual_server 10.%d.%d.%d 80 {\n lb_kind DR\n protocol TCP\n real_server 10.200.0.1 80 {\n  TCP_CHECK {\n   connect_timeout 1\n  }\n }\n}\n",
			i/62500%250, i/250%250, i%250+1)
	}
	return []byte(b.String())
}

// realServers writes n real_server blocks with a TCP_CHECK.
func realServers(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " real_server 10.%d.%d.%d 80 {\n  TCP_CHECK {\n  }\n }\n", 100+i/62500%100, i/250%250, i%250+1)
	}
	return b.String()
}

// sameVRID writes n instances on eth0 with VRID 51: n-1 conflicts.
func sameVRID(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "vrrp_instance VI_%d {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n", i)
	}
	return []byte(b.String())
}

func TestExpandBraces(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"a/*.conf", []string{"a/*.conf"}},
		{"{a,b}/x", []string{"a/x", "b/x"}},
		{"x{1,2}y{3,4}", []string{"x1y3", "x1y4", "x2y3", "x2y4"}},
		{"{a,b{c,d}}e", []string{"ae", "bce", "bde"}},
		{"{a}/x", []string{"{a}/x"}},
		{`\{a,b}`, []string{`\{a,b}`}},
	}
	for _, c := range cases {
		got, ok := expandBraces(c.in)
		if !ok || strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s: %q %v, want %q", c.in, got, ok, c.want)
		}
	}
	// 2^40 alternatives: refused at once.
	start := time.Now()
	if _, ok := expandBraces(strings.Repeat("{a,b}", 40)); ok || time.Since(start) > time.Second {
		t.Errorf("a brace bomb expanded (%v)", time.Since(start))
	}
}
