package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// maxQMPLine bounds a QMP reply line (query-* replies are a few KiB).
const maxQMPLine = 4 << 20

// qmpDial returns a dialer that connects to qemu's QMP socket and does the
// greeting and capabilities handshake before handing the connection over.
func qmpDial(path string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		if err := qmpHandshake(conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("qmp handshake on %s: %w", path, err)
		}
		_ = conn.SetDeadline(time.Time{})
		return conn, nil
	}
}

func qmpHandshake(conn net.Conn) error {
	greeting, err := readByteLine(conn)
	if err != nil {
		return fmt.Errorf("no greeting: %w", err)
	}
	var g struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if json.Unmarshal(greeting, &g) != nil || g.QMP == nil {
		return fmt.Errorf("greeting %q is not QMP's", greeting)
	}
	if _, err := conn.Write([]byte(`{"execute":"qmp_capabilities","id":"cap"}` + "\n")); err != nil {
		return fmt.Errorf("capabilities not sent: %w", err)
	}
	reply, err := readByteLine(conn)
	if err != nil {
		return fmt.Errorf("no capabilities reply: %w", err)
	}
	if _, err := qmpResult(reply); err != nil {
		return err
	}
	return nil
}

// readByteLine reads one line a byte at a time, so that nothing after it
// is consumed (the connection is handed to a buffered reader afterwards).
func readByteLine(conn net.Conn) ([]byte, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) < maxQMPLine {
		if _, err := conn.Read(b); err != nil {
			return nil, err
		}
		if b[0] == '\n' {
			return line, nil
		}
		line = append(line, b[0])
	}
	return nil, errors.New("line too long")
}

// qmpKey reads the id of a QMP reply; events and anything without an id
// are not replies.
func qmpKey(line []byte) (string, bool) {
	var r struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(line, &r) != nil || r.ID == "" {
		return "", false
	}
	return r.ID, true
}

func qmpResult(line []byte) (json.RawMessage, error) {
	var r struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("reply %q not decoded: %w", line, err)
	}
	if r.Error != nil {
		return nil, fmt.Errorf("%s: %s", r.Error.Class, r.Error.Desc)
	}
	return r.Return, nil
}

func qmpCall(ctx context.Context, c *lineConn, command string, args any) (json.RawMessage, error) {
	line, err := c.call(ctx, func(key string) ([]byte, error) {
		return json.Marshal(struct {
			Execute   string `json:"execute"`
			Arguments any    `json:"arguments,omitempty"`
			ID        string `json:"id"`
		}{command, args, key})
	})
	if err != nil {
		return nil, err
	}
	return qmpResult(line)
}
