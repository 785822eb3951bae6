package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/quorum/raft"
)

// cmdWitness runs a raft voter that holds no VIPs: the third vote for a
// two-node pair. Its config file needs only node and quorum (backend raft).
func cmdWitness(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return cmdWitnessCtx(ctx, args, stdout, stderr)
}

func cmdWitnessCtx(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("witness", "[-c FILE] [--check]",
		"runs a raft voter that holds no VIPs (systemd: leasehold-witness.service)\n")
	file := fs.String("c", "/etc/leasehold/witness.yaml", "configuration file (node and quorum sections)")
	check := fs.Bool("check", false, "check the file as the witness would run it, and exit")
	if pos, rc, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return rc
	} else if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q (the file goes after -c)", pos[0])
	}
	plan, err := daemon.LoadQuorum(*file, true)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg := plan.Config
	if cfg.Quorum.Backend != config.BackendRaft {
		fmt.Fprintf(stderr, "%s: quorum.backend is %q: a witness is a raft voter (backend: raft)\n", *file, cfg.Quorum.Backend)
		return 1
	}
	if *check {
		fmt.Fprintf(stderr, "%s: ok: raft witness %s of %d voters, data in %s\n", *file, plan.Raft.ID, len(plan.Raft.Peers), plan.Raft.DataDir)
		return 0
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("node", cfg.Node.Name, "role", "witness")
	m, err := raft.NewMember(plan.Raft, log)
	if err != nil {
		log.Error("witness", "err", err)
		return 1
	}
	if err := m.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("witness stopped", "err", err)
		return 1
	}
	return 0
}
