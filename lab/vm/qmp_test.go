package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQMP serves one QMP connection on sock: greeting, capabilities, then
// for every command an event followed by the reply; "fail" gets an error.
func fakeQMP(t *testing.T, sock string) {
	t.Helper()
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintln(c, `{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}`)
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var cmd struct {
				Execute   string          `json:"execute"`
				Arguments json.RawMessage `json:"arguments"`
				ID        json.RawMessage `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &cmd) != nil {
				return
			}
			fmt.Fprintln(c, `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "NIC_RX_FILTER_CHANGED", "data": {}}`)
			switch cmd.Execute {
			case "fail":
				fmt.Fprintf(c, `{"error": {"class": "GenericError", "desc": "no such thing"}, "id": %s}`+"\n", cmd.ID)
			default:
				fmt.Fprintf(c, `{"return": {"echo": %q, "args": %s}, "id": %s}`+"\n", cmd.Execute, orNull(cmd.Arguments), cmd.ID)
			}
		}
	}()
}

func orNull(b json.RawMessage) string {
	if len(b) == 0 {
		return "null"
	}
	return string(b)
}

func TestQMPClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	fakeQMP(t, sock)
	v := &VM{cfg: Config{Name: "fake"}, exited: make(chan struct{})}
	v.qmp = newLineConn(qmpDial(sock), qmpKey, maxQMPLine)
	defer v.qmp.close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()

	r, err := v.QMP(ctx, "query-status", nil)
	if err != nil || string(r) != `{"echo": "query-status", "args": null}` {
		t.Errorf("query-status = %s, %v", r, err)
	}
	if err := v.SetLink(ctx, "l2", false); err != nil {
		t.Errorf("set_link: %v", err)
	}
	r, _ = v.QMP(ctx, "set_link", map[string]any{"name": "l2", "up": true})
	if !strings.Contains(string(r), `"args": {"name":"l2","up":true}`) {
		t.Errorf("set_link arguments as sent: %s", r)
	}
	if _, err := v.QMP(ctx, "fail", nil); err == nil || !strings.Contains(err.Error(), "GenericError: no such thing") {
		t.Errorf("error reply: %v", err)
	}
	close(v.exited)
	if _, err := v.QMP(ctx, "query-status", nil); err == nil {
		t.Errorf("QMP after qemu exited: no error")
	}
}
