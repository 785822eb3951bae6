package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/vrrp"
)

// statusDoc is the JSON of GET /status.
type statusDoc struct {
	Node        string             `json:"node"`
	Quorum      string             `json:"quorum"`
	Session     string             `json:"session,omitempty"`
	Fence       string             `json:"fence,omitempty"`
	Warning     string             `json:"warning,omitempty"`
	Groups      []node.GroupStatus `json:"groups,omitempty"`
	Instances   []vrrp.Status      `json:"instances"`
	SocketDrops map[string]uint64  `json:"socket_drops,omitempty"`
}

const noQuorumWarning = "quorum none: plain VRRP, NO split-brain protection"

func (d *daemon) statusDoc() statusDoc {
	doc := statusDoc{Node: d.cfg.Node.Name, Quorum: d.cfg.Quorum.Backend, SocketDrops: map[string]uint64{}}
	if d.cfg.Quorum.Backend == config.BackendNone {
		doc.Warning = noQuorumWarning
	} else {
		var sess quorum.Session
		if d.super != nil {
			sess = d.super.Session()
		}
		doc.Quorum = describeQuorum(d.cfg, sess)
		doc.Fence = d.fenceDesc
		if _, ok := d.fence.(fencing.LifetimeOnly); ok {
			doc.Warning = "nftables fence not in use: " + d.fenceDesc
		}
	}
	for _, g := range d.groups {
		doc.Groups = append(doc.Groups, g.Status())
	}
	for _, in := range d.insts {
		doc.Instances = append(doc.Instances, in.Status())
	}
	for _, m := range d.muxes {
		for k, v := range m.Drops().Snapshot() {
			doc.SocketDrops[k] += v
		}
	}
	return doc
}

// listen opens the status listener: "unix:/path" or a loopback host:port.
func listen(spec string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(spec, "unix:"); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		return l, os.Chmod(path, 0o660)
	}
	return net.Listen("tcp", spec)
}

// serveStatus serves the status API until the returned stop is called.
func (d *daemon) serveStatus(ctx context.Context) (func(), error) {
	l, err := listen(d.cfg.Status.Listen)
	if err != nil {
		return nil, fmt.Errorf("status listener %s: %w", d.cfg.Status.Listen, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(d.statusDoc())
	})
	mux.Handle("GET /metrics", d.metrics.handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	d.log.Info("status API listening", "addr", d.cfg.Status.Listen)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}

// statusClient returns an HTTP client for spec ("unix:/path" or host:port).
func statusClient(spec string) (*http.Client, string) {
	if path, ok := strings.CutPrefix(spec, "unix:"); ok {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		}}, "http://leasehold"
	}
	return &http.Client{Timeout: 5 * time.Second}, "http://" + spec
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("socket", config.DefaultStatusListen, "status API: unix:/path or 127.0.0.1:port")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, base := statusClient(*sock)
	resp, err := c.Get(base + "/status")
	if err != nil {
		fmt.Fprintf(stderr, "leasehold status: %v (is the daemon running? --socket)\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if *asJSON {
		stdout.Write(body)
		return 0
	}
	var doc statusDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		fmt.Fprintf(stderr, "leasehold status: bad answer: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "node %s, quorum %s\n", doc.Node, doc.Quorum)
	if doc.Fence != "" {
		fmt.Fprintf(stdout, "fence: %s\n", doc.Fence)
	}
	if doc.Warning != "" {
		fmt.Fprintf(stdout, "WARNING: %s\n", doc.Warning)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if len(doc.Groups) > 0 {
		fmt.Fprintln(tw, "GROUP\tROLE\tSTAGE\tPRIO\tEPOCH\tHOLDER\tDEADLINE IN\tFENCE\tFENCE LEFT\tSINCE\tLAST ERROR")
		for _, g := range doc.Groups {
			lastErr := g.LastError
			if g.ReleasePending != 0 {
				lastErr = fmt.Sprintf("release of epoch %d pending (retrying); %s", g.ReleasePending, lastErr)
			}
			holder := "free"
			if g.Holder != "" {
				holder = fmt.Sprintf("%s@%d", g.Holder, g.HolderEpoch)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%v\t%s\t%s\t%s\n", g.Group, g.Role, g.Stage, g.Priority, g.Epoch, holder,
				g.DeadlineLeft, g.FenceArmed, g.FenceLeft, g.Since.Format(time.TimeOnly), lastErr)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "INSTANCE\tIFACE\tVRID\tSTATE\tPRIO\tMASTER\tSINCE\tSENT\tRECV\tDROPS")
	for _, s := range doc.Instances {
		var drops []string
		for k, v := range s.Drops {
			if v > 0 {
				drops = append(drops, fmt.Sprintf("%s=%d", k, v))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%d\t%d\t%s\n", s.Name, s.Iface, s.VRID, s.State, s.Priority,
			s.Master, s.Since.Format(time.TimeOnly), s.AdvertsSent, s.AdvertsRecv, strings.Join(drops, ","))
	}
	tw.Flush()
	return 0
}
