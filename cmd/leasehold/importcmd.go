package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/config/keepalived"
)

const importUsage = "usage: leasehold config import-keepalived [-o OUT.yaml] [--force] [--quorum none|etcd|raft] [--node NAME] [--config-id ID] KEEPALIVED.CONF"

// cmdConfigImport converts a keepalived.conf to leasehold's YAML: on
// stdout, or into -o FILE (not overwritten without --force). Warnings (what
// was not converted, by keepalived file:line) go to stderr. Exit 0 when
// converted, 1 on errors in the input, 2 on usage errors.
func cmdConfigImport(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "import-keepalived" {
		args = args[1:]
	}
	fset := flag.NewFlagSet("config import-keepalived", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprintln(fset.Output(), importUsage); fset.PrintDefaults() }
	out := fset.String("o", "", "write the YAML to this file instead of stdout")
	force := fset.Bool("force", false, "overwrite the -o file if it exists")
	quorum := fset.String("quorum", config.BackendNone,
		"none, etcd or raft: etcd/raft add a commented template of that quorum section (the backend written stays none)")
	node := fset.String("node", "", "node.name (default: global_defs router_id, else the hostname at run time)")
	configID := fset.String("config-id", "", "the node's keepalived config id (keepalived -i; default there: the short hostname): selects the @ID lines")
	// Flags may come before or after the file name.
	files, rc, ok := parseFlags(fset, args, stdout, stderr)
	if !ok {
		return rc
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, importUsage)
		return 2
	}
	src := files[0]
	data, err := os.ReadFile(src)
	if err != nil {
		fmt.Fprintln(stderr, "leasehold:", err)
		return 1
	}
	outName := *out
	if outName == "" {
		outName = "leasehold.yaml"
	}
	im, err := keepalived.Import(src, data, keepalived.Options{
		Quorum: *quorum, NodeName: *node, ConfigID: *configID, OutName: outName, LookPath: exec.LookPath,
		ReadFile: os.ReadFile, Glob: filepath.Glob,
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintf(stderr, "%s: not converted\n", src)
		return 1
	}
	for _, w := range im.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	switch *quorum {
	case config.BackendEtcd, config.BackendRaft:
		fmt.Fprintf(stderr, "note: quorum.backend is still none: a commented %s section is in the output; fill it in and switch the backend\n", *quorum)
	}
	if *out == "" {
		if _, err := stdout.Write(im.YAML); err != nil {
			fmt.Fprintln(stderr, "leasehold:", err)
			return 1
		}
	} else if err := writeNew(*out, im.YAML, *force); err != nil {
		fmt.Fprintln(stderr, "leasehold:", err)
		return 1
	}
	dest := "stdout"
	if *out != "" {
		dest = *out
	}
	fmt.Fprintf(stderr, "%s: %d instance(s) converted to %s, %d warning(s); NO split-brain protection until quorum.backend is etcd or raft\n",
		src, len(im.Config.Instance), dest, len(im.Warnings))
	if im.LVS > 0 {
		fmt.Fprintf(stderr, "%s: %d virtual server(s) converted with lvs_mode all (keepalived's behaviour; see the warnings for what keepalived itself ignored and what was not converted)\n", src, im.LVS)
	}
	return 0
}

// writeNew writes data to path, refusing to replace a file unless force.
func writeNew(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o640)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: use --force to overwrite it", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
