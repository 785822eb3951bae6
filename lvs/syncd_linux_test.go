package lvs

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink/nl"
)

// DEL_DAEMON carries the state alone, nested as the kernel parses it
// (nla_parse_nested): IPVS_CMD_ATTR_DAEMON { IPVS_DAEMON_ATTR_STATE u32 }.
func TestDaemonAttrBytes(t *testing.T) {
	got := daemonAttr(SyncBackup, nil).Serialize()
	want := []byte{
		12, 0, 3, 0x80, // len 12, IPVS_CMD_ATTR_DAEMON | NLA_F_NESTED
		8, 0, 1, 0, 2, 0, 0, 0, // IPVS_DAEMON_ATTR_STATE = IP_VS_STATE_BACKUP
	}
	if !bytes.Equal(got, want) {
		t.Errorf("DEL_DAEMON attribute % x, want % x", got, want)
	}
	got = daemonAttr(SyncMaster, &SyncConfig{Interface: "eth1", SyncID: 7}).Serialize()
	want = []byte{
		32, 0, 3, 0x80,
		8, 0, 1, 0, 1, 0, 0, 0, // state master
		9, 0, 2, 0, 'e', 't', 'h', '1', 0, 0, 0, 0, // "eth1\0", padded
		8, 0, 3, 0, 7, 0, 0, 0, // sync id
	}
	if !bytes.Equal(got, want) {
		t.Errorf("NEW_DAEMON attribute % x, want % x", got, want)
	}
}

// A GET_DAEMON answer (generic netlink header, then the daemon) parses
// back to what was asked for.
func TestParseDaemon(t *testing.T) {
	c := SyncConfig{Interface: "eth1", SyncID: 5, MaxLen: 1400, McastAddr: netip.MustParseAddr("224.0.0.81"), McastPort: 8848, McastTTL: 1}
	msg := append((&nl.Genlmsg{Command: ipvsCmdNewDaemon, Version: ipvsGenlVersion}).Serialize(), daemonAttr(SyncBackup, &c).Serialize()...)
	d, err := parseDaemon(msg)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != SyncBackup || d.SyncConfig != c {
		t.Errorf("parsed %+v, want backup %+v", d, c)
	}
	if _, err := parseDaemon(msg[:nl.SizeofGenlmsg]); err == nil {
		t.Error("an answer without a daemon parsed")
	}
}
