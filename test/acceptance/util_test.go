package acceptance

import (
	"errors"
	"net/netip"
)

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
