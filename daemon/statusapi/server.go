package statusapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"
)

// Defaults of the server's limits (Options fields left zero).
const (
	DefaultReadHeaderTimeout = 2 * time.Second
	DefaultReadTimeout       = 5 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultIdleTimeout       = 5 * time.Second
	DefaultShutdownTimeout   = time.Second
	DefaultMaxHeaderBytes    = 4 << 10
	DefaultMaxConns          = 64
	// maxProfile caps /debug/pprof/profile and /trace ?seconds=.
	maxProfile = 60 * time.Second
)

// Options configure a Server.
type Options struct {
	// Listen is "unix:/path" or a loopback host:port (see Listen); not
	// used when Listener is set.
	Listen string
	// Listener, if set, is served instead of opening Listen (tests, an
	// inherited socket). Run closes it.
	Listener net.Listener
	// Status returns the value GET /status encodes as JSON (required).
	Status func() any
	// Metrics serves GET /metrics (nil: 404).
	Metrics http.Handler
	// Pprof serves the Go profiler under /debug/pprof/ (unix sockets only).
	Pprof bool
	// Log receives the listening line and the HTTP server's own errors
	// (debug level). Nil: discard.
	Log *slog.Logger

	// Limits; zero means the Default... value.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	MaxHeaderBytes    int
	MaxConns          int
}

// Validate fills the defaults and checks o.
func (o *Options) Validate() error {
	if o.Status == nil {
		return errors.New("statusapi: Options.Status is nil")
	}
	if o.Listener == nil && o.Listen == "" {
		return errors.New("statusapi: no listen address")
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&o.ReadHeaderTimeout, DefaultReadHeaderTimeout}, {&o.ReadTimeout, DefaultReadTimeout},
		{&o.WriteTimeout, DefaultWriteTimeout}, {&o.IdleTimeout, DefaultIdleTimeout}, {&o.ShutdownTimeout, DefaultShutdownTimeout}} {
		if *d.v < 0 {
			return fmt.Errorf("statusapi: negative timeout %v", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.Pprof {
		unix := strings.HasPrefix(o.Listen, "unix:")
		if o.Listener != nil {
			unix = o.Listener.Addr().Network() == "unix"
		}
		if !unix {
			return fmt.Errorf("%w: status listen %q: the profiler exposes the process's memory; serve it on a unix socket (file permissions guard it)",
				ErrPprofNotUnix, o.addr())
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

func (o *Options) addr() string {
	if o.Listener != nil {
		return o.Listener.Addr().Network() + ":" + o.Listener.Addr().String()
	}
	return o.Listen
}

// Server is the status API server. NewServer starts nothing; Run serves.
type Server struct {
	o   Options
	lim *connLimiter
}

// Stats are the server's connection counters.
type Stats struct {
	Open    int    // connections open now
	Evicted uint64 // idle connections closed to make room for a new one
	Shed    uint64 // new connections closed because every slot was busy
}

// NewServer checks o (see Options.Validate) and returns a server that
// does nothing until Run.
func NewServer(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Server{o: o, lim: newConnLimiter(o.MaxConns)}, nil
}

// Stats returns the connection counters.
func (s *Server) Stats() Stats {
	return Stats{Open: s.lim.open(), Evicted: s.lim.evicted.Load(), Shed: s.lim.shed.Load()}
}

// Handler returns the API's routes (GET only), without the connection
// limits: for tests and for embedding.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s.o.Status()); err != nil {
			http.Error(w, "statusapi: encode status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		w.Write(b.Bytes())
	})
	if s.o.Metrics != nil {
		mux.Handle("/metrics", s.o.Metrics)
	}
	if s.o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.Handle("/debug/pprof/profile", longRequest(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/trace", longRequest(http.HandlerFunc(pprof.Trace)))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "statusapi: only GET", http.StatusMethodNotAllowed)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// longRequest lets a profile or trace run ?seconds= (at most maxProfile)
// past the server's WriteTimeout: the write deadline of that one request
// is extended, and net/http/pprof is not shown the server's WriteTimeout.
func longRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sec, _ := strconv.ParseFloat(r.FormValue("seconds"), 64)
		if sec <= 0 {
			sec = 30 // pprof's default
		}
		d := time.Duration(sec * float64(time.Second))
		if d > maxProfile {
			http.Error(w, fmt.Sprintf("statusapi: seconds=%v: at most %v", sec, maxProfile), http.StatusBadRequest)
			return
		}
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + 10*time.Second))
		ctx := context.WithValue(r.Context(), http.ServerContextKey, nil)
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Run opens the listener (unless Options.Listener is set) and serves until
// ctx ends, then shuts down: requests in flight get ShutdownTimeout to
// finish, then every connection is closed. It returns nil after a
// shutdown, or the error that stopped it from serving.
func (s *Server) Run(ctx context.Context) error {
	l := s.o.Listener
	if l == nil {
		var err error
		if l, err = Listen(s.o.Listen); err != nil {
			return err
		}
	}
	s.lim.Listener = l
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.o.ReadHeaderTimeout,
		ReadTimeout:       s.o.ReadTimeout,
		WriteTimeout:      s.o.WriteTimeout,
		IdleTimeout:       s.o.IdleTimeout,
		MaxHeaderBytes:    s.o.MaxHeaderBytes,
		ConnState:         s.lim.track,
		ErrorLog:          slog.NewLogLogger(s.o.Log.Handler(), slog.LevelDebug),
	}
	s.o.Log.Info("status API listening", "addr", s.o.addr(), "pprof", s.o.Pprof)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.lim) }()
	select {
	case err := <-errc:
		return fmt.Errorf("statusapi: serve %s: %w", s.o.addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}
