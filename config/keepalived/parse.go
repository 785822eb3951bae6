package keepalived

import (
	"github.com/leasehold/leasehold/config"

	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reads keepalived.conf's syntax into a tree of statements; the
// meaning of the keywords is keepalived.go's business.
//
// keepalived's syntax: one statement per line, words separated by blanks;
// a word starting with '#' or '!' starts a comment running to the end of
// the line; "double quoted" words may hold blanks and comment characters;
// '{' and '}' open and close a block (they are tokens of their own, with or
// without blanks around them, and a block may sit on one line:
// "track_script { chk }").

// kaStmt is one statement: a keyword, its arguments, and its block if it
// has one.
type kaStmt struct {
	Key      string
	Args     []string
	Line     int
	Block    []*kaStmt
	HasBlock bool
	EndLine  int // line of the closing brace
}

// Words returns the keyword and arguments joined by single blanks: a list
// entry such as "192.168.0.174 dev eth0 label eth0:0".
func (s *kaStmt) Words() string {
	return strings.Join(append([]string{s.Key}, s.Args...), " ")
}

type kaTokKind int

const (
	kaWord kaTokKind = iota
	kaOpen
	kaClose
	kaEOL
)

type kaTok struct {
	kind kaTokKind
	text string
	line int
}

// fullWidth maps full-width punctuation that keepalived would take as part
// of a word to what the author most likely meant.
var fullWidth = map[rune]string{
	'｛': "{", '｝': "}", '＃': "#", '！': "!", '＂': `"`, '“': `"`, '”': `"`,
}

// kaTokenize splits data into tokens. Blanks include the no-break and
// ideographic spaces that copying from web pages leaves behind (warned).
func kaTokenize(file string, data []byte, warn func(*config.Error)) ([]kaTok, error) {
	var toks []kaTok
	var errs []error
	s := string(data)
	if !utf8.ValidString(s) {
		return nil, &config.Error{File: file, Key: "(file)", Msg: "not valid UTF-8"}
	}
	s = strings.TrimPrefix(s, "\uFEFF")
	for i, line := range strings.Split(s, "\n") {
		ln := i + 1
		line = strings.TrimSuffix(line, "\r")
		odd := false
		r := []rune(line)
		for j := 0; j < len(r); {
			c := r[j]
			switch {
			case c == ' ' || c == '\t':
				j++
			case unicode.IsSpace(c):
				if !odd {
					warn(&config.Error{File: file, Line: ln, Key: "(syntax)", Msg: fmt.Sprintf("%U %q taken as a blank (keepalived would not)", c, c)})
					odd = true
				}
				j++
			case c == '#' || c == '!':
				j = len(r)
			case c == '{':
				toks = append(toks, kaTok{kaOpen, "{", ln})
				j++
			case c == '}':
				toks = append(toks, kaTok{kaClose, "}", ln})
				j++
			case c == '"':
				k := j + 1
				for k < len(r) && r[k] != '"' {
					k++
				}
				if k == len(r) {
					errs = append(errs, &config.Error{File: file, Line: ln, Key: "(syntax)", Msg: "unterminated quoted string"})
					j = len(r)
					continue
				}
				toks = append(toks, kaTok{kaWord, string(r[j+1 : k]), ln})
				j = k + 1
			default:
				k := j
				for k < len(r) && !unicode.IsSpace(r[k]) && r[k] != '{' && r[k] != '}' && r[k] != '"' {
					if alt, ok := fullWidth[r[k]]; ok {
						errs = append(errs, &config.Error{File: file, Line: ln, Key: "(syntax)",
							Msg: fmt.Sprintf("full-width %q (%U): did you mean %q?", r[k], r[k], alt)})
					}
					k++
				}
				toks = append(toks, kaTok{kaWord, string(r[j:k]), ln})
				j = k
			}
		}
		toks = append(toks, kaTok{kaEOL, "", ln})
	}
	return toks, errors.Join(errs...)
}

// topLevel are the keywords that only make sense outside any block: one of
// them inside a block means a '}' is missing above it.
var topLevel = map[string]bool{
	"global_defs": true, "vrrp_script": true, "vrrp_instance": true, "vrrp_sync_group": true,
	"virtual_server": true, "virtual_server_group": true, "static_ipaddress": true,
	"static_routes": true, "static_rules": true, "include": true,
}

// kaParse builds the statement tree. Errors name file:line; a block left
// open at the end of the file is closed there with a warning when nothing
// suggests a '}' went missing earlier.
func kaParse(file string, data []byte, warn func(*config.Error)) ([]*kaStmt, error) {
	toks, err := kaTokenize(file, data, warn)
	if err != nil {
		return nil, err
	}
	p := &kaParser{file: file, toks: toks, warn: warn}
	root := p.block(nil)
	return root, errors.Join(p.errs...)
}

type kaParser struct {
	file string
	toks []kaTok
	pos  int
	errs []error
	warn func(*config.Error)
}

func (p *kaParser) errf(line int, key, format string, args ...any) {
	p.errs = append(p.errs, &config.Error{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// block reads statements until the '}' closing parent (nil: the file).
func (p *kaParser) block(parent *kaStmt) []*kaStmt {
	var out []*kaStmt
	var last *kaStmt // the previous statement: a lone '{' on the next line opens its block
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		switch t.kind {
		case kaEOL:
			p.pos++
		case kaClose:
			p.pos++
			if parent == nil {
				p.errf(t.line, "(syntax)", "'}' closes no block")
				continue
			}
			parent.EndLine = t.line
			return out
		case kaOpen:
			p.pos++
			if last == nil || last.HasBlock {
				p.errf(t.line, "(syntax)", "'{' without a keyword before it")
				// Read the block anyway so its '}' balances.
				p.block(&kaStmt{Line: t.line})
				continue
			}
			last.HasBlock = true
			last.Block = p.block(last)
		case kaWord:
			st := &kaStmt{Key: t.text, Line: t.line}
			p.pos++
			for p.pos < len(p.toks) && p.toks[p.pos].kind == kaWord {
				st.Args = append(st.Args, p.toks[p.pos].text)
				p.pos++
			}
			if isLineNumbered(st) {
				p.errf(st.Line, "(syntax)", "line starts with %q: copied from a web page with its line numbers? remove the \"N |\" prefixes", st.Key+" "+st.Args[0])
			}
			if parent != nil && topLevel[st.Key] {
				p.errf(st.Line, st.Key, "%s inside %s (line %d): a '}' is missing above this line", st.Key, parent.Words(), parent.Line)
			}
			out = append(out, st)
			last = st
			if p.pos < len(p.toks) && p.toks[p.pos].kind == kaOpen {
				p.pos++
				st.HasBlock = true
				st.Block = p.block(st)
			}
		}
	}
	if parent != nil && parent.Key != "" {
		lastLine := 0
		if n := len(p.toks); n > 0 {
			lastLine = p.toks[n-1].line
		}
		parent.EndLine = lastLine
		p.warn(&config.Error{File: p.file, Line: parent.Line, Key: parent.Key,
			Msg: fmt.Sprintf("block %q is not closed before the end of the file: taken as closed there", parent.Words())})
	}
	return out
}

// isLineNumbered spots "1 | global_defs {" pasted from a blog's code box.
func isLineNumbered(st *kaStmt) bool {
	if len(st.Args) == 0 || st.Args[0] != "|" {
		return false
	}
	for _, c := range st.Key {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
