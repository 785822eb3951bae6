package keepalived

import (
	"net/netip"
	"strconv"
)

// lvs_sync_daemon: keepalived starts the kernel's IPVS connection-sync
// daemons, master on the node whose instance is MASTER, backup on the
// others. leasehold does the same with the master on the owner of the
// instance's lease, so it needs a quorum: the import (which writes
// backend none) writes the section commented, to uncomment with the
// backend.

// lvsSyncDaemon reads global_defs `lvs_sync_daemon INTERFACE INSTANCE [id
// N] [maxlen N] [port N] [ttl N] [group IP]` into k.lvsSync.
func (k *kaConv) lvsSyncDaemon(s *kaStmt) {
	if s.HasBlock || len(s.Args) < 2 {
		k.errAt(s.Line, s.Key, "want INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP], got %q", s.Words())
		return
	}
	kv := &kaKV{Key: "lvs_sync_daemon", IsMap: true, Line: s.Line, Comment: "global_defs lvs_sync_daemon"}
	if !k.syncIface(s, s.Args[0]) {
		return
	}
	kv.Map = append(kv.Map, &kaKV{Key: "interface", Scalar: yq(s.Args[0]), Line: s.Line},
		&kaKV{Key: "instance", Scalar: yq(s.Args[1]), Line: s.Line})
	limits := map[string][2]int{"id": {0, 255}, "maxlen": {1, 65507}, "port": {1, 65535}, "ttl": {1, 255}}
	seen := map[string]bool{}
	rest := s.Args[2:]
	for i := 0; i < len(rest); i += 2 {
		opt := rest[i]
		if i+1 >= len(rest) {
			k.errAt(s.Line, s.Key, "%s needs a value", opt)
			return
		}
		v := rest[i+1]
		if seen[opt] {
			k.errAt(s.Line, s.Key, "%s given twice", opt)
			return
		}
		seen[opt] = true
		if opt == "group" {
			a, err := netip.ParseAddr(v)
			if err != nil || !a.IsMulticast() {
				k.errAt(s.Line, s.Key, "group %q: want a multicast address", v)
				return
			}
			kv.Map = append(kv.Map, &kaKV{Key: "group", Scalar: yq(a.String()), Line: s.Line})
			continue
		}
		lim, ok := limits[opt]
		if !ok {
			k.errAt(s.Line, s.Key, "unknown option %q: want id, maxlen, port, ttl or group", opt)
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lim[0] || n > lim[1] {
			k.errAt(s.Line, s.Key, "%s %q: want a whole number %d-%d", opt, v, lim[0], lim[1])
			return
		}
		kv.Map = append(kv.Map, &kaKV{Key: opt, Scalar: strconv.Itoa(n), Line: s.Line})
	}
	k.setLVSSync(s, kv, s.Args[1])
}

// lvsSyncInterface reads keepalived's older `lvs_sync_daemon_interface
// INTERFACE` inside a vrrp_instance: the sync daemons on INTERFACE, the
// master following that instance.
func (k *kaConv) lvsSyncInterface(s *kaStmt, instance string) {
	v, ok := k.one(s)
	if !ok || !k.syncIface(s, v) {
		return
	}
	k.setLVSSync(s, &kaKV{Key: "lvs_sync_daemon", IsMap: true, Line: s.Line, Comment: "vrrp_instance " + instance + " lvs_sync_daemon_interface",
		Map: []*kaKV{{Key: "interface", Scalar: yq(v), Line: s.Line}, {Key: "instance", Scalar: yq(instance), Line: s.Line}}}, instance)
}

func (k *kaConv) syncIface(s *kaStmt, name string) bool {
	if name == "" || len(name) > 15 {
		k.errAt(s.Line, s.Key, "interface %q: want an interface name (at most 15 characters)", name)
		return false
	}
	return true
}

// setLVSSync keeps the first sync daemon (the kernel runs one per role).
func (k *kaConv) setLVSSync(s *kaStmt, kv *kaKV, instance string) {
	if k.lvsSync != nil {
		k.warnAt(s.Line, s.Key, "a second IPVS sync daemon (the first at line %d): not converted, the kernel runs one master and one backup", k.line(k.lvsSync.Line))
		return
	}
	k.lvsSync, k.lvsSyncInstance = kv, instance
}

// emitLVSSync writes the sync daemon, commented (it needs a lease).
func (k *kaConv) emitLVSSync(y *kaYAML) {
	kv := k.lvsSync
	if kv == nil {
		return
	}
	switch {
	case len(k.lvsItems) == 0:
		k.warnAt(kv.Line, "lvs_sync_daemon", "no virtual_server: lvs_sync_daemon not written (it syncs the connections of leasehold's IPVS virtual servers)")
		return
	case k.instByName[k.lvsSyncInstance] == nil:
		k.warnAt(kv.Line, "lvs_sync_daemon", "no vrrp_instance %s: lvs_sync_daemon not written (its master follows that instance)", k.lvsSyncInstance)
		return
	}
	y.add(0, "")
	y.add(kv.Line, "# IPVS connection sync: the kernel's sync master on the owner of %s's lease,", printable(k.lvsSyncInstance))
	y.add(kv.Line, "# backup on the other directors. It needs a quorum: uncomment it with")
	y.add(kv.Line, "# quorum backend etcd or raft.")
	k.emitKV(y, "", kv, true)
	k.warnAt(kv.Line, "lvs_sync_daemon", "written commented: leasehold's sync master follows %s's lease, so it needs quorum backend etcd or raft; uncomment it with the backend", k.lvsSyncInstance)
}
