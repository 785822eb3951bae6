package script

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	cases := []struct {
		line string
		want []string
		err  string // substring of the error; "" = no error
	}{
		// keepalived's own samples: the notify command with its arguments,
		// quoted as one config word, and a shell one-liner check.
		{line: "/usr/local/bin/vrrp.sh MASTER VI_1", want: []string{"/usr/local/bin/vrrp.sh", "MASTER", "VI_1"}},
		{line: "bash -c '</dev/tcp/127.0.0.1/80'", want: []string{"bash", "-c", "</dev/tcp/127.0.0.1/80"}},
		{line: `/bin/sh -c "exec /usr/bin/pgrep -x haproxy"`, want: []string{"/bin/sh", "-c", "exec /usr/bin/pgrep -x haproxy"}},
		// keepalived.conf(5), "Quoted strings": the notify_master example
		// once its configuration line has been read (the outer "..." gone).
		{line: `/etc/keepalived/notify_event.sh ' spaces\\x20f\x69le ' '\"s p a c e \"' SG1.low master`,
			want: []string{"/etc/keepalived/notify_event.sh", ` spaces\x20file `, `"s p a c e "`, "SG1.low", "master"}},
		{line: "/bin/true", want: []string{"/bin/true"}},
		{line: " \t/bin/a \f b\vc\r\nd  ", want: []string{"/bin/a", "b", "c", "d"}},
		// Quotes join with what is next to them; "" is an empty word.
		{line: `a"b c"d`, want: []string{"ab cd"}},
		{line: `a '' "" b`, want: []string{"a", "", "", "b"}},
		{line: `'it"s' "it's"`, want: []string{`it"s`, "it's"}},
		// Backslash escapes, inside single quotes too (unlike sh).
		{line: `a\ b`, want: []string{"a b"}},
		{line: `\"x\" \'y\' \\`, want: []string{`"x"`, "'y'", `\`}},
		{line: `'a\'b' "a\"b"`, want: []string{"a'b", `a"b`}},
		{line: `'\n' \t \a\b\E\f\r\v`, want: []string{"\n", "\t", "\a\b\x1b\f\r\v"}},
		{line: `\x41\x4a\x4Z \xg \x`, want: []string{"AJ\x04Z", "xg", "x"}},
		{line: `\101\1011 \7 \18`, want: []string{"AA1", "\x07", "\x018"}},
		{line: `\777`, want: []string{"\xff"}}, // modulo 256, as keepalived's char
		{line: `\cA\c[ \c`, want: []string{"\x01\x1b", "c"}},
		{line: `\q\$HOME`, want: []string{"q$HOME"}},
		// No shell: $, *, |, > and ; are plain characters.
		{line: `/bin/echo $HOME * | > ;`, want: []string{"/bin/echo", "$HOME", "*", "|", ">", ";"}},
		{line: "/bin/echo é\u00a0x", want: []string{"/bin/echo", "é\u00a0x"}}, // only ASCII blanks separate
		// Errors.
		{line: `/bin/sh -c 'exit 0`, err: "missing terminating ' for the quote at byte 11"},
		{line: `/x "a b`, err: `missing terminating " for the quote at byte 3`},
		{line: `/x "it's`, err: `missing terminating "`},
		{line: `/x a\`, err: "backslash at the end"},
		{line: `/x '\`, err: "backslash at the end"},
		{line: `/x \0`, err: `"\\0" at byte 3 yields a NUL byte`},
		{line: `/x \x00`, err: "NUL"},
		{line: `/x \400`, err: "NUL"},
		{line: `/x \c@`, err: "NUL"},
		{line: "/x a\x00b", err: "NUL byte at byte 4"},
		{line: "", err: "empty command"},
		{line: " \t ", err: "empty command"},
	}
	for _, c := range cases {
		got, err := Split(c.line)
		switch {
		case c.err != "":
			if err == nil || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Split(%q) = %q, %v; want an ErrSyntax containing %q", c.line, got, err, c.err)
			}
		case err != nil || !slices.Equal(got, c.want):
			t.Errorf("Split(%q) = %q, %v; want %q", c.line, got, err, c.want)
		}
	}
}

// SplitQuoted is keepalived's first pass over a whole configuration line:
// quotes go, escapes stay for Split.
func TestSplitQuoted(t *testing.T) {
	// keepalived.conf(5), "Quoted strings", as written in a configuration.
	line := `notify_master "/etc/keepalived/notify_event.sh ' spaces\\x20f\x69le ' '\"s p a c e \"' SG1.low master" user group`
	want := []string{"notify_master", `/etc/keepalived/notify_event.sh ' spaces\\x20f\x69le ' '\"s p a c e \"' SG1.low master`, "user", "group"}
	got, err := SplitQuoted(line)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("SplitQuoted = %q, %v\nwant %q", got, err, want)
	}
	argv, err := Split(got[1])
	if want := []string{"/etc/keepalived/notify_event.sh", ` spaces\x20file `, `"s p a c e "`, "SG1.low", "master"}; err != nil || !slices.Equal(argv, want) {
		t.Errorf("Split(%q) = %q, %v; want %q", got[1], argv, err, want)
	}
	for _, c := range []struct {
		line string
		want []string
	}{
		{`script '/usr/local/bin/vrrp.sh MASTER VI_1'`, []string{"script", "/usr/local/bin/vrrp.sh MASTER VI_1"}},
		{`script /bin/echo\ x "a\"b" '\0'`, []string{"script", `/bin/echo\ x`, `a\"b`, `\0`}},
	} {
		if got, err := SplitQuoted(c.line); err != nil || !slices.Equal(got, c.want) {
			t.Errorf("SplitQuoted(%q) = %q, %v; want %q", c.line, got, err, c.want)
		}
	}
	for _, bad := range []string{`script "/bin/x`, `script /bin/x\`, ""} {
		if got, err := SplitQuoted(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("SplitQuoted(%q) = %q, %v; want ErrSyntax", bad, got, err)
		}
	}
}

func TestParseLine(t *testing.T) {
	c, err := ParseLine(`/usr/local/bin/vrrp.sh MASTER "VI 1"`)
	if err != nil || c.Path != "/usr/local/bin/vrrp.sh" || !slices.Equal(c.Args, []string{"MASTER", "VI 1"}) {
		t.Errorf("ParseLine = %+v, %v", c, err)
	}
	if _, err := ParseLine("bash -c true"); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), `"bash"`) {
		t.Errorf("relative program: %v, want ErrUnsafe naming it", err)
	}
	if _, err := ParseLine(`"/usr/bin/x`); !errors.Is(err, ErrSyntax) {
		t.Errorf("unbalanced quote: %v, want ErrSyntax", err)
	}
}

