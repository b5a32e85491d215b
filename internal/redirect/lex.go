package redirect

import (
	"fmt"
	"strings"
)

// posError is an error at a byte offset of the root text being parsed. It is turned into a
// ParseError (line and column) once, at the top, so inner parsers never count lines.
type posError struct {
	off int
	msg string
}

func (e *posError) Error() string { return e.msg }

func errAt(off int, msg string) *posError { return &posError{off: off, msg: msg} }

// tok is a word with the offset of its first byte in the root text.
type tok struct {
	s   string
	off int
}

// splitFields splits one iptables-restore line into words, honouring double quotes the way
// iptables-restore does (used by --comment). base is the offset of line in the root text.
func splitFields(line string, base int, dst []tok) ([]tok, *posError) {
	// iptables-save never writes a control character, and iptables-restore would cut a word at
	// a NUL: such a line was not written by iptables, and no rendering of it reads back the same.
	for j := 0; j < len(line); j++ {
		if c := line[j]; (c < 0x20 && c != '\t' && c != '\r') || c == 0x7f {
			return dst, errAt(base+j, fmt.Sprintf("control character %#02x in a rule line", c))
		}
	}
	i := 0
	for i < len(line) {
		c := line[i]
		if c == ' ' || c == '\t' || c == '\r' {
			i++
			continue
		}
		start := i
		if c == '"' {
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				return dst, errAt(base+i, "unterminated double quote")
			}
			val := line[i+1 : i+1+j]
			if strings.IndexByte(val, '\\') >= 0 {
				return dst, errAt(base+i, "backslash escapes in quoted words are not supported")
			}
			dst = append(dst, tok{s: val, off: base + start})
			i += j + 2
			if i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' {
				return dst, errAt(base+i, "text directly after a closing quote")
			}
			continue
		}
		for i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' {
			if line[i] == '"' {
				return dst, errAt(base+i, "quote inside a word")
			}
			i++
		}
		dst = append(dst, tok{s: line[start:i], off: base + start})
	}
	return dst, nil
}

// Shell lexing. meshkeeper never runs OSM's `sh -c` scripts; it reads them. The lexer knows
// exactly the shell OSM generated (words, quotes, &&, ;, newlines, comments and here-documents)
// and reports everything else, notably command substitution, instead of guessing.

type sepKind uint8

const (
	sepEnd sepKind = iota
	sepAnd
	sepSemi
	sepNewline
)

// shCommand is one simple command: words[first:last] of the lexer's flat word list, plus a
// here-document body if the command had one.
type shCommand struct {
	first, last int
	sep         sepKind
	sepOff      int
	hasBody     bool
	body        string
	bodyOff     int // offset of body in the root text
	bodyExpand  bool
	bodyDelim   string
	heredocOff  int
}

type shLexer struct {
	s       string
	i       int
	base    int // offset of s[0] in the root text
	words   []tok
	cmds    []shCommand
	pending []int // indexes into cmds awaiting a here-document body
	scratch []byte
}

func isOpChar(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ';', '&', '|', '<', '>', '(', ')':
		return true
	}
	return false
}

// lexScript splits a script into commands.
func (l *shLexer) lexScript() *posError {
	cur := shCommand{first: len(l.words)}
	for {
		// skip blanks
		for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t' || l.s[l.i] == '\r') {
			l.i++
		}
		if l.i >= len(l.s) {
			if len(l.pending) > 0 {
				return errAt(l.base+l.i, "here-document is not terminated")
			}
			cur.last = len(l.words)
			cur.sep = sepEnd
			cur.sepOff = l.base + l.i
			l.cmds = append(l.cmds, cur)
			return nil
		}
		c := l.s[l.i]
		off := l.base + l.i
		switch {
		case c == '#' && (l.i == 0 || isOpChar(l.s[l.i-1])):
			for l.i < len(l.s) && l.s[l.i] != '\n' {
				l.i++
			}
			continue
		case c == '\n' || c == ';' || (c == '&' && strings.HasPrefix(l.s[l.i:], "&&")):
			sep := sepNewline
			switch c {
			case ';':
				sep = sepSemi
				l.i++
			case '&':
				sep = sepAnd
				l.i += 2
			default:
				l.i++
			}
			cur.last = len(l.words)
			cur.sep = sep
			cur.sepOff = off
			l.cmds = append(l.cmds, cur)
			l.fillPendingFrom(len(l.cmds) - 1)
			if c == '\n' {
				if err := l.readBodies(); err != nil {
					return err
				}
			}
			cur = shCommand{first: len(l.words)}
			continue
		case c == '<' && strings.HasPrefix(l.s[l.i:], "<<"):
			if cur.hasBody || cur.bodyDelim != "" {
				return errAt(off, "more than one here-document for a command")
			}
			l.i += 2
			if l.i < len(l.s) && l.s[l.i] == '-' {
				return errAt(off, "<<- here-documents are not supported")
			}
			for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t') {
				l.i++
			}
			dstart := l.i
			w, quoted, err := l.word()
			if err != nil {
				return err
			}
			if w == "" {
				return errAt(l.base+dstart, "missing here-document delimiter")
			}
			cur.bodyDelim = w
			cur.bodyExpand = !quoted
			cur.heredocOff = off
			l.pending = append(l.pending, -1) // placeholder; resolved when cur is appended
			continue
		case c == '&' || c == '|' || c == '<' || c == '>' || c == '(' || c == ')':
			op := string(c)
			if l.i+1 < len(l.s) && (l.s[l.i+1] == c) {
				op += string(c)
			}
			return errAt(off, "unsupported shell operator "+quote(op))
		}
		wstart := l.i
		w, _, err := l.word()
		if err != nil {
			return err
		}
		l.words = append(l.words, tok{s: w, off: l.base + wstart})
	}
}

