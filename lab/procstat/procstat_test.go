package procstat

import (
	"os"
	"strings"
	"testing"
)

// Fields are counted after the last ')': a command name with spaces and
// parentheses does not shift them.
func TestParse(t *testing.T) {
	rest := " S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 98765 1000 200 18446744073709551615"
	for _, comm := range []string{"(sh)", "(a b)", "(x) (y))", "()"} {
		s, err := Parse("123 " + comm + rest)
		if err != nil || s.State != 'S' || s.PPID != 1 || s.UTime != 7 || s.STime != 3 || s.StartTime != 98765 || s.Exited() {
			t.Errorf("%s: %+v %v", comm, s, err)
		}
	}
	for _, bad := range []string{"", "123 sh S 1", "123 (sh) S 1 2 3", "123 (sh) S x" + strings.Repeat(" 0", 20), "123 (sh) SS" + rest[2:]} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
	if s, err := Parse("9 (z) Z" + rest[2:]); err != nil || !s.Exited() {
		t.Errorf("zombie: %+v %v", s, err)
	}
}

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil || s.PPID != os.Getppid() || s.StartTime == 0 || s.Exited() {
		t.Fatalf("%+v %v", s, err)
	}
}
