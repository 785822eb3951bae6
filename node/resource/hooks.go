package resource

import (
	"context"
	"log/slog"

	"github.com/leasehold/leasehold/fencing"
)

// Hooks is the promote and demote scripts of a group as a Resource: each
// runs with LEASEHOLD_GROUP and LEASEHOLD_EPOCH (fencing.RunHooks), in
// order; a required hook that fails fails the call.
type Hooks struct {
	Group             string
	Promotes, Demotes []fencing.Hook
	Log               *slog.Logger
	// Failed, if set, counts a failed run ("promote" or "demote").
	Failed func(kind string)
}

// Name implements Resource.
func (h Hooks) Name() string { return "hooks" }

// Promote runs the promote hooks.
func (h Hooks) Promote(ctx context.Context, epoch uint64) error {
	return h.count("promote", fencing.RunHooks(ctx, h.Promotes, fencing.FenceEnv{Group: h.Group, Epoch: epoch}, h.Log))
}

// Demote runs the demote hooks.
func (h Hooks) Demote(ctx context.Context, epoch uint64) error {
	return h.count("demote", fencing.RunHooks(ctx, h.Demotes, fencing.FenceEnv{Group: h.Group, Epoch: epoch}, h.Log))
}

func (h Hooks) count(kind string, err error) error {
	if err != nil && h.Failed != nil {
		h.Failed(kind)
	}
	return err
}
