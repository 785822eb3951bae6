package netlab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Attach rebuilds the Lab recorded in stateFile by an earlier process (a
// lab that outlives the program that brought it up), so another program
// can run checkers, inject faults and start processes in it. Processes it
// starts are recorded in the same state file; Down (or Cleanup) removes
// everything, whoever started it.
func Attach(stateFile string) (*Lab, error) {
	st, err := ReadState(stateFile)
	if err != nil {
		return nil, err
	}
	if !validID(st.ID) {
		return nil, fmt.Errorf("%w: %s", ErrNotLab, stateFile)
	}
	if st.Layout == nil {
		return nil, fmt.Errorf("%w: %s records no layout (written by an older netlab)", ErrNotLab, stateFile)
	}
	opts := Options{Hosts: st.Layout.Hosts, Client: st.Layout.Client, StateFile: stateFile}
	if opts.Subnet4, err = netip.ParsePrefix(st.Layout.Subnet4); err != nil {
		return nil, fmt.Errorf("%w: %s: subnet4: %v", ErrNotLab, stateFile, err)
	}
	if opts.Subnet6, err = netip.ParsePrefix(st.Layout.Subnet6); err != nil {
		return nil, fmt.Errorf("%w: %s: subnet6: %v", ErrNotLab, stateFile, err)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := plan(st.ID, opts)
	for _, h := range append([]*Host{l.sw}, l.hosts...) {
		if _, err := os.Stat(nsPath(h.NS)); err != nil {
			return nil, fmt.Errorf("%w: namespace %s: %v", ErrNotUp, h.NS, err)
		}
		h.nsPath = nsPath(h.NS)
	}
	l.state.st = st
	l.up = true
	return l, nil
}

// Alive reports whether the recorded process still runs (same PID and
// start time; a zombie counts as exited).
func (r ProcRecord) Alive() bool { return r.alive() && !isZombieNotOurs(r.PID) }

// Procs returns the processes recorded in the lab's state file.
func (l *Lab) Procs() []ProcRecord {
	l.state.mu.Lock()
	defer l.state.mu.Unlock()
	return append([]ProcRecord(nil), l.state.st.Procs...)
}

// Forget removes r from the state file (after the caller killed it).
func (l *Lab) Forget(r ProcRecord) error {
	return l.state.update(func(st *State) {
		for i, x := range st.Procs {
			if x == r {
				st.Procs = append(st.Procs[:i], st.Procs[i+1:]...)
				return
			}
		}
	})
}

// StartDetached starts name in the host's namespace as a process that
// outlives the caller: its own session, no Pdeathsig, stdin from
// /dev/null, stdout and stderr appended to logPath. It is recorded in the
// state file, so Down and Cleanup kill it by PID. While the caller runs it
// reaps the process when it exits (and drops the record); after the caller
// exits, init does.
func (h *Host) StartDetached(logPath, name string, args ...string) (ProcRecord, error) {
	if !h.lab.isUp() {
		return ProcRecord{}, ErrNotUp
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return ProcRecord{}, fmt.Errorf("netlab: %s: log: %w", h.Name, err)
	}
	defer logf.Close()
	argv := append([]string{"netns", "exec", h.NS, name}, args...)
	cmd := exec.Command("ip", argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return ProcRecord{}, fmt.Errorf("netlab: %s: start %s: %w", h.Name, name, err)
	}
	rec := recordOf(cmd.Process.Pid, h.Name, name)
	if err := h.lab.state.update(func(st *State) { st.Procs = append(st.Procs, rec) }); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return ProcRecord{}, err
	}
	for i := 0; i < 2000 && !inNetns(rec.PID, h.nsPath); i++ {
		if procExited(rec.PID) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	go func() {
		cmd.Wait()
		h.lab.Forget(rec)
	}()
	return rec, nil
}

// Signal sends sig to the recorded process if it still runs.
func (r ProcRecord) Signal(sig syscall.Signal) error {
	if !r.alive() {
		return fmt.Errorf("netlab: pid %d: %w", r.PID, syscall.ESRCH)
	}
	if err := syscall.Kill(r.PID, sig); err != nil {
		return fmt.Errorf("netlab: kill -%d %d: %w", sig, r.PID, err)
	}
	return nil
}