func quote(s string) string { return "`" + s + "'" }

// fillPendingFrom resolves placeholder pending entries to the command just appended.
func (l *shLexer) fillPendingFrom(idx int) {
	for k, p := range l.pending {
		if p == -1 {
			l.pending[k] = idx
		}
	}
}

// readBodies reads the here-document bodies that start after the newline just consumed.
func (l *shLexer) readBodies() *posError {
	for _, idx := range l.pending {
		cmd := &l.cmds[idx]
		start := l.i
		found := false
		for l.i <= len(l.s) {
			end := strings.IndexByte(l.s[l.i:], '\n')
			var line string
			next := 0
			if end < 0 {
				line = l.s[l.i:]
				next = len(l.s)
			} else {
				line = l.s[l.i : l.i+end]
				next = l.i + end + 1
			}
			if strings.TrimRight(line, "\r") == cmd.bodyDelim {
				cmd.body = l.s[start:l.i]
				cmd.bodyOff = l.base + start
				cmd.hasBody = true
				l.i = next
				found = true
				break
			}
			if end < 0 {
				break
			}
			l.i = next
		}
		if !found {
			return errAt(cmd.heredocOff, "here-document is not terminated by a line "+quote(cmd.bodyDelim))
		}
		if cmd.bodyExpand {
			if err := checkBody(cmd.body, cmd.bodyOff); err != nil {
				return err
			}
		}
	}
	l.pending = l.pending[:0]
	return nil
}

// checkBody rejects expansions in an unquoted here-document other than $POD_IP, which OSM used
// for the pod address and which the rule parser maps to PodIPPlaceholder.
func checkBody(body string, base int) *posError {
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '`':
			return errAt(base+i, "command substitution is not allowed")
		case '\\':
			return errAt(base+i, "backslash in an unquoted here-document is not supported")
		case '$':
			if n := podIPVarLen(body[i:]); n > 0 {
				i += n - 1
				continue
			}
			if i+1 < len(body) && body[i+1] == '(' {
				return errAt(base+i, "command substitution is not allowed")
			}
			return errAt(base+i, "shell expansion is not allowed (only $POD_IP is understood)")
		}
	}
	return nil
}

// podIPVarLen returns the length of a leading $POD_IP or ${POD_IP} reference, or 0.
func podIPVarLen(s string) int {
	if strings.HasPrefix(s, "${"+PodIPEnvVar+"}") {
		return len(PodIPEnvVar) + 3
	}
	if strings.HasPrefix(s, "$"+PodIPEnvVar) {
		n := len(PodIPEnvVar) + 1
		if n < len(s) {
			c := s[n]
			if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
				return 0
			}
		}
		return n
	}
	return 0
}

