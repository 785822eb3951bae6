package raft

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	hraft "github.com/hashicorp/raft"
)

// streamLayer carries the raft transport over TCP, with mutual TLS when
// configured.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	tls       *tls.Config // client side; nil for plain TCP
}

func newStreamLayer(cfg Config) (hraft.StreamLayer, error) {
	var self string
	for _, p := range cfg.Peers {
		if p.ID == cfg.ID {
			self = p.Addr
		}
	}
	adv, err := net.ResolveTCPAddr("tcp", self)
	if err != nil {
		return nil, fmt.Errorf("raft: advertise address %q: %w", self, err)
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("raft: transport listen: %w", err)
	}
	s := &streamLayer{Listener: ln, advertise: adv}
	if cfg.TLS != nil {
		srv, err := cfg.TLS.serverConfig()
		if err != nil {
			ln.Close()
			return nil, err
		}
		cli, err := cfg.TLS.clientConfig()
		if err != nil {
			ln.Close()
			return nil, err
		}
		s.Listener = tls.NewListener(ln, srv)
		s.tls = cli
	}
	return s, nil
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(addr hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tls == nil {
		return d.Dial("tcp", string(addr))
	}
	tc := s.tls.Clone()
	if host, _, err := net.SplitHostPort(string(addr)); err == nil {
		tc.ServerName = host
	}
	return tls.DialWithDialer(d, "tcp", string(addr), tc)
}
