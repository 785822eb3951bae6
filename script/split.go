package script

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrSyntax: a command line cannot be split (unbalanced quote, backslash
// at the end, an escape that yields a NUL byte, nothing but blanks).
var ErrSyntax = errors.New("script: bad command line")

// blanks separate words outside quotes: keepalived's WHITE_SPACE_STR.
const blanks = " \t\f\n\r\v"

func isBlank(c byte) bool {
	for i := 0; i < len(blanks); i++ {
		if blanks[i] == c {
			return true
		}
	}
	return false
}

// Split splits a command line into the program and its arguments as
// keepalived splits the command of a vrrp_script or notify script (its
// alloc_strvec_quoted_escaped, lib/parser.c):
//
//   - blanks (space, tab, \f, \n, \r, \v) separate words outside quotes;
//   - "..." and '...' quote blanks and the other quote character; a quote
//     does not end a word (a"b c"d is one word, ab cd), and "" is an empty
//     word;
//   - a backslash escapes the next character everywhere, inside single
//     quotes too (unlike a shell): \a \b \E \f \n \r \t \v, \xH or \xHH
//     (hex), \cX (control-X), \O, \OO or \OOO (octal, modulo 256); any
//     other character stands for itself (\" \' \\ \ and a blank);
//   - no variables, globs, pipes or redirections: a shell feature needs an
//     explicit "/bin/sh -c '...'".
//
// Errors wrap ErrSyntax: a quote with no closing quote, a backslash at the
// end, nothing but blanks (keepalived reports or ignores the script in
// those cases), a NUL byte. Where keepalived would silently cut a word at
// an escaped NUL byte (\0, \x00), Split refuses it: an argument cannot
// hold one.
//
// Sources: keepalived's lib/parser.c alloc_strvec_quoted_escaped_common,
// called by set_script_params_array in keepalived/core/notify.c, and
// keepalived.conf(5), "Quoted strings". This is keepalived 2.3.2 and later
// (commit af7aa8bf, "fix parsing of escaped characters in quoted
// strings"); before it, as in Debian 12's 2.2.7, \x took any number of hex
// digits and escapes were decoded twice (once more when the configuration
// line was read): lines without backslashes split the same in all of them.
//
// The words hold at most len(line) bytes in all, and there are at most
// len(line) of them.
func Split(line string) ([]string, error) { return split(line, true) }

// SplitQuoted is keepalived's first pass over the whole configuration line
// of a script keyword (notify_master, script, ...; its alloc_strvec_quoted):
// words and quotes as Split, but a backslash and the byte after it are kept
// as written (so \" does not close a quote), for Split to decode when the
// command word is run. For example
//
//	notify_master "/x.sh 'a b' c\\ d" USER
//
// gives notify_master, /x.sh 'a b' c\\ d and USER; Split then gives the
// command /x.sh with a b and c\ d.
func SplitQuoted(line string) ([]string, error) { return split(line, false) }

func split(line string, escapes bool) ([]string, error) {
	if i := strings.IndexByte(line, 0); i >= 0 {
		return nil, fmt.Errorf("%w: NUL byte at byte %d", ErrSyntax, i)
	}
	var words []string
	word := make([]byte, 0, len(line))
	for i := 0; i < len(line); {
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		word = word[:0]
		var quote byte // the open quote, 0 outside quotes
		quoteAt := 0
	word:
		for i < len(line) {
			c := line[i]
			switch {
			case c == '\\' && !escapes:
				if i+1 == len(line) {
					return nil, errTrailingBackslash
				}
				word = append(word, c, line[i+1])
				i += 2
			case c == '\\':
				b, n, err := unescape(line, i)
				if err != nil {
					return nil, err
				}
				word = append(word, b)
				i += n
			case quote != 0 && c == quote:
				quote = 0
				i++
			case quote != 0:
				word = append(word, c)
				i++
			case c == '"' || c == '\'':
				quote, quoteAt = c, i
				i++
			case isBlank(c):
				break word
			default:
				word = append(word, c)
				i++
			}
		}
		if quote != 0 {
			return nil, fmt.Errorf("%w: missing terminating %c for the quote at byte %d", ErrSyntax, quote, quoteAt)
		}
		words = append(words, string(word))
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%w: empty command", ErrSyntax)
	}
	return words, nil
}

var errTrailingBackslash = fmt.Errorf("%w: backslash at the end with nothing to escape", ErrSyntax)

// unescape decodes the escape sequence starting with the backslash at
// line[i]: the byte it stands for and the bytes it takes.
func unescape(line string, i int) (byte, int, error) {
	if i+1 == len(line) {
		return 0, 0, errTrailingBackslash
	}
	c := line[i+1]
	var b byte
	n := 2
	switch {
	case c == 'x' && i+2 < len(line) && hexVal(line[i+2]) >= 0:
		b = byte(hexVal(line[i+2]))
		n = 3
		if i+3 < len(line) && hexVal(line[i+3]) >= 0 {
			b = b<<4 | byte(hexVal(line[i+3]))
			n = 4
		}
	case c == 'c' && i+2 < len(line):
		b = line[i+2] & 0x1f
		n = 3
	case c >= '0' && c <= '7':
		v := int(c - '0')
		for n < 4 && i+n < len(line) && line[i+n] >= '0' && line[i+n] <= '7' {
			v = v<<3 | int(line[i+n]-'0')
			n++
		}
		b = byte(v) // modulo 256, as keepalived's char arithmetic
	case c == 'a':
		b = '\a'
	case c == 'b':
		b = '\b'
	case c == 'E':
		b = 0x1b
	case c == 'f':
		b = '\f'
	case c == 'n':
		b = '\n'
	case c == 'r':
		b = '\r'
	case c == 't':
		b = '\t'
	case c == 'v':
		b = '\v'
	default:
		b = c
	}
	if b == 0 {
		return 0, 0, fmt.Errorf("%w: %q at byte %d yields a NUL byte, which no argument can hold", ErrSyntax, line[i:i+n], i)
	}
	return b, n, nil
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// ParseLine splits a configured command line with Split and requires its
// program to be an absolute path (keepalived would look a bare name up on
// PATH; leasehold wants it spelled out, and the keepalived importer
// resolves it). It does not touch the file system: Check does.
func ParseLine(line string) (Command, error) {
	argv, err := Split(line)
	if err != nil {
		return Command{}, err
	}
	if !filepath.IsAbs(argv[0]) {
		return Command{}, fmt.Errorf("%w: %q: program path not absolute", ErrUnsafe, argv[0])
	}
	return Command{Path: argv[0], Args: argv[1:]}, nil
}

// Join is the inverse of Split: a command line that Split turns back into
// words. A word made only of letters, digits and @%+=:,./_- is written as
// it is; any other is single-quoted, with \ and ' escaped by a backslash
// (keepalived honours escapes inside single quotes too). Join(nil) is "".
func Join(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w != "" && strings.Trim(w, plain) == "" {
			b.WriteString(w)
			continue
		}
		b.WriteByte('\'')
		for j := 0; j < len(w); j++ {
			if w[j] == '\\' || w[j] == '\'' {
				b.WriteByte('\\')
			}
			b.WriteByte(w[j])
		}
		b.WriteByte('\'')
	}
	return b.String()
}

// plain are the bytes Join leaves unquoted.
const plain = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./_-"
