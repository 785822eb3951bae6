package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/vrrp"
)

// The foreign-speaker drill (issue 14): a VRRP speaker that is not a member
// of the group — another team's pair on the same VRID, or a forged advert
// stream — sends adverts for the lab's group 1 from the client's namespace
// with priority 254 every 100 ms: first VRRPv3 as the lab speaks it, then
// VRRPv2 with PASS authentication. In lease mode it is no member: the owner
// keeps serving (client outage 0, no dual ARP), the lease is not written,
// and every node reports the speaker (address and priority) in its status.

// ForeignSpeakerDuration is how long the speaker talks by default (the
// 10 s of the reproduction), split between its phases.
const ForeignSpeakerDuration = 10 * time.Second

// daemonAPI is a target whose daemons serve the status API on a unix
// socket (labctl.Lab).
type daemonAPI interface {
	StatusSocket(node string) string
}

// foreignPhase is one way the speaker talks.
type foreignPhase struct {
	name string
	adv  vrrp.Advert
	srcs []netip.Addr // the speaker's (forged) sources
}

// foreignPhases: from the client's own address, VRRPv3 as the lab speaks
// it, then VRRPv2 with PASS; with authenticated adverts (hmac) also
// VRRPv3 forged from every member's address at once.
func foreignPhases(vip, client netip.Addr, members []netip.Addr, hmac bool) []foreignPhase {
	v3 := vrrp.Advert{Version: 3, VRID: 1, Priority: 254, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip}}
	phs := []foreignPhase{
		{"VRRPv3, priority 254, advert 0.1 s, no authentication", v3, []netip.Addr{client}},
		{"VRRPv2, priority 254, PASS authentication",
			vrrp.Advert{Version: 2, VRID: 1, Priority: 254, Interval: time.Second, AuthType: vrrp.AuthPass,
				AuthData: vrrp.PassAuth("lab1066"), Addrs: []netip.Addr{vip}}, []netip.Addr{client}},
	}
	if hmac {
		phs = append(phs, foreignPhase{fmt.Sprintf("VRRPv3, priority 254, forged from the members' addresses %v (the lab's adverts are authenticated)", members), v3, members})
	}
	return phs
}

// performForeign runs the speaker and sets the drill's own checks.
func performForeign(ctx context.Context, t Target, s *session, sc Scenario, r *Result) (phases, error) {
	ph := phases{expect: expectKeep, victim: r.OldOwner, served: r.OldOwner}
	api, ok := t.(daemonAPI)
	if !ok {
		return ph, fmt.Errorf("drill %s: the target does not expose its daemons' status API", sc.Name)
	}
	dur := sc.Duration
	if dur <= 0 {
		dur = ForeignSpeakerDuration
	}
	r.Duration = dur.String()
	nl := t.(netlabTarget).Netlab()
	client := nl.Host(netlab.ClientName)
	if client == nil {
		return ph, fmt.Errorf("drill %s: the lab has no client host", sc.Name)
	}
	sp, err := newSpeaker(client)
	if err != nil {
		return ph, fmt.Errorf("drill %s: foreign speaker: %w", sc.Name, err)
	}
	defer sp.Close()

	before := map[string]uint64{}
	for _, n := range t.Nodes() {
		w, err := quorumWrites(ctx, api.StatusSocket(n), "VI_1")
		if err != nil {
			return ph, fmt.Errorf("drill %s: %s's /metrics: %w", sc.Name, n, err)
		}
		before[n] = w
	}
	var members []netip.Addr
	for _, n := range t.Nodes() {
		if h := nl.Host(n); h != nil {
			members = append(members, h.IPv4)
		}
	}
	hmac, err := authenticated(ctx, api.StatusSocket(t.Nodes()[0]))
	if err != nil {
		return ph, fmt.Errorf("drill %s: %s's status: %w", sc.Name, t.Nodes()[0], err)
	}
	phs := foreignPhases(t.VIP(), client.IPv4, members, hmac)
	if !hmac {
		r.Notes = append(r.Notes, "the lab's adverts are not authenticated (lab up --auth hmac): no phase forges a member's address, "+
			"whose adverts a node without authentication cannot tell from the member's")
	}
	var names []string
	for _, p := range phs {
		names = append(names, p.name)
	}
	r.Fault = fmt.Sprintf("a foreign VRRP speaker in the client's namespace (%s) on the group's VRID, %v: %s",
		client.IPv4, dur, strings.Join(names, "; then "))
	ph.fault = s.now()
	start := time.Now()
	for i, p := range phs {
		if err := sp.Speak(ctx, p.srcs, p.adv, dur/time.Duration(len(phs))); err != nil {
			return ph, fmt.Errorf("drill %s: phase %d: %w", sc.Name, i+1, err)
		}
	}
	ph.restore = s.now()
	elapsed := time.Since(start)

	var reasons, notes []string
	// The bound of node/doc.go ("Storm bound") for one node over the
	// elapsed time: at most FlapLimit+3 acquires, each with at most one
	// release, in any 10 s.
	windows := int(elapsed/(10*time.Second)) + 1
	bound := uint64(2 * (node.DefaultFlapLimit + 3) * windows)
	for _, n := range t.Nodes() {
		sock := api.StatusSocket(n)
		w, err := quorumWrites(ctx, sock, "VI_1")
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s's /metrics after the speaker: %v", n, err))
			continue
		}
		d := w - before[n]
		notes = append(notes, fmt.Sprintf("%s: %d quorum writes for VI_1 in %v (%.2f/s; bound %d)", n, d,
			elapsed.Round(time.Millisecond), float64(d)/elapsed.Seconds(), bound))
		if d > bound {
			reasons = append(reasons, fmt.Sprintf("%s wrote the lease %d times in %v: over the storm bound %d", n, d, elapsed.Round(time.Millisecond), bound))
		}
		seen, err := foreignReported(ctx, sock, client.IPv4)
		switch {
		case err != nil:
			reasons = append(reasons, fmt.Sprintf("%s's status: %v", n, err))
		case seen == "":
			reasons = append(reasons, fmt.Sprintf("%s does not report the foreign speaker %s in its status", n, client.IPv4))
		default:
			notes = append(notes, fmt.Sprintf("%s reports %s", n, seen))
		}
	}
	ph.check = func(r *Result) {
		if r.OutageUS > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("client outage %s while the foreign speaker talked (want 0)", us(r.OutageUS)))
		}
		if r.FinalOwner != r.OldOwner {
			r.Reasons = append(r.Reasons, fmt.Sprintf("the owner changed (%s → %s)", r.OldOwner, r.FinalOwner))
		}
		r.Reasons = append(r.Reasons, reasons...)
		r.Notes = append(r.Notes, notes...)
	}
	return ph, nil
}

