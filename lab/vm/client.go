package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/leasehold/leasehold/lab/vm/agent"
)

// lineConn multiplexes calls over one line-oriented connection that is
// dialled on first use and again after it dropped. Each call registers a
// key; a reader goroutine routes every incoming line to the call whose key
// it carries and drops the others. Both the agent and the QMP clients use
// it; they differ in how a key is put into a request and read from a reply.
type lineConn struct {
	dial    func(ctx context.Context) (net.Conn, error)
	keyOf   func(line []byte) (string, bool) // false: not a reply (event, garbage)
	maxLine int

	dialMu sync.Mutex // one dial at a time
	wmu    sync.Mutex // one line written at a time
	mu     sync.Mutex
	conn   net.Conn
	next   uint64
	calls  map[string]*pendingCall
}

type pendingCall struct {
	conn  net.Conn
	reply chan []byte // buffered 1; closed when conn dropped first
}

// errDropped is wrapped by calls whose connection ended before the reply.
var errDropped = errors.New("connection dropped before the reply")

func newLineConn(dial func(ctx context.Context) (net.Conn, error), keyOf func([]byte) (string, bool), maxLine int) *lineConn {
	return &lineConn{dial: dial, keyOf: keyOf, maxLine: maxLine, calls: map[string]*pendingCall{}}
}

// call sends the line build(key) and waits for the reply with that key.
func (c *lineConn) call(ctx context.Context, build func(key string) ([]byte, error)) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, fmt.Errorf("request not sent: %w", context.Cause(ctx))
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.next++
	key := strconv.FormatUint(c.next, 10)
	pc := &pendingCall{conn: conn, reply: make(chan []byte, 1)}
	c.calls[key] = pc
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.calls, key)
		c.mu.Unlock()
	}()

	line, err := build(key)
	if err != nil {
		return nil, fmt.Errorf("request not sent: %w", err)
	}
	c.wmu.Lock()
	dl, _ := ctx.Deadline() // zero: none
	_ = conn.SetWriteDeadline(dl)
	_, err = conn.Write(append(line, '\n'))
	c.wmu.Unlock()
	if err != nil {
		c.drop(conn)
		return nil, fmt.Errorf("request not sent: %w", err)
	}
	select {
	case b, ok := <-pc.reply:
		if !ok {
			return nil, fmt.Errorf("request sent, %w", errDropped)
		}
		return b, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("request sent, no reply: %w", context.Cause(ctx))
	}
}

func (c *lineConn) connect(ctx context.Context) (net.Conn, error) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	c.mu.Lock()
	conn = c.conn
	c.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("not connected: %w", err)
	}
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	go c.read(conn)
	return conn, nil
}

func (c *lineConn) read(conn net.Conn) {
	defer c.drop(conn)
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		line, err := agent.ReadLine(br, c.maxLine)
		if errors.Is(err, agent.ErrLineTooLong) {
			continue
		}
		if err != nil {
			return
		}
		key, ok := c.keyOf(line)
		if !ok {
			continue
		}
		c.mu.Lock()
		pc := c.calls[key]
		c.mu.Unlock()
		if pc != nil && pc.conn == conn {
			select {
			case pc.reply <- line:
			default: // a duplicate key: keep the first
			}
		}
	}
}

// drop forgets conn (if still current), closes it and fails its calls.
func (c *lineConn) drop(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != conn {
		return
	}
	c.conn = nil
	_ = conn.Close()
	for key, pc := range c.calls {
		if pc.conn == conn {
			close(pc.reply)
			delete(c.calls, key)
		}
	}
}

// close drops the current connection; a later call dials again.
func (c *lineConn) close() {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		c.drop(conn)
	}
}

// agentKey reads the id of an agent reply.
func agentKey(line []byte) (string, bool) {
	var r struct {
		ID uint64 `json:"id"`
	}
	if json.Unmarshal(line, &r) != nil || r.ID == 0 {
		return "", false
	}
	return strconv.FormatUint(r.ID, 10), true
}

// agentCall sends req to the agent and decodes its reply; a reply with
// err set is returned as an error.
func agentCall(ctx context.Context, c *lineConn, req agent.Request) (agent.Response, error) {
	line, err := c.call(ctx, func(key string) ([]byte, error) {
		req.ID, _ = strconv.ParseUint(key, 10, 64)
		b, err := json.Marshal(req)
		if err == nil && len(b) > agent.MaxLine {
			err = fmt.Errorf("%d bytes, over the agent's %d", len(b), agent.MaxLine)
		}
		return b, err
	})
	if err != nil {
		return agent.Response{}, err
	}
	var r agent.Response
	if err := json.Unmarshal(line, &r); err != nil {
		return agent.Response{}, fmt.Errorf("reply not decoded: %w", err)
	}
	if r.Err != "" {
		return r, errors.New(r.Err)
	}
	return r, nil
}
