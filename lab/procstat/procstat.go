// Package procstat reads a process's /proc/PID/stat: the fields the lab,
// the VM guest agent and the tests identify and measure processes by
// (state, parent, CPU times, start time).
//
// The command name (field 2) is in parentheses and may itself hold spaces
// and parentheses, so the fields are counted after the last ')'. A line
// with fewer fields than Parse needs is an error, never a guess.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is what Parse reads of one /proc/PID/stat line.
type Stat struct {
	// State is field 3: R, S, D, T, t, Z, X, ...
	State byte
	// PPID is field 4.
	PPID int
	// UTime and STime are fields 14 and 15, in clock ticks (USER_HZ).
	UTime, STime uint64
	// StartTime is field 22: the process's start after boot, in clock
	// ticks; with the PID it names one process (a PID is reused, the pair
	// is not).
	StartTime uint64
}

// Exited reports a zombie or dead process (it holds no resources but its
// PID until reaped).
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' }

// Parse reads a /proc/PID/stat line.
func Parse(line string) (Stat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("procstat: %.60q: no ')' after the command name", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3; field 22 is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("procstat: %d fields after the command name, want at least 20", len(f))
	}
	var s Stat
	s.State = f[0][0]
	var err error
	num := func(i int, what string) uint64 {
		v, e := strconv.ParseUint(f[i], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("procstat: %s %q: %w", what, f[i], e)
		}
		return v
	}
	s.PPID = int(num(1, "ppid"))
	s.UTime, s.STime = num(11, "utime"), num(12, "stime")
	s.StartTime = num(19, "start time")
	return s, err
}

// Read parses /proc/PID/stat.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return Parse(string(b))
}
