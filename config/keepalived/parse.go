package keepalived

import (
	"github.com/leasehold/leasehold/config"

	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reads keepalived.conf's syntax into a tree of statements; the
// meaning of the keywords is keepalived.go's business. It reads lines as
// keepalived's lib/parser.c does (read_line, decomment, alloc_strvec):
//
//   - a '#' or '!' outside "double quotes" starts a comment, anywhere in a
//     word ("auth_pass ab#cd" is "ab"); "\#" and "\!" outside quotes stand
//     for the character itself;
//   - "@ID rest" keeps rest only on the node whose config id (keepalived
//     -i, default the short hostname) is ID, "@^ID rest" only on the
//     others (Options.ConfigID);
//   - "include PATTERN" (and includer/includem/includew/includeb/includea)
//     reads the files PATTERN matches, relative to the including file's
//     directory, {a,b} alternatives and globs expanded, in order;
//   - words are separated by blanks; a word starting with '"' runs to the
//     next '"'; '{' and '}' outside quotes split the line (they are tokens
//     of their own, and a block may sit on one line: "track_script { chk }");
//   - a '}' closing no block is reported and ignored, a block left open at
//     the end of the input is closed there.
//
// Blanks other than space and tab (no-break, ideographic, a byte order
// mark) are refused: keepalived takes them as part of a word, so the line
// means something else to it than it seems to.
//
// Only the text outside comments must be UTF-8 (comments in GBK or Latin-1
// are skipped unread). Lines with a NUL byte, parameter definitions
// ($NAME=...) and ~SEQ/~LST lines are refused. Memory and time are linear
// in the input: tokens are streamed, blocks nest at most maxDepth deep,
// includes at most maxIncludeDepth, and reading stops after maxErrors
// errors.

const (
	maxDepth        = 16 // keepalived's deepest block (virtual_server > real_server > HTTP_GET > url) is 4
	maxIncludeDepth = 16
	maxErrors       = 50
	maxWarnings     = 500
	maxAlternatives = 1024 // of an include's {a,b} braces
)

// kaStmt is one statement: a keyword, its arguments, and its block if it
// has one. Lines are the importer's own numbering across the file and its
// includes (kaSources maps them back to file:line).
type kaStmt struct {
	Key      string
	Args     []string
	Line     int
	Block    []*kaStmt
	HasBlock bool
	EndLine  int    // line of the closing brace
	Raw      string // the line from the keyword on, comments cut (for script keywords)
}

// Words returns the keyword and arguments joined by single blanks: a list
// entry such as "192.168.0.174 dev eth0 label eth0:0".
func (s *kaStmt) Words() string {
	return strings.Join(append([]string{s.Key}, s.Args...), " ")
}

// kaSources numbers the lines of a file and of the files it includes in
// one sequence, in the order keepalived reads them.
type kaSources struct {
	segs []kaSeg
}

// kaSeg: from line start on, the lines are file's, starting at line.
type kaSeg struct {
	start int
	file  string
	line  int
}

// at returns the file and line behind line n (0: the first file, line 0).
func (s *kaSources) at(n int) (string, int) {
	if len(s.segs) == 0 {
		return "", 0
	}
	if n < 1 {
		return s.segs[0].file, 0
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].start > n }) - 1
	if i < 0 {
		i = 0
	}
	g := s.segs[i]
	return g.file, g.line + n - g.start
}

// readOptions are what reading needs beyond the data.
type readOptions struct {
	configID string
	readFile func(string) ([]byte, error)
	glob     func(string) ([]string, error)
}

// kaFile is a file being read.
type kaFile struct {
	name string
	data string
	off  int
	line int // lines read
}

// kaReader yields the logical lines of a file and its includes.
type kaReader struct {
	opt   readOptions
	src   *kaSources
	files []*kaFile // the include stack, the file being read last
	n     int       // lines numbered so far
	errf  func(line int, key, format string, args ...any)
	warnf func(line int, key, format string, args ...any)
	// condLine: the first @conditional line met without a config id.
	condLine int
}

func (r *kaReader) push(name string, data []byte) {
	r.files = append(r.files, &kaFile{name: name, data: string(data)})
	r.mark()
}

// mark starts a segment: the next line is the current file's next line.
func (r *kaReader) mark() {
	if len(r.files) == 0 {
		return
	}
	f := r.files[len(r.files)-1]
	r.src.segs = append(r.src.segs, kaSeg{start: r.n + 1, file: f.name, line: f.line + 1})
}

