package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Limits of the protocol.
const (
	MaxLine     = 4 << 20 // longest request line the agent reads
	MaxOutput   = 1 << 20 // cap of exec output and http reply bodies
	MaxInFlight = 64      // requests handled at once
	// MaxReplyLine bounds a reply line: MaxOutput bytes escaped as \uXXXX
	// (6 bytes each) plus the other fields.
	MaxReplyLine = 6*MaxOutput + 64<<10
)

// Ops.
const (
	OpExec   = "exec"
	OpSpawn  = "spawn"
	OpSignal = "signal"
	OpAlive  = "alive"
	OpHTTP   = "http"
	// OpRead reads the file Path (at most MaxOutput bytes) without a
	// shell: cheap enough to sample /proc files many times a second.
	OpRead = "read"
)

// Request is one request line. Which fields count depends on Op.
type Request struct {
	ID        uint64   `json:"id"`
	Op        string   `json:"op"`
	Script    string   `json:"script,omitempty"`
	TimeoutMS int64    `json:"timeout_ms,omitempty"`
	Argv      []string `json:"argv,omitempty"`
	Log       string   `json:"log,omitempty"`
	PID       int      `json:"pid,omitempty"`
	StartTime uint64   `json:"start_time,omitempty"`
	Sig       int      `json:"sig,omitempty"`
	Unix      string   `json:"unix,omitempty"`
	Method    string   `json:"method,omitempty"`
	Path      string   `json:"path,omitempty"`
	Body      string   `json:"body,omitempty"`
}

// Response is one reply line. Err is set when the op failed; RC only in
// exec replies, Alive only in alive replies.
type Response struct {
	ID        uint64 `json:"id"`
	Err       string `json:"err,omitempty"`
	RC        *int   `json:"rc,omitempty"`
	Out       string `json:"out,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
	Alive     *bool  `json:"alive,omitempty"`
	Status    int    `json:"status,omitempty"`
	Body      string `json:"body,omitempty"`
}

// Server handles requests. The zero value is not usable: use NewServer.
type Server struct {
	dir   string
	shell string
	slots chan struct{}
}

// NewServer returns a Server that runs commands in dir (the guest: /root)
// with shell (the guest: /bin/sh). The in-flight bound is per Server, over
// all connections it serves.
func NewServer(dir, shell string) *Server {
	return &Server{dir: dir, shell: shell, slots: make(chan struct{}, MaxInFlight)}
}

// Serve reads requests from rw until a read fails, handling each in its
// own goroutine, and returns the read error (io.EOF when the host side is
// not connected). It does not wait for requests still running: their
// replies go to rw if it still takes writes, and are dropped otherwise.
func (s *Server) Serve(ctx context.Context, rw io.ReadWriter) error {
	var wmu sync.Mutex
	reply := func(r Response) {
		b, err := json.Marshal(r)
		if err != nil {
			b, _ = json.Marshal(Response{ID: r.ID, Err: "agent: reply not encoded: " + err.Error()})
		}
		b = append(b, '\n')
		wmu.Lock()
		defer wmu.Unlock()
		_, _ = rw.Write(b) // a dead connection loses the reply, as documented
	}
	br := bufio.NewReaderSize(rw, 64<<10)
	for {
		line, err := ReadLine(br, MaxLine)
		if errors.Is(err, ErrLineTooLong) {
			reply(Response{Err: fmt.Sprintf("agent: request line over %d bytes discarded", MaxLine)})
			continue
		}
		if err != nil {
			return err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var req Request
		if err := json.Unmarshal(line, &req); err != nil {
			reply(Response{ID: req.ID, Err: "agent: request not decoded: " + err.Error()})
			continue
		}
		select {
		case s.slots <- struct{}{}:
		default:
			reply(Response{ID: req.ID, Err: fmt.Sprintf("agent: %d requests in flight, %s refused", MaxInFlight, req.Op)})
			continue
		}
		go func() {
			defer func() { <-s.slots }()
			r := s.Handle(ctx, req)
			r.ID = req.ID
			reply(r)
		}()
	}
}

// Handle runs one request and returns its reply (ID not set).
func (s *Server) Handle(ctx context.Context, req Request) Response {
	switch req.Op {
	case OpExec:
		return s.exec(req.Script, time.Duration(req.TimeoutMS)*time.Millisecond)
	case OpSpawn:
		return s.spawn(req.Argv, req.Log)
	case OpSignal:
		return signal(req.PID, req.StartTime, req.Sig)
	case OpAlive:
		return alive(req.PID, req.StartTime)
	case OpHTTP:
		return doHTTP(ctx, req)
	case OpRead:
		return readFile(req.Path)
	}
	return Response{Err: fmt.Sprintf("agent: unknown op %q", req.Op)}
}

// ErrLineTooLong is returned by ReadLine for a line over its limit; the
// line has been consumed.
var ErrLineTooLong = errors.New("agent: line too long")

// ReadLine returns the next '\n'-terminated line (without the '\n') of at
// most max bytes. A longer line is read to its end and dropped, and
// ErrLineTooLong returned. A last line without '\n' is returned with nil
// error; the next call returns the read error.
func ReadLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, ErrLineTooLong
			}
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case tooLong:
			return nil, ErrLineTooLong
		case len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

// readFile returns the first MaxOutput bytes of path (Truncated if there
// was more).
func readFile(path string) Response {
	f, err := os.Open(path)
	if err != nil {
		return fail("agent: read: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxOutput+1))
	if err != nil {
		return fail("agent: read %s: %v", path, err)
	}
	if len(b) > MaxOutput {
		return Response{Out: string(b[:MaxOutput]), Truncated: true}
	}
	return Response{Out: string(b)}
}

func fail(format string, args ...any) Response {
	return Response{Err: fmt.Sprintf(format, args...)}
}
