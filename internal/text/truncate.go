package text

import "unicode/utf8"

// ellipsis marks a shortened text.
const ellipsis = "..."

// Truncate returns s when it fits in n bytes, otherwise its longest prefix that, followed by
// "...", fits in n bytes and ends on a character boundary.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= len(ellipsis) {
		return ellipsis[:max(n, 0)]
	}
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