// next returns the next line with content (comments cut) and its number;
// ok is false at the end of the input.
func (r *kaReader) next() (text string, n int, ok bool) {
	for len(r.files) > 0 {
		f := r.files[len(r.files)-1]
		if f.off >= len(f.data) {
			r.files = r.files[:len(r.files)-1]
			r.mark()
			continue
		}
		end := strings.IndexByte(f.data[f.off:], '\n')
		var line string
		if end < 0 {
			line, f.off = f.data[f.off:], len(f.data)
		} else {
			line, f.off = f.data[f.off:f.off+end], f.off+end+1
		}
		f.line++
		r.n++
		if text, ok := r.logical(strings.TrimSuffix(line, "\r")); ok {
			return text, r.n, true
		}
	}
	return "", 0, false
}

// logical turns a physical line into what keepalived parses (false: nothing,
// or the line was an include, now being read).
func (r *kaReader) logical(line string) (string, bool) {
	if i := strings.IndexByte(line, 0); i >= 0 {
		r.errf(r.n, "(syntax)", "NUL byte at column %d: keepalived ignores such a line (\"embedded NULs\"); remove it", i+1)
		return "", false
	}
	line, quoteOpen := decomment(line)
	if quoteOpen {
		r.errf(r.n, "(syntax)", "unterminated quoted string")
		return "", false
	}
	if line == "" {
		return "", false
	}
	if !utf8.ValidString(line) {
		r.errf(r.n, "(syntax)", "not valid UTF-8 outside a comment (leasehold's file is UTF-8): convert the file (comments in other encodings are skipped)")
		return "", false
	}
	if line[0] == '@' {
		var ok bool
		if line, ok = r.conditional(line); !ok {
			return "", false
		}
	}
	switch {
	case line[0] == '$' && strings.Contains(line, "="):
		r.errf(r.n, "(syntax)", "parameter definition %s: not supported: write the values in place of $NAME", firstWord(line))
		return "", false
	case strings.HasPrefix(line, "~SEQ") || strings.HasPrefix(line, "~LST"):
		r.errf(r.n, "(syntax)", "%s: not supported: write out the lines it generates", line[:4])
		return "", false
	}
	if pattern, ok := includePattern(line); ok {
		r.include(pattern)
		return "", false
	}
	return line, true
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i]
	}
	return s
}

// decomment cuts the comment and the blanks around the line, as
// keepalived's decomment: '#' and '!' outside "..." start a comment, a
// backslash keeps the character after it ("\#" outside quotes becomes
// "#"). quoteOpen reports an unbalanced '"'.
func decomment(line string) (out string, quoteOpen bool) {
	line = strings.TrimLeft(line, " \t")
	var b *strings.Builder // only when a "\#" is unescaped
	quote := false
	i := 0
scan:
	for ; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"':
			quote = !quote
		case c == '\\' && i+1 < len(line):
			if !quote && (line[i+1] == '#' || line[i+1] == '!') {
				if b == nil {
					b = &strings.Builder{}
				}
				b.WriteString(line[:i])
				line = line[i+1:]
				i = 0
				continue
			}
			i++
		case !quote && (c == '#' || c == '!'):
			break scan
		}
	}
	line = line[:i]
	if b != nil {
		b.WriteString(line)
		line = b.String()
	}
	return strings.TrimRight(line, " \t"), quote
}

// conditional applies "@ID rest" / "@^ID rest".
func (r *kaReader) conditional(line string) (string, bool) {
	blank := strings.IndexAny(line, " \t")
	if blank < 0 {
		return "", false // keepalived drops an @ID with nothing after it
	}
	id, rest := line[1:blank], line[blank:]
	negate := strings.HasPrefix(id, "^")
	id = strings.TrimPrefix(id, "^")
	if r.opt.configID == "" {
		if r.condLine == 0 {
			r.condLine = r.n
			r.errf(r.n, "(syntax)", "conditional line \"@%s\": keepalived keeps such lines by its config id (keepalived -i ID, default the short hostname): import with --config-id ID for the node this file is for", id)
		}
		return "", false
	}
	if (id == r.opt.configID) == negate {
		return "", false
	}
	return strings.TrimLeft(rest, " \t"), true
}

