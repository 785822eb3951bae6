package netlab

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// A responder speaks HTTP/1.1 (curl, as `leasehold lab up` suggests, gets
// the node's name) and the prober reads the name from the same answer.
// The answer follows the request: run with -count=300, an answer sent on
// accept made Go's client drop it as unsolicited.
func TestResponderAnswersHTTPAndProber(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, "n1") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" || string(body) != "n1\n" {
		t.Errorf("GET: %v %s %d %q", err, resp.Proto, resp.StatusCode, body)
	}
	var d net.Dialer
	node, errText := probeOnce(ctx, &d, netip.MustParseAddrPort(ln.Addr().String()), time.Now().Add(time.Second), make([]byte, 256))
	if node != "n1" || errText != "" {
		t.Errorf("probe: node %q, error %q", node, errText)
	}
	// A client that sends nothing (nc) is answered after requestWait.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	silent, err := io.ReadAll(c)
	c.Close()
	if name, ok := ParseAnswer(silent); err != nil || !ok || name != "n1" {
		t.Errorf("silent client: %q, %v", silent, err)
	}
	for in, want := range map[string]string{"n2\n": "n2", string(Answer("n3")): "n3"} {
		if got, ok := ParseAnswer([]byte(in)); !ok || got != want {
			t.Errorf("ParseAnswer(%q) = %q, %v", in, got, ok)
		}
	}
	if _, ok := ParseAnswer(Answer("n4")[:20]); ok {
		t.Error("ParseAnswer accepted a truncated answer")
	}
}
