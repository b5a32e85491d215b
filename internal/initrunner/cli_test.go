package initrunner

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestMainExitCodesAndErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantLast string // last stderr line
	}{
		{"no verb", nil, 1, "meshkeeper-init: error: missing verb: the only verb is apply"},
		{"unknown verb", []string{"run"}, 1, `meshkeeper-init: error: unknown verb "run": the only verb is apply`},
		{"no rules", []string{"apply"}, 1, "meshkeeper-init: error: apply: --ipv4-rules or --ipv6-rules is required"},
		{"unknown flag", []string{"apply", "--ipv4", "x"}, 1, "meshkeeper-init: error: apply: flag provided but not defined: -ipv4"},
		{"stray argument", []string{"apply", "--ipv4-rules", validV4, "extra"}, 1, `meshkeeper-init: error: apply: unexpected argument "extra"`},
		{"bad backend", []string{"apply", "--ipv4-rules", validV4, "--backend", "iptables"}, 1,
			`meshkeeper-init: error: --backend "iptables" is not one of auto, nft, legacy`},
		{"bad rules", []string{"apply", "--ipv4-rules", "*raw\nCOMMIT\n"}, 1,
			`meshkeeper-init: error: IPv4 rules line 1: table "raw" is not allowed: only the nat table may be changed`},
		{"ok", []string{"apply", "--ipv4-rules", validV4, "--ipv6-rules", "", "--backend", "nft"}, 0, "meshkeeper-init: done"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			ex := &fakeExec{installed: allInstalled()}
			code := Main(context.Background(), tc.args, func(string) string { return "" }, ex, &stderr)
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if code != tc.wantCode || lines[len(lines)-1] != tc.wantLast {
				t.Fatalf("code %d, last line %q; want %d, %q\nfull stderr:\n%s", code, lines[len(lines)-1], tc.wantCode, tc.wantLast, stderr.String())
			}
			if code != 0 && strings.Count(stderr.String(), "error:") != 1 {
				t.Errorf("want exactly one error line:\n%s", stderr.String())
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "meshkeeper-init: ") && code == 0 {
					t.Errorf("log line without prefix: %q", l)
				}
			}
		})
	}
}
