package fencing

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/leasehold/leasehold/script"
)

// DefaultHookTimeout applies to a Hook with no Timeout.
const DefaultHookTimeout = 10 * time.Second

// ErrHookUnsafe: the hook's path is not absolute, or its file could be
// changed by someone else than root or the daemon's user. It is
// script.ErrUnsafe: hooks follow the same rules as check and notify
// scripts.
var ErrHookUnsafe = script.ErrUnsafe

// Hook is a peer-fence program the new owner runs before it claims the VIP
// (STONITH, fencing the old MySQL master, ...).
type Hook struct {
	Path     string        // absolute path of an executable
	Args     []string      // arguments after the program name
	Timeout  time.Duration // whole process group killed after it; 0 = DefaultHookTimeout
	Required bool          // failure stops the takeover; otherwise only logged
	RunAs    string        // user name to run as (daemon must be root); "" = daemon's user
}

// FenceEnv is what a hook is told, as LEASEHOLD_* environment variables.
type FenceEnv struct {
	Group      string     // LEASEHOLD_GROUP
	Epoch      uint64     // LEASEHOLD_EPOCH: the new grant's epoch
	PrevHolder string     // LEASEHOLD_PREV_HOLDER: node name of the last owner, "" if unknown
	PrevAddr   netip.Addr // LEASEHOLD_PREV_ADDR: its address, "" if unknown
}

func (e FenceEnv) environ() []string {
	prev := ""
	if e.PrevAddr.IsValid() {
		prev = e.PrevAddr.String()
	}
	return []string{
		"LEASEHOLD_GROUP=" + e.Group,
		"LEASEHOLD_EPOCH=" + strconv.FormatUint(e.Epoch, 10),
		"LEASEHOLD_PREV_HOLDER=" + e.PrevHolder,
		"LEASEHOLD_PREV_ADDR=" + prev,
	}
}

// CheckHook applies script.Check to h.Path: absolute, a regular
// executable file owned by root or the current user, not writable by
// everyone, in a directory not writable by everyone (symlinks are resolved
// and the final file and its directory are checked), and the RunAs user.
func CheckHook(h Hook) error {
	if err := script.Check(h.Path); err != nil {
		return fmt.Errorf("fencing: hook: %w", err)
	}
	if err := script.CheckUser(h.RunAs); err != nil {
		return fmt.Errorf("fencing: hook %s: %w", h.Path, err)
	}
	return nil
}

// RunHooks runs hooks one after the other with env. A required hook that
// fails (unsafe, cannot start, non-zero exit, timeout) stops the run and
// its error is returned; a best-effort one is logged and the run goes on.
// Each hook runs in its own process group, killed (SIGKILL) as a whole at
// its timeout or when ctx ends.
func RunHooks(ctx context.Context, hooks []Hook, env FenceEnv, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, h := range hooks {
		start := time.Now()
		out, err := runHook(ctx, h, env)
		attrs := []any{"group", env.Group, "epoch", env.Epoch, "hook", h.Path, "took", time.Since(start), "output", string(out)}
		switch {
		case err == nil:
			log.Info("fencing: hook done", attrs...)
		case h.Required:
			log.Error("fencing: required hook failed", append(attrs, "err", err)...)
			return fmt.Errorf("fencing: required hook %s: %w", h.Path, err)
		default:
			log.Warn("fencing: best-effort hook failed", append(attrs, "err", err)...)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fencing: hooks: %w", err)
		}
	}
	return nil
}

func runHook(ctx context.Context, h Hook, env FenceEnv) ([]byte, error) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	r := script.Run(ctx, script.Command{Path: h.Path, Args: h.Args, Env: env.environ(), Timeout: timeout, RunAs: h.RunAs})
	return r.Output, r.Err
}
