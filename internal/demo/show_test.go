package demo

import (
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

func TestShellJoin(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"get", "pods", "-n", "shop"}, "get pods -n shop"},
		{[]string{"get", "meshconfig", "-A"}, "get meshconfig -A"},
		{[]string{"-o", `jsonpath={.status}{"\n"}`}, `-o 'jsonpath={.status}{"\n"}'`},
		{[]string{"-p", `{"a":"it's"}`}, `-p '{"a":"it'\''s"}'`},
		{[]string{""}, "''"},
		{[]string{"a b"}, "'a b'"},
		{[]string{"$HOME"}, "'$HOME'"},
	}
	for _, tt := range tests {
		if got := ShellJoin(tt.args); got != tt.want {
			t.Errorf("ShellJoin(%q) = %s, want %s", tt.args, got, tt.want)
		}
	}
}

func TestIndent(t *testing.T) {
	if got := Indent("a\n\nb\n", "  "); got != "  a\n\n  b\n" {
		t.Errorf("Indent = %q", got)
	}
	if got := Indent("\n", "  "); got != "" {
		t.Errorf("Indent of nothing = %q", got)
	}
}

// The custom columns must name the condition types the controllers write.
func TestPodColumnsNameTheConditions(t *testing.T) {
	for _, typ := range []string{conditions.PodSidecarInjected, conditions.PodRedirectionApplied, conditions.PodExclusionsInSync} {
		if !strings.Contains(PodColumns, `@.type=="`+typ+`"`) {
			t.Errorf("PodColumns does not select %s", typ)
		}
	}
}
