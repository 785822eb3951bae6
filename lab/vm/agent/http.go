package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

func doHTTP(ctx context.Context, req Request) Response {
	if req.TimeoutMS <= 0 {
		return fail("agent: http: timeout_ms must be positive: not sent")
	}
	if req.Unix == "" || !strings.HasPrefix(req.Path, "/") {
		return fail("agent: http: need a unix socket and a path starting with '/': not sent")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(req.TimeoutMS)*time.Millisecond)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", req.Unix)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	var body io.Reader
	if req.Body != "" {
		body = strings.NewReader(req.Body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, "http://guest"+req.Path, body)
	if err != nil {
		return fail("agent: http %s %s: not sent: %v", method, req.Path, err)
	}
	resp, err := tr.RoundTrip(hreq)
	if err != nil {
		return fail("agent: http %s %s via %s: %v", method, req.Path, req.Unix, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxOutput+1))
	if err != nil {
		return fail("agent: http %s %s via %s: status %d, body not read: %v", method, req.Path, req.Unix, resp.StatusCode, err)
	}
	r := Response{Status: resp.StatusCode}
	if len(b) > MaxOutput {
		b, r.Truncated = b[:MaxOutput], true
	}
	r.Body = string(b)
	return r
}