// speaker sends forged adverts from the client's namespace through a raw
// socket that writes its own IPv4 header (any source, TTL 255).
type speaker struct {
	mu  sync.Mutex
	raw *ipv4.RawConn
}

func newSpeaker(h *netlab.Host) (*speaker, error) {
	sp := &speaker{}
	err := h.Do(func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		raw, err := ipv4.NewRawConn(c)
		if err != nil {
			c.Close()
			return err
		}
		ifi, err := net.InterfaceByName(h.Iface)
		if err != nil {
			raw.Close()
			return err
		}
		if err := raw.SetMulticastInterface(ifi); err != nil {
			raw.Close()
			return err
		}
		sp.raw = raw
		return nil
	})
	return sp, err
}

// Speak sends adv from each of srcs to 224.0.0.18 every 100 ms for d.
func (sp *speaker) Speak(ctx context.Context, srcs []netip.Addr, adv vrrp.Advert, d time.Duration) error {
	pkts := make([][]byte, len(srcs))
	for i, src := range srcs {
		pkt, err := vrrp.Encode(nil, &adv, src, vrrp.GroupV4, vrrp.EncodeOptions{})
		if err != nil {
			return err
		}
		pkts[i] = pkt
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.After(d)
	for {
		for i, src := range srcs {
			h := &ipv4.Header{Version: ipv4.Version, Len: ipv4.HeaderLen, TOS: 0xc0, TotalLen: ipv4.HeaderLen + len(pkts[i]),
				TTL: 255, Protocol: vrrp.IPProtoVRRP, Src: src.AsSlice(), Dst: vrrp.GroupV4.AsSlice()}
			sp.mu.Lock()
			err := sp.raw.WriteTo(h, pkts[i], nil)
			sp.mu.Unlock()
			if err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end:
			return nil
		case <-tick.C:
		}
	}
}

func (sp *speaker) Close() error { return sp.raw.Close() }

// apiGet reads path from a daemon's status API.
func apiGet(ctx context.Context, sock, path string) ([]byte, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://leasehold"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// quorumWrites sums leasehold_quorum_writes_total of group (acquire and
// release) on a daemon's /metrics.
func quorumWrites(ctx context.Context, sock, group string) (uint64, error) {
	b, err := apiGet(ctx, sock, "/metrics")
	if err != nil {
		return 0, err
	}
	var n uint64
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "leasehold_quorum_writes_total{") || !strings.Contains(line, `group="`+group+`"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("bad sample %q", line)
		}
		n += uint64(v)
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no leasehold_quorum_writes_total for %s", group)
	}
	return n, nil
}

// authenticated reports whether a daemon's instances use HMAC adverts.
func authenticated(ctx context.Context, sock string) (bool, error) {
	b, err := apiGet(ctx, sock, "/status")
	if err != nil {
		return false, err
	}
	var doc struct {
		Instances []struct {
			HMAC bool `json:"hmac"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return false, err
	}
	return len(doc.Instances) > 0 && doc.Instances[0].HMAC, nil
}

// foreignReported returns how a daemon's status lists the foreign speaker
// addr ("" if it does not).
func foreignReported(ctx context.Context, sock string, addr netip.Addr) (string, error) {
	b, err := apiGet(ctx, sock, "/status")
	if err != nil {
		return "", err
	}
	var doc struct {
		Instances []struct {
			Name    string                `json:"name"`
			Foreign []vrrp.ForeignSpeaker `json:"foreign_speakers"`
			Drops   map[string]uint64     `json:"drops"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", err
	}
	for _, in := range doc.Instances {
		for _, f := range in.Foreign {
			if f.Addr == addr.String() {
				return fmt.Sprintf("foreign speaker %s priority %d on %s (%d adverts dropped as foreign_speaker, %d as hmac_missing)",
					f.Addr, f.Priority, in.Name, in.Drops[vrrp.DropForeignSpeaker.String()], in.Drops[vrrp.DropMACMissing.String()]), nil
			}
		}
	}
	return "", nil
}
