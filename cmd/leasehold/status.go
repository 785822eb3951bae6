package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/daemon/statusapi"
	"github.com/leasehold/leasehold/lvs"
)

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "[--socket PATH] [--json]", "prints the running daemon's groups and instances\n")
	sock := fs.String("socket", strings.TrimPrefix(config.DefaultStatusListen, "unix:"),
		"the daemon's status.listen: a socket path (unix:PATH also works) or 127.0.0.1:PORT")
	asJSON := fs.Bool("json", false, "print JSON")
	if pos, rc, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return rc
	} else if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	c := statusapi.NewClient(statusSpec(*sock))
	defer c.CloseIdleConnections()
	body, err := c.Get(context.Background(), "/status")
	if err != nil {
		fmt.Fprintf(stderr, "leasehold status: %v (is the daemon running? --socket)\n", err)
		return 1
	}
	if *asJSON {
		stdout.Write(body)
		return 0
	}
	var doc daemon.StatusDoc
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
	writeMembership(stdout, doc)
	writeDRBD(stdout, doc)
	writeMySQL(stdout, doc)
	writeLVS(stdout, doc.LVS)
	writeLVSSync(stdout, doc.LVSSync)
	return 0
}

// writeLVSSync prints the connection-sync daemons' role (lvs_sync_daemon
// configured).
func writeLVSSync(w io.Writer, st *lvs.SyncStatus) {
	if st == nil {
		return
	}
	fmt.Fprintf(w, "\nLVS sync daemon on %s (syncid %d, following %s): %s, %d changes", st.Interface, st.SyncID, st.Group, st.State, st.Changes)
	if st.LastError != "" {
		fmt.Fprintf(w, ", last error: %s", st.LastError)
	}
	fmt.Fprintln(w)
}

// writeLVS prints the virtual servers and their real servers with check
// state and weight (virtual_server configured).
func writeLVS(w io.Writer, st *lvs.Status) {
	if st == nil {
		return
	}
	fmt.Fprintf(w, "\nLVS (lvs_mode %s): %d table changes, %d failed passes", st.Mode, st.Ops, st.ReconcileErrors)
	if st.LastError != "" {
		fmt.Fprintf(w, ", last error: %s", st.LastError)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VIRTUAL SERVER\tREAL SERVER\tSTATE\tWEIGHT\tIN TABLE\tCHECKS\tUPS/DOWNS\tLAST ERROR")
	for _, vs := range st.VirtualServers {
		active := "inactive"
		if vs.Active {
			active = "active"
		}
		quorum := "quorum up"
		if !vs.QuorumUp {
			quorum = "QUORUM DOWN"
		}
		// The virtual server's row: its state, its live weight, its quorum.
		fmt.Fprintf(tw, "%s\t\t%s\t%d\t\t%s\t\t\n", vs.Name, active, vs.LiveWeight, quorum)
		for _, r := range vs.RealServers {
			state := "down"
			if r.Alive {
				state = "up"
			}
			if r.Sorry {
				state = "sorry server"
			}
			table := "-"
			if r.TableWeight >= 0 {
				table = fmt.Sprint(r.TableWeight)
			}
			var checks, lastErr []string
			for _, c := range r.Checks {
				up := "up"
				if !c.Up {
					up = "down"
				}
				checks = append(checks, fmt.Sprintf("%s %s %d/%d", c.Kind, up, c.OK, c.Failed))
				if c.LastError != "" {
					lastErr = append(lastErr, c.LastError)
				}
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%d\t%s\t%s\t%d/%d\t%s\n", r.Addr, state, r.Weight, table, strings.Join(checks, ", "),
				r.Ups, r.Downs, strings.Join(lastErr, "; "))
		}
	}
	tw.Flush()
}

// writeMySQL prints the groups' MySQL servers: writable or read-only, the
// last health check, connections killed, and the last refused promotion.
func writeMySQL(w io.Writer, doc daemon.StatusDoc) {
	if len(doc.MySQL) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nMYSQL\tGROUP\tMODE\tHEALTH\tKILLED\tREFUSED\tLAST REFUSAL / CHECK")
	for _, m := range doc.MySQL {
		mode := "read-only"
		if m.Writable != 0 {
			mode = fmt.Sprintf("writable (epoch %d)", m.Writable)
		}
		health := "failing"
		if m.Healthy {
			health = "ok"
		}
		note := m.LastRefusal
		if note == "" || !m.Healthy {
			note = m.LastCheck
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", m.Server, m.Group, mode, health, m.Killed, m.Refusals, note)
	}
	tw.Flush()
}

// writeDRBD prints the groups' DRBD resources: roles, connection, disks,
// and the last refused promotion with its reason.
func writeDRBD(w io.Writer, doc daemon.StatusDoc) {
	if len(doc.DRBD) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nDRBD\tGROUP\tROLE\tCSTATE\tDISK\tREFUSED\tLAST REFUSAL / ERROR")
	for _, d := range doc.DRBD {
		role, disk := d.Role+"/"+d.PeerRole, d.Disk+"/"+d.PeerDisk
		if d.Role == "" {
			role, disk = "-", "-"
		}
		if d.SyncPercent > 0 {
			disk += fmt.Sprintf(" (%.1f%%)", d.SyncPercent)
		}
		note := d.LastRefusal
		if d.Error != "" {
			note = d.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Resource, d.Group, role, d.CState, disk, d.Refusals, note)
	}
	tw.Flush()
}

// statusSpec turns --socket into a status client's address: a path (it
// has a slash, or no colon) is a unix socket; unix:PATH and HOST:PORT
// stay as they are.
func statusSpec(s string) string {
	if strings.HasPrefix(s, "unix:") || (!strings.Contains(s, "/") && strings.Contains(s, ":")) {
		return s
	}
	return "unix:" + s
}

// writeMembership prints each instance's members and the foreign speakers
// it heard (lease mode).
func writeMembership(w io.Writer, doc daemon.StatusDoc) {
	for _, s := range doc.Instances {
		ms, ok := doc.Members[s.Name]
		if !ok && len(s.Foreign) == 0 {
			continue
		}
		var list []string
		for _, m := range ms {
			e := m.Addr + " (" + m.Source
			if m.Node != "" {
				e += " " + m.Node
			}
			list = append(list, e+")")
		}
		auth := ""
		if s.HMAC {
			auth = ", adverts authenticated (HMAC)"
		}
		fmt.Fprintf(w, "%s members: %s%s\n", s.Name, strings.Join(list, ", "), auth)
		for _, f := range s.Foreign {
			fmt.Fprintf(w, "%s FOREIGN SPEAKER %s priority %d: %d adverts dropped, last %s ago\n", s.Name, f.Addr, f.Priority,
				f.Adverts, time.Since(f.LastSeen).Round(time.Second))
		}
	}
}