// word reads one shell word starting at l.i. quoted reports whether any part was quoted (which
// matters for here-document delimiters).
func (l *shLexer) word() (string, bool, *posError) {
	start := l.i
	// Fast path: a plain word needs no copy.
	j := l.i
	for j < len(l.s) && !isOpChar(l.s[j]) {
		c := l.s[j]
		if c == '\'' || c == '"' || c == '\\' || c == '$' || c == '`' {
			break
		}
		j++
	}
	if j >= len(l.s) || isOpChar(l.s[j]) {
		l.i = j
		return l.s[start:j], false, nil
	}
	buf := l.scratch[:0]
	buf = append(buf, l.s[start:j]...)
	l.i = j
	quoted := false
	for l.i < len(l.s) && !isOpChar(l.s[l.i]) {
		c := l.s[l.i]
		switch c {
		case '\'':
			quoted = true
			end := strings.IndexByte(l.s[l.i+1:], '\'')
			if end < 0 {
				return "", false, errAt(l.base+l.i, "unterminated single quote")
			}
			buf = append(buf, l.s[l.i+1:l.i+1+end]...)
			l.i += end + 2
		case '"':
			quoted = true
			var err *posError
			if buf, err = l.doubleQuoted(buf); err != nil {
				return "", false, err
			}
		case '\\':
			if l.i+1 >= len(l.s) {
				return "", false, errAt(l.base+l.i, "backslash at end of input")
			}
			if l.s[l.i+1] != '\n' {
				buf = append(buf, l.s[l.i+1])
			}
			l.i += 2
		case '`', '$':
			var err *posError
			if buf, err = l.expansion(buf); err != nil {
				return "", false, err
			}
		default:
			buf = append(buf, c)
			l.i++
		}
	}
	l.scratch = buf
	return string(buf), quoted, nil
}

// doubleQuoted appends the text of the double-quoted string at l.i to buf and moves past its
// closing quote. Inside double quotes a backslash only escapes $ ` " \ and newline, and
// expansions are checked as they are outside.
func (l *shLexer) doubleQuoted(buf []byte) ([]byte, *posError) {
	qstart := l.i
	l.i++
	for l.i < len(l.s) {
		switch d := l.s[l.i]; d {
		case '"':
			l.i++
			return buf, nil
		case '\\':
			if l.i+1 < len(l.s) {
				switch e := l.s[l.i+1]; e {
				case '$', '`', '"', '\\':
					buf = append(buf, e)
					l.i += 2
					continue
				case '\n':
					l.i += 2
					continue
				}
			}
			buf = append(buf, d)
			l.i++
		case '`', '$':
			var err *posError
			if buf, err = l.expansion(buf); err != nil {
				return buf, err
			}
		default:
			buf = append(buf, d)
			l.i++
		}
	}
	return buf, errAt(l.base+qstart, "unterminated double quote")
}

// expansion handles the backquote or '$' at l.i, quoted or not: command substitution is
// refused, and the only expansion understood ($POD_IP) is kept literally for the rule parser.
func (l *shLexer) expansion(buf []byte) ([]byte, *posError) {
	if l.s[l.i] == '`' {
		return buf, errAt(l.base+l.i, "command substitution is not allowed")
	}
	n, err := l.dollar()
	if err != nil {
		return buf, err
	}
	buf = append(buf, l.s[l.i:l.i+n]...)
	l.i += n
	return buf, nil
}

// dollar checks an expansion at l.i and returns its length; only $POD_IP is accepted and it
// is kept literally for the rule parser.
func (l *shLexer) dollar() (int, *posError) {
	if n := podIPVarLen(l.s[l.i:]); n > 0 {
		return n, nil
	}
	if l.i+1 < len(l.s) && l.s[l.i+1] == '(' {
		return 0, errAt(l.base+l.i, "command substitution is not allowed")
	}
	return 0, errAt(l.base+l.i, "shell expansion is not allowed (only $POD_IP is understood)")
}

// CommandWords splits one pasted shell command into its words as a shell would (quotes and
// backslashes), and refuses operators, expansions and more than one command: it lets a tool
// read a command line someone copied from a pod spec or a log, never run one.
func CommandWords(s string) ([]string, error) {
	l := shLexer{s: s}
	if err := l.lexScript(); err != nil {
		return nil, toParseError(s, err)
	}
	var words []string
	for _, c := range l.cmds {
		if c.last <= c.first {
			continue
		}
		if words != nil || c.hasBody || (c.sep != sepEnd && c.sep != sepNewline) {
			return nil, &ParseError{Line: 1, Column: 1, Msg: "expected a single command"}
		}
		for _, w := range l.words[c.first:c.last] {
			words = append(words, w.s)
		}
	}
	if len(words) == 0 {
		return nil, &ParseError{Line: 1, Column: 1, Msg: "no command"}
	}
	return words, nil
}
