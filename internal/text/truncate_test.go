package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456..."},
		{"ééééé", 8, "éé..."},     // 10 bytes; a cut at byte 5 would split the third é
		{"aéééé", 8, "aéé..."},    // the cut falls on a boundary
		{"日本語のテキスト", 10, "日本..."}, // three-byte characters
		{"anything", 2, ".."},
		{"anything", 0, ""},
	} {
		got := Truncate(tc.in, tc.n)
		if got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if !utf8.ValidString(got) || len(got) > max(tc.n, 0) {
			t.Errorf("Truncate(%q, %d) = %q: invalid UTF-8 or longer than %d bytes", tc.in, tc.n, got, tc.n)
		}
	}
	long := strings.Repeat("ü", 1000)
	if got := Truncate(long, 1024); len(got) > 1024 || !utf8.ValidString(got) {
		t.Errorf("event-sized truncation: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}