func TestJoin(t *testing.T) {
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"/usr/bin/bash", "-c", "</dev/tcp/127.0.0.1/80"}, `/usr/bin/bash -c '</dev/tcp/127.0.0.1/80'`},
		{[]string{"/x", "", "a b", `it's`, `c:\d`, "$HOME"}, `/x '' 'a b' 'it\'s' 'c:\\d' '$HOME'`},
		{nil, ""},
	} {
		if got := Join(c.words); got != c.want {
			t.Errorf("Join(%q) = %s, want %s", c.words, got, c.want)
		}
		if back, err := Split(c.want); len(c.words) > 0 && (err != nil || !slices.Equal(back, c.words)) {
			t.Errorf("Split(%s) = %q, %v; want %q", c.want, back, err, c.words)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"/usr/local/bin/vrrp.sh MASTER VI_1", "bash -c '</dev/tcp/127.0.0.1/80'", `a"b c"d`, `'a\'b'`,
		`\x4`, `\c`, `\777`, `"`, `\`, `a '' ""`, "\t\v\f", `\0`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if words, err := SplitQuoted(line); err == nil && (len(words) > len(line) || len(strings.Join(words, "")) > len(line)) {
			t.Fatalf("SplitQuoted(%q) = %q: longer than its input", line, words)
		}
		words, err := Split(line)
		if err != nil {
			if !errors.Is(err, ErrSyntax) || words != nil {
				t.Fatalf("Split(%q): %q, %v: an error must wrap ErrSyntax and come alone", line, words, err)
			}
			return
		}
		total := 0
		for _, w := range words {
			total += len(w)
			if strings.IndexByte(w, 0) >= 0 {
				t.Fatalf("Split(%q): word %q holds a NUL", line, w)
			}
		}
		if len(words) == 0 || len(words) > len(line) || total > len(line) {
			t.Fatalf("Split(%q): %d words of %d bytes from %d bytes", line, len(words), total, len(line))
		}
		// A line without quotes, backslashes or NULs splits as on blanks.
		if !strings.ContainsAny(line, `"'\`+"\x00") && !slices.Equal(words, strings.FieldsFunc(line, func(r rune) bool { return r < 0x80 && isBlank(byte(r)) })) {
			t.Fatalf("Split(%q) = %q: differs from splitting on blanks", line, words)
		}
		// Join quotes them back.
		joined := Join(words)
		again, err := Split(joined)
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("Split(%q) = %q; joined back %q splits to %q, %v", line, words, joined, again, err)
		}
	})
}
