package keepalived

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var fileLine = regexp.MustCompile(`^[^:]+:[1-9][0-9]*: `)

var update = flag.Bool("update", false, "rewrite the corpus's golden .yaml and .warn files")

// TestCorpus imports every testdata/corpus/*/*.conf (keepalived's own
// doc/samples and configs written per directive family) and compares the
// result with its golden files: NAME.yaml and NAME.warn (the YAML and the
// warnings) when it imports, NAME.err (one expected substring of the
// refusal per line, "file:line: key: reason") when it is refused. NAME.opts
// sets options (config-id ID, node NAME, quorum etcd|raft, one per line). Whatever imports
// must pass the plan `run` builds (daemon.NewPlan), its scripts stubbed.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/corpus/*/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimPrefix(path, "testdata/corpus/"), func(t *testing.T) {
			base := strings.TrimSuffix(path, ".conf")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			opt := corpusOptions(t, base+".opts")
			im, err := Import(path, data, opt)
			wantErr, errFile := os.ReadFile(base + ".err")
			switch {
			case err != nil && *update:
				// The refusal, its paths relative to the file's directory.
				msg := strings.ReplaceAll(err.Error(), filepath.Dir(path)+"/", "")
				golden(t, base+".err", []byte(msg+"\n"))
				return
			case errFile == nil && err == nil:
				t.Fatalf("imported; %s.err expects a refusal", base)
			case errFile == nil:
				// Every refusal names its file and line.
				for _, l := range strings.Split(err.Error(), "\n") {
					if !fileLine.MatchString(l) {
						t.Errorf("refusal without file:line: %q", l)
					}
				}
				for _, w := range strings.Split(strings.TrimSpace(string(wantErr)), "\n") {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("refusal lacks %q:\n%v", w, err)
					}
				}
				return
			case err != nil:
				t.Fatalf("refused (write %s.err if it should be, or -update): %v", base, err)
			}
			golden(t, base+".yaml", im.YAML)
			golden(t, base+".warn", []byte(warningText(im)))
			checkPlan(t, im)
		})
	}
}

func corpusOptions(t *testing.T, path string) Options {
	opt := Options{ReadFile: os.ReadFile, Glob: filepath.Glob,
		LookPath: func(prog string) (string, error) { return "/usr/bin/" + prog, nil }}
	b, err := os.ReadFile(path)
	if err != nil {
		return opt
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "config-id":
			opt.ConfigID = v
		case "node":
			opt.NodeName = v
		case "quorum":
			opt.Quorum = v
		case "":
		default:
			t.Fatalf("%s: unknown option %q", path, k)
		}
	}
	return opt
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestCorpus -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run TestCorpus -update rewrites it); got:\n%s", path, got)
	}
}
