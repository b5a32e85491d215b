package initrunner

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func saveWith(rules int) string {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n")
	for range rules {
		b.WriteString("-A INPUT -j ACCEPT\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func TestSelectBackend(t *testing.T) {
	onlyNFT := allInstalled()
	for _, n := range []string{"iptables-legacy-restore", "iptables-legacy-save"} {
		delete(onlyNFT, n)
	}
	onlyPlain := map[string]bool{"iptables-restore": true, "iptables-save": true}
	tests := []struct {
		name      string
		mode      string
		installed map[string]bool
		out       map[string]string
		fail      map[string]string
		want      string
		wantErr   string
		wantLog   string
	}{
		{name: "both empty prefers nft", mode: "auto", installed: allInstalled(), want: "nft"},
		{name: "legacy holds rules", mode: "auto", installed: allInstalled(),
			out: map[string]string{"iptables-legacy-save": saveWith(3)}, want: "legacy"},
		{name: "legacy holds IPv6 rules only", mode: "auto", installed: allInstalled(),
			out: map[string]string{"ip6tables-legacy-save": saveWith(1)}, want: "legacy"},
		{name: "nft holds rules", mode: "auto", installed: allInstalled(),
			out: map[string]string{"iptables-nft-save": saveWith(2)}, want: "nft"},
		{name: "both hold rules, more wins", mode: "auto", installed: allInstalled(),
			out:  map[string]string{"iptables-nft-save": saveWith(2), "iptables-legacy-save": saveWith(5)},
			want: "legacy", wantLog: "warning: both nft and legacy"},
		{name: "nft save fails", mode: "auto", installed: allInstalled(),
			fail: map[string]string{"iptables-nft-save": "Could not fetch rule set generation id: Invalid argument"},
			want: "legacy", wantLog: "nft: iptables-nft-save failed: exit status 1: Could not fetch rule set generation id"},
		{name: "only nft installed", mode: "auto", installed: onlyNFT, want: "nft", wantLog: "legacy: not installed"},
		{name: "only plain installed", mode: "auto", installed: onlyPlain, want: "iptables"},
		{name: "nothing works", mode: "auto", installed: allInstalled(),
			fail:    map[string]string{"iptables-nft-save": "boom", "iptables-legacy-save": "bang"},
			wantErr: "no usable iptables backend (nft: iptables-nft-save failed: exit status 1: boom; legacy: iptables-legacy-save failed: exit status 1: bang)"},
		{name: "forced legacy ignores rules elsewhere", mode: "legacy", installed: allInstalled(),
			out: map[string]string{"iptables-nft-save": saveWith(9)}, want: "legacy"},
		{name: "forced nft missing", mode: "nft", installed: map[string]bool{},
			wantErr: "backend nft: iptables-nft-restore not found in PATH"},
		{name: "unknown mode", mode: "xtables", installed: allInstalled(),
			wantErr: `--backend "xtables" is not one of auto, nft, legacy`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := &fakeExec{installed: tc.installed, out: tc.out, fail: tc.fail}
			var log bytes.Buffer
			b, err := SelectBackend(context.Background(), ex, tc.mode, &log)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Name != tc.want {
				t.Errorf("backend = %s, want %s (log: %s)", b.Name, tc.want, log.String())
			}
			if !strings.Contains(log.String(), tc.wantLog) {
				t.Errorf("log %q lacks %q", log.String(), tc.wantLog)
			}
			for _, c := range ex.calls {
				if !strings.HasSuffix(c.Name, "-save") {
					t.Errorf("probing ran %s, which is not read-only", c.Name)
				}
			}
		})
	}
}