// includePattern recognises keepalived's include keywords.
func includePattern(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "include")
	if !ok || rest == "" {
		return "", false
	}
	if len(rest) > 1 && strings.IndexByte("rmwba", rest[0]) >= 0 && (rest[1] == ' ' || rest[1] == '\t') {
		rest = rest[1:]
	}
	if rest[0] != ' ' && rest[0] != '\t' {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// include reads the files pattern names, relative to the including file's
// directory as keepalived resolves them.
func (r *kaReader) include(pattern string) {
	at := r.n
	if r.opt.readFile == nil || r.opt.glob == nil {
		r.errf(at, "include", "include %s: this import reads no other files: run it where the files are (the command line does)", pattern)
		return
	}
	if len(r.files) > maxIncludeDepth {
		r.errf(at, "include", "include %s: includes nested deeper than %d (does a file include itself?)", pattern, maxIncludeDepth)
		return
	}
	cur := r.files[len(r.files)-1].name
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(cur), pattern)
	}
	alts, ok := expandBraces(pattern)
	if !ok {
		r.errf(at, "include", "include %s: more than %d {a,b} alternatives", pattern, maxAlternatives)
		return
	}
	var names []string
	for _, alt := range alts {
		m, err := r.opt.glob(alt)
		if err != nil {
			r.errf(at, "include", "include %s: %v", pattern, err)
			return
		}
		names = append(names, m...)
	}
	if len(names) == 0 {
		if strings.ContainsAny(pattern, "*?[{") {
			r.warnf(at, "include", "include %s: no file matches here: keepalived goes on without them too; import on a node that has them if it has", pattern)
		} else {
			r.errf(at, "include", "include %s: no such file here: import on the node that has it, or remove the include", pattern)
		}
		return
	}
	// Read the files last to first: the stack pops the first one first.
	datas := make([][]byte, len(names))
	for i, name := range names {
		b, err := r.opt.readFile(name)
		if err != nil {
			r.errf(at, "include", "include %s: %v", pattern, err)
			return
		}
		datas[i] = b
	}
	for i := len(names) - 1; i >= 0; i-- {
		r.files = append(r.files, &kaFile{name: names[i], data: string(datas[i])})
	}
	r.mark()
}

// expandBraces expands the first {a,b,...} of a glob and the rest
// recursively, as glob(3) with GLOB_BRACE; a '{' without a ',' before its
// '}' stays as it is. ok is false past maxAlternatives results.
func expandBraces(p string) (alts []string, ok bool) {
	depth, open := 0, -1
	var commas []int
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '{':
			if depth == 0 {
				open, commas = i, nil
			}
			depth++
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth > 0 || len(commas) == 0 {
				continue
			}
			rest, ok := expandBraces(p[i+1:])
			if !ok {
				return nil, false
			}
			start := open + 1
			for _, c := range append(commas, i) {
				// An alternative may hold braces of its own.
				inner, ok := expandBraces(p[start:c])
				if !ok {
					return nil, false
				}
				for _, in := range inner {
					for _, r := range rest {
						if len(alts) == maxAlternatives {
							return nil, false
						}
						alts = append(alts, p[:open]+in+r)
					}
				}
				start = c + 1
			}
			return alts, true
		}
	}
	return []string{p}, true
}

// fullWidth maps full-width punctuation that keepalived would take as part
// of a word to what the author most likely meant.
var fullWidth = map[rune]string{
	'｛': "{", '｝': "}", '＃': "#", '！': "!", '＂': `"`, '“': `"`, '”': `"`,
}

// topLevel are the keywords that only make sense outside any block: one of
// them inside a block means a '}' is missing above it.
var topLevel = map[string]bool{
	"global_defs": true, "vrrp_script": true, "vrrp_instance": true, "vrrp_sync_group": true,
	"virtual_server": true, "virtual_server_group": true, "static_ipaddress": true,
	"static_routes": true, "static_rules": true,
}

// kaParser builds the statement tree from the reader's lines.
type kaParser struct {
	r     *kaReader
	stack []*kaStmt // open blocks; stack[0] is the file
	cur   *kaStmt   // the statement the line's next words belong to
	last  *kaStmt   // the previous statement of the innermost block: a lone '{' opens its block
	skip  int       // depth of blocks skipped beyond maxDepth
	nerr  int
	errf  func(line int, key, format string, args ...any)
	warnf func(line int, key, format string, args ...any)
}

// kaParse reads data (and the files it includes) into statements.
func kaParse(file string, data []byte, opt readOptions, src *kaSources,
	errf, warnf func(line int, key, format string, args ...any)) []*kaStmt {
	p := &kaParser{warnf: warnf}
	p.errf = func(line int, key, format string, args ...any) {
		if p.nerr++; p.nerr <= maxErrors {
			errf(line, key, format, args...)
		}
	}
	p.r = &kaReader{opt: opt, src: src, errf: p.errf, warnf: warnf}
	p.r.push(file, data)
	root := &kaStmt{}
	p.stack = []*kaStmt{root}
	for p.nerr < maxErrors {
		text, n, ok := p.r.next()
		if !ok {
			break
		}
		p.line(text, n)
	}
	if p.nerr >= maxErrors {
		return nil // errf has said that more are not shown
	}
	for i := len(p.stack) - 1; i > 0; i-- {
		b := p.stack[i]
		b.EndLine = p.r.n
		if b.Key != "" {
			warnf(b.Line, b.Key, "block %q is not closed before the end of the file: taken as closed there", b.Words())
		}
	}
	return root.Block
}

