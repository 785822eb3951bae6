package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit codes, as Unix tools use them.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (a bad file, an unreachable daemon or quorum, a failed drill)
	exitUsage   = 2 // the command line is wrong (unknown command or flag, missing or extra argument)
)

// newFlagSet returns a flag set for "leasehold NAME" whose usage is
// "usage: leasehold NAME SYNOPSIS", then text (if any), then the flags.
func newFlagSet(name, synopsis, text string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: leasehold %s %s\n", name, synopsis)
		if text != "" {
			fmt.Fprintf(fs.Output(), "\n%s", text)
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args into fs, flags and positional arguments mixed,
// and returns the positional ones. -h or --help prints the usage on stdout
// (exit 0); a bad flag prints the error and the usage on stderr (exit 2);
// in both cases ok is false and the caller returns rc.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (pos []string, rc int, ok bool) {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	defer fs.SetOutput(stderr)
	pos, err := flagsAnywhere(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		buf.Reset()
		fs.SetOutput(stdout)
		fs.Usage()
		return nil, exitOK, false
	case err != nil:
		stderr.Write(buf.Bytes())
		return nil, exitUsage, false
	}
	return pos, exitOK, true
}

// usageError prints msg and fs's usage on stderr and returns exitUsage.
func usageError(fs *flag.FlagSet, stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "leasehold %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.SetOutput(stderr)
	fs.Usage()
	return exitUsage
}

// needSubcommand answers a command that takes a subcommand when args name
// none (its usage on stderr, exit 2) or ask for help (on stdout, exit 0):
// done is true then and the caller returns rc.
func needSubcommand(args []string, usage string, stdout, stderr io.Writer) (rc int, done bool) {
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, usage)
		return exitUsage, true
	case isHelp(args[0]):
		fmt.Fprint(stdout, usage)
		return exitOK, true
	}
	return exitOK, false
}

// flagsAnywhere parses fs from args where flags and positionals mix.
func flagsAnywhere(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
