package netlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/procstat"
)

// State is what a lab records about itself in its state file: enough for
// Cleanup to remove everything it created after a crash, and nothing else.
type State struct {
	ID         string       `json:"id"`
	Owner      ProcRecord   `json:"owner"`
	Namespaces []string     `json:"namespaces"`
	Procs      []ProcRecord `json:"procs"`
	// Layout is how the lab was planned, so Attach can rebuild it.
	Layout *Layout `json:"layout,omitempty"`
}

// Layout is the part of Options a lab records in its state file.
type Layout struct {
	Hosts   []string `json:"hosts"`
	Client  bool     `json:"client"`
	Subnet4 string   `json:"subnet4"`
	Subnet6 string   `json:"subnet6"`
}

// ProcRecord identifies a process by PID and kernel start time (clock ticks
// since boot, /proc/PID/stat field 22), so a recycled PID is never mistaken
// for it.
type ProcRecord struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	Host      string `json:"host,omitempty"`
	Argv0     string `json:"argv0,omitempty"`
}

// stateFile persists State atomically (write to a temporary file, rename).
type stateFile struct {
	mu      sync.Mutex
	path    string
	st      State
	closed  bool // the lab is being torn down: the file is no longer written
	written bool // the file was written once: its absence means a teardown
}

func (f *stateFile) update(fn func(*State)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
	if f.closed {
		return nil
	}
	if f.written {
		// Another view of the lab (an attached Lab in the same process)
		// may have torn it down: never bring the file back.
		if _, err := os.Stat(f.path); errors.Is(err, fs.ErrNotExist) {
			f.closed = true
			return nil
		}
	}
	if err := writeState(f.path, f.st); err != nil {
		return err
	}
	f.written = true
	return nil
}

// close stops writing the file: a process of the lab that exits while the
// lab is torn down must not write it again after Cleanup removed it (the
// directory would be left with a state file of an empty lab).
func (f *stateFile) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

func writeState(path string, st State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("netlab: state dir: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("netlab: encode state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("netlab: write state %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("netlab: write state %s: %w", path, err)
	}
	return nil
}

// ReadState reads a lab's state file.
func ReadState(path string) (State, error) {
	var st State
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("netlab: read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("netlab: parse state %s: %w", path, err)
	}
	return st, nil
}

func recordOf(pid int, host, argv0 string) ProcRecord {
	st, _ := procstat.Read(pid)
	return ProcRecord{PID: pid, StartTime: st.StartTime, Host: host, Argv0: argv0}
}

// alive reports whether the process recorded in r still runs (same PID,
// same start time).
func (r ProcRecord) alive() bool {
	if r.PID <= 0 {
		return false
	}
	st, err := procstat.Read(r.PID)
	if err != nil {
		return false
	}
	// An unknown recorded start time cannot rule the process out.
	return r.StartTime == 0 || st.StartTime == r.StartTime
}

// ErrNotLab is returned by Cleanup for a file that is not a lab state file.
var ErrNotLab = errors.New("netlab: not a lab state file")

// Cleanup removes everything the lab described by stateFile created:
// processes it started (by PID, when the start time still matches), any
// process left inside its namespaces, then the namespaces, then the state
// file. It is what Down does, usable from another process after a crash.
// Missing items are not errors.
func Cleanup(stateFile string) error {
	st, err := ReadState(stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.ID == "" || !validID(st.ID) {
		return fmt.Errorf("%w: %s", ErrNotLab, stateFile)
	}
	for _, ns := range st.Namespaces {
		if !strings.HasPrefix(ns, st.ID+"-") {
			return fmt.Errorf("%w: namespace %q lacks prefix %q", ErrNotLab, ns, st.ID)
		}
	}
	errs := teardown(st)
	if err := os.Remove(stateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	os.Remove(stateFile + ".tmp")
	return errors.Join(errs...)
}

// CleanupStale runs Cleanup on every state file in dir whose owning process
// is gone (crashed tests). Labs whose owner still runs are left alone.
// It returns the state files it cleaned.
func CleanupStale(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var cleaned []string
	var errs []error
	for _, m := range matches {
		st, err := ReadState(m)
		if err != nil || !validID(st.ID) {
			continue
		}
		if st.Owner.alive() {
			continue
		}
		if err := Cleanup(m); err != nil {
			errs = append(errs, err)
			continue
		}
		cleaned = append(cleaned, m)
	}
	return cleaned, errors.Join(errs...)
}

// teardown kills the lab's processes and deletes its namespaces.
func teardown(st State) []error {
	var errs []error
	self := os.Getpid()
	victims := map[int]bool{}
	for _, p := range st.Procs {
		if p.PID != self && p.StartTime != 0 && p.alive() {
			victims[p.PID] = true
		}
	}
	for _, ns := range st.Namespaces {
		pids, err := pidsInNetns(nsPath(ns))
		if err != nil {
			continue
		}
		for _, pid := range pids {
			if pid != self {
				victims[pid] = true
			}
		}
	}
	// Stop first so no parent reacts to its children's death (keepalived
	// respawns its VRRP child), then kill.
	for pid := range victims {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	for pid := range victims {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for pid := range victims {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			if isZombieNotOurs(pid) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, ns := range st.Namespaces {
		if err := deleteNetns(ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// isZombieNotOurs reports whether pid is a zombie (dead, waiting to be
// reaped by its parent): it no longer holds any namespace.
func isZombieNotOurs(pid int) bool {
	st, err := procstat.Read(pid)
	return err != nil || st.Exited()
}

// procExited reports whether pid is gone or a zombie.
func procExited(pid int) bool { return isZombieNotOurs(pid) }

// pidsInNetns lists the processes whose network namespace is the one
// mounted at path (like `ip netns pids`).
func pidsInNetns(path string) ([]int, error) {
	var want syscall.Stat_t
	if err := syscall.Stat(path, &want); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/net", &st) != nil {
			continue
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// inNetns reports whether pid's network namespace is the one at path.
func inNetns(pid int, path string) bool {
	var want, got syscall.Stat_t
	if syscall.Stat(path, &want) != nil {
		return false
	}
	if syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &got) != nil {
		return false
	}
	return want.Dev == got.Dev && want.Ino == got.Ino
}
