package drill

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/labctl"
)

// killTarget is a Target whose one node is a real child process (sleep);
// only Status and Signal are implemented.
type killTarget struct {
	Target
	st     labctl.NodeStatus
	signal func(syscall.Signal) error
}

func (k *killTarget) Status(context.Context, string) (labctl.NodeStatus, error) { return k.st, nil }
func (k *killTarget) Signal(_ string, sig syscall.Signal) error                 { return k.signal(sig) }

type servingTarget struct {
	*killTarget
	pid int
}

func (s servingTarget) ServingPID(context.Context, string) (int, error) { return s.pid, nil }

func startTime(t *testing.T, pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+1:])
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sleeper(t *testing.T) (*killTarget, *exec.Cmd) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	t.Cleanup(func() { cmd.Process.Kill() })
	k := &killTarget{st: labctl.NodeStatus{Running: true, Up: true, PID: cmd.Process.Pid, StartTime: startTime(t, cmd.Process.Pid), Role: "owner"}}
	k.signal = func(sig syscall.Signal) error { return syscall.Kill(cmd.Process.Pid, sig) }
	return k, cmd
}

// TestKillOwnerVerifies: kill9 checks that the owner's daemon is gone (by
// PID and start time) and says what did not happen when it is not.
func TestKillOwnerVerifies(t *testing.T) {
	ctx := context.Background()
	k, _ := sleeper(t)
	if _, err := killOwner(ctx, k, "n1", 5*time.Second); err != nil {
		t.Errorf("kill of a live owner: %v", err)
	}

	k, _ = sleeper(t)
	k.signal = func(syscall.Signal) error { return nil } // "delivered", but nothing dies
	_, err := killOwner(ctx, k, "n1", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "owner n1 still alive 300ms after kill -9: pid "+strconv.Itoa(k.st.PID)) {
		t.Errorf("owner survives: %v", err)
	}

	k.signal = func(syscall.Signal) error { return errors.New("netlab: pid 7: no such process") }
	if _, err := killOwner(ctx, k, "n1", time.Second); err == nil || !strings.Contains(err.Error(), "signal not delivered: netlab: pid 7") {
		t.Errorf("signal fails: %v", err)
	}

	k2, _ := sleeper(t)
	if _, err := killOwner(ctx, servingTarget{k2, k2.st.PID + 1}, "n1", time.Second); err == nil ||
		!strings.Contains(err.Error(), "served by pid "+strconv.Itoa(k2.st.PID+1)) {
		t.Errorf("lab record differs from the socket's server: %v", err)
	}
	if syscall.Kill(k2.st.PID, 0) != nil {
		t.Error("the recorded process was killed although it does not serve the owner's socket")
	}

	k.st.Running = false
	if _, err := killOwner(ctx, k, "n1", time.Second); err == nil || !strings.Contains(err.Error(), "no running daemon") {
		t.Errorf("no daemon: %v", err)
	}
}

// TestNoBareFail: a takeover drill without a new owner says what did not
// happen.
func TestNoBareFail(t *testing.T) {
	for _, tc := range []struct {
		status []Mark
		want   string
	}{
		{[]Mark{{At: 0, Node: "n1", Up: true, Role: "owner"}}, "n1's daemon kept answering as if the fault had not hit it"},
		{[]Mark{{At: 10, Node: "n1", Up: false}}, "no other node reported role owner after n1 went down"},
		{[]Mark{{At: 10, Node: "n1", Up: false}, {At: 2_000_000, Node: "n2", Up: true, Role: "owner", Epoch: 4}}, "n2 reported role owner at +2s (epoch 4)"},
	} {
		r := Result{Timeline: Timeline{FaultUS: 5, Status: tc.status}}
		r.judge(phases{expect: expectTakeover, victim: "n1"}, nil, nil)
		if r.Pass || len(r.Reasons) != 1 || !strings.Contains(r.Reasons[0], tc.want) {
			t.Errorf("reasons %q, want one containing %q", r.Reasons, tc.want)
		}
	}
}
