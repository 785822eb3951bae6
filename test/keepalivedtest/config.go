package keepalivedtest

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrBadConfig is returned for a Config that keepalived would reject or
// that cannot be rendered safely.
var ErrBadConfig = errors.New("keepalivedtest: bad config")

// Config is a keepalived configuration: either Raw text used verbatim, or
// a rendering of RouterID, GarpMasterDelay and Instances.
type Config struct {
	// Raw, when set, is the whole keepalived.conf; the other fields are
	// ignored.
	Raw string
	// RouterID is global_defs' router_id (default: the host's name).
	RouterID string
	// GarpMasterDelay is vrrp_garp_master_delay, whole seconds (0: keepalived's
	// default, 5 s).
	GarpMasterDelay time.Duration
	// Instances are the vrrp_instance blocks.
	Instances []Instance
}

// Instance is one vrrp_instance.
type Instance struct {
	Name      string // [A-Za-z0-9_-]+
	State     string // "MASTER" or "BACKUP"
	Interface string
	VRID      uint8 // 1-255
	Priority  uint8 // 1-255
	// AdvertInt is advert_int: whole seconds for VRRPv2, a multiple of 10 ms
	// for VRRPv3 (default 1 s).
	AdvertInt time.Duration
	// Version is 2 or 3 (default 2).
	Version int
	// AuthPass enables PASS authentication (VRRPv2 only); keepalived uses
	// the first 8 bytes.
	AuthPass string
	// VIPs go in virtual_ipaddress, with their prefix length, on Interface.
	VIPs []netip.Prefix
	// UnicastSrc and UnicastPeers switch the instance to unicast.
	UnicastSrc   netip.Addr
	UnicastPeers []netip.Addr
	NoPreempt    bool
	// Notify scripts (absolute paths, root-owned, not group/world writable).
	NotifyMaster, NotifyBackup, NotifyFault, NotifyStop, Notify string
	// Extra lines added verbatim inside the block (e.g. "garp_master_repeat 1").
	Extra []string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// safe rejects text that could break out of a keepalived.conf token.
func safe(s string) bool { return s != "" && !strings.ContainsAny(s, " \t\n\r{}\"#!") }

// Validate checks the instances (Raw configs are keepalived's business).
func (c Config) Validate() error {
	if c.Raw != "" {
		return nil
	}
	if len(c.Instances) == 0 {
		return fmt.Errorf("%w: no instances", ErrBadConfig)
	}
	if c.RouterID != "" && !safe(c.RouterID) {
		return fmt.Errorf("%w: router_id %q", ErrBadConfig, c.RouterID)
	}
	if c.GarpMasterDelay%time.Second != 0 || c.GarpMasterDelay < 0 {
		return fmt.Errorf("%w: garp master delay %s is not whole seconds", ErrBadConfig, c.GarpMasterDelay)
	}
	names := map[string]bool{}
	for _, in := range c.Instances {
		if err := in.validate(); err != nil {
			return fmt.Errorf("%w: instance %q: %w", ErrBadConfig, in.Name, err)
		}
		if names[in.Name] {
			return fmt.Errorf("%w: duplicate instance %q", ErrBadConfig, in.Name)
		}
		names[in.Name] = true
	}
	return nil
}

func (in Instance) validate() error {
	if !nameRE.MatchString(in.Name) {
		return errors.New("name")
	}
	if in.State != "MASTER" && in.State != "BACKUP" {
		return fmt.Errorf("state %q", in.State)
	}
	if !safe(in.Interface) {
		return fmt.Errorf("interface %q", in.Interface)
	}
	if in.VRID == 0 || in.Priority == 0 {
		return errors.New("vrid and priority must be 1-255")
	}
	v := in.version()
	if v != 2 && v != 3 {
		return fmt.Errorf("version %d", in.Version)
	}
	adv := in.advertInt()
	switch {
	case v == 2 && (adv%time.Second != 0 || adv > 255*time.Second):
		return fmt.Errorf("VRRPv2 advert_int %s must be whole seconds, ≤ 255 s", adv)
	case v == 3 && (adv%(10*time.Millisecond) != 0 || adv > 40950*time.Millisecond):
		return fmt.Errorf("VRRPv3 advert_int %s must be centiseconds, ≤ 40.95 s", adv)
	}
	if in.AuthPass != "" && (v == 3 || !safe(in.AuthPass)) {
		return errors.New("auth_pass needs VRRPv2 and no blanks")
	}
	if len(in.VIPs) == 0 {
		return errors.New("no VIPs")
	}
	for _, p := range in.VIPs {
		if !p.IsValid() {
			return errors.New("invalid VIP")
		}
	}
	if len(in.UnicastPeers) > 0 && !in.UnicastSrc.IsValid() {
		return errors.New("unicast peers without unicast_src_ip")
	}
	for _, s := range []string{in.NotifyMaster, in.NotifyBackup, in.NotifyFault, in.NotifyStop, in.Notify} {
		if s != "" && (!strings.HasPrefix(s, "/") || !safe(s)) {
			return fmt.Errorf("notify script %q must be an absolute path without blanks", s)
		}
	}
	for _, x := range in.Extra {
		if strings.ContainsAny(x, "{}\n") {
			return fmt.Errorf("extra line %q", x)
		}
	}
	return nil
}

func (in Instance) version() int {
	if in.Version == 0 {
		return 2
	}
	return in.Version
}

func (in Instance) advertInt() time.Duration {
	if in.AdvertInt == 0 {
		return time.Second
	}
	return in.AdvertInt
}

// Render returns the keepalived.conf text (Raw verbatim if set).
// defaultRouterID is used when RouterID is empty.
func (c Config) Render(defaultRouterID string) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	if c.Raw != "" {
		return c.Raw, nil
	}
	rid := c.RouterID
	if rid == "" {
		rid = defaultRouterID
	}
	var b strings.Builder
	b.WriteString("# written by keepalivedtest\nglobal_defs {\n")
	if rid != "" && safe(rid) {
		fmt.Fprintf(&b, "\trouter_id %s\n", rid)
	}
	b.WriteString("\tscript_user root\n\tenable_script_security\n")
	if c.GarpMasterDelay > 0 {
		fmt.Fprintf(&b, "\tvrrp_garp_master_delay %d\n", c.GarpMasterDelay/time.Second)
	}
	b.WriteString("}\n")
	for _, in := range c.Instances {
		fmt.Fprintf(&b, "\nvrrp_instance %s {\n", in.Name)
		fmt.Fprintf(&b, "\tstate %s\n\tinterface %s\n\tvirtual_router_id %d\n\tpriority %d\n",
			in.State, in.Interface, in.VRID, in.Priority)
		fmt.Fprintf(&b, "\tversion %d\n\tadvert_int %s\n", in.version(), seconds(in.advertInt()))
		if in.NoPreempt {
			b.WriteString("\tnopreempt\n")
		}
		if in.AuthPass != "" {
			fmt.Fprintf(&b, "\tauthentication {\n\t\tauth_type PASS\n\t\tauth_pass %s\n\t}\n", in.AuthPass)
		}
		if in.UnicastSrc.IsValid() {
			fmt.Fprintf(&b, "\tunicast_src_ip %s\n", in.UnicastSrc)
		}
		if len(in.UnicastPeers) > 0 {
			b.WriteString("\tunicast_peer {\n")
			for _, p := range in.UnicastPeers {
				fmt.Fprintf(&b, "\t\t%s\n", p)
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("\tvirtual_ipaddress {\n")
		for _, p := range in.VIPs {
			fmt.Fprintf(&b, "\t\t%s dev %s\n", p, in.Interface)
		}
		b.WriteString("\t}\n")
		for _, kv := range [][2]string{
			{"notify_master", in.NotifyMaster}, {"notify_backup", in.NotifyBackup},
			{"notify_fault", in.NotifyFault}, {"notify_stop", in.NotifyStop}, {"notify", in.Notify},
		} {
			if kv[1] != "" {
				fmt.Fprintf(&b, "\t%s %s\n", kv[0], kv[1])
			}
		}
		for _, x := range in.Extra {
			fmt.Fprintf(&b, "\t%s\n", x)
		}
		b.WriteString("}\n")
	}
	return b.String(), nil
}

// seconds formats d as keepalived's decimal seconds ("1", "0.1").
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