// line tokenizes one logical line and feeds the tokens to the tree.
func (p *kaParser) line(s string, n int) {
	p.cur = nil
	if i := strings.Index(s, "{{"); i >= 0 && strings.Contains(s[i:], "}}") {
		p.errf(n, "(syntax)", "template placeholder %q: render the template (Jinja, Go, Helm...) for the node, then import the result", s[i:i+strings.Index(s[i:], "}}")+2])
		return
	}
	odd := false
	for j := 0; j < len(s); {
		c, size := utf8.DecodeRuneInString(s[j:])
		switch {
		case c == ' ' || c == '\t':
			j++
		case unicode.IsSpace(c) || c == '\uFEFF':
			if !odd {
				p.errf(n, "(syntax)", "%U %q: keepalived takes it as part of a word, not as a blank (copied from a web page?): "+
					"replace it with a space in keepalived.conf on every node, then import", c, c)
				odd = true
			}
			j += size
		case c == '{':
			p.open(n)
			j++
		case c == '}':
			p.close(n)
			j++
		case c == '"':
			k := strings.IndexByte(s[j+1:], '"')
			if k < 0 { // decomment has checked
				k = len(s) - j - 1
			}
			p.word(s[j+1:j+1+k], s[j:], n)
			j += k + 2
		default:
			k := j
			for k < len(s) {
				r, sz := utf8.DecodeRuneInString(s[k:])
				if unicode.IsSpace(r) || r == '{' || r == '}' || r == '"' || r == '\uFEFF' {
					break
				}
				if alt, ok := fullWidth[r]; ok {
					p.errf(n, "(syntax)", "full-width %q (%U): did you mean %q?", r, r, alt)
				}
				k += sz
			}
			p.word(s[j:k], s[j:], n)
			j = k
		}
	}
	p.cur = nil
}

func (p *kaParser) word(w, rest string, n int) {
	if p.skip > 0 {
		return
	}
	if p.cur != nil {
		p.cur.Args = append(p.cur.Args, w)
		if st := p.cur; len(st.Args) == 1 && isLineNumbered(st) {
			p.errf(st.Line, "(syntax)", "line starts with %q: copied from a web page with its line numbers? remove the \"N |\" prefixes", st.Key+" "+st.Args[0])
		}
		return
	}
	parent := p.stack[len(p.stack)-1]
	st := &kaStmt{Key: w, Line: n, Raw: rest}
	if len(p.stack) > 1 && topLevel[w] {
		p.errf(n, w, "%s inside %s (line %d): a '}' is missing above this line", w, parent.Words(), parent.Line)
	}
	parent.Block = append(parent.Block, st)
	p.cur, p.last = st, st
}

func (p *kaParser) open(n int) {
	if p.skip > 0 {
		p.skip++
		return
	}
	target := p.cur
	if target == nil && p.last != nil && !p.last.HasBlock {
		target = p.last // "keyword" then "{" on the next line
	}
	if target == nil {
		p.errf(n, "(syntax)", "'{' without a keyword before it")
		target = &kaStmt{Line: n} // read the block anyway so its '}' balances
	}
	if len(p.stack) > maxDepth {
		p.errf(n, "(syntax)", "blocks nested deeper than %d: not a keepalived configuration", maxDepth)
		p.skip = 1
		return
	}
	target.HasBlock = true
	p.stack = append(p.stack, target)
	p.cur, p.last = nil, nil
}

func (p *kaParser) close(n int) {
	if p.skip > 0 {
		p.skip--
		return
	}
	if len(p.stack) == 1 {
		p.warnf(n, "(syntax)", "'}' closes no block: ignored, as keepalived does (\"Extra '}' found\"); check the braces above")
		p.cur = nil
		return
	}
	b := p.stack[len(p.stack)-1]
	b.EndLine = n
	p.stack = p.stack[:len(p.stack)-1]
	p.cur, p.last = nil, b
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

// printable escapes what a terminal would interpret (control bytes,
// invalid UTF-8) in text quoted from the input.
func printable(s string) string {
	clean := true
	for _, c := range s {
		if c == utf8.RuneError || !unicode.IsPrint(c) && c != ' ' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case c == ' ' || unicode.IsPrint(c):
			b.WriteRune(c)
		case c < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			fmt.Fprintf(&b, `\U%08x`, c)
		}
		i += size
	}
	return b.String()
}

// printableErr rebuilds err with every config.Error's text printable.
func printableErr(err error) error {
	if err == nil {
		return nil
	}
	list := flatten(err)
	out := make([]error, 0, len(list))
	for _, e := range list {
		var ce *config.Error
		if errors.As(e, &ce) {
			out = append(out, &config.Error{File: printable(ce.File), Line: ce.Line, Key: printable(ce.Key), Msg: printable(ce.Msg)})
			continue
		}
		out = append(out, errors.New(printable(e.Error())))
	}
	return errors.Join(out...)
}

// flatten lists the errors of err, joined ones (at any depth) one by one:
// config.Parse joins each instance's errors, and all of them count.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}
