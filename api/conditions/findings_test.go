package conditions

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// Finding codes are PascalCase, fit the schema's 64 characters and are unique.
func TestFindingCodes(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "findings.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || !strings.HasPrefix(vs.Names[0].Name, "Finding") {
			return true
		}
		code, _ := strconv.Unquote(vs.Values[0].(*ast.BasicLit).Value)
		if !reasonPattern.MatchString(code) || len(code) > 64 {
			t.Errorf("%s = %q is not a valid code", vs.Names[0].Name, code)
		}
		if other, dup := seen[code]; dup {
			t.Errorf("%s and %s share code %q", other, vs.Names[0].Name, code)
		}
		seen[code] = vs.Names[0].Name
		return true
	})
	if len(seen) < 20 {
		t.Fatalf("found %d codes; the parser is looking at the wrong thing", len(seen))
	}
}

// The policy reasons are part of the vocabulary for exactly the statuses the controllers use.
func TestPolicyReasonsInVocabulary(t *testing.T) {
	for _, c := range []struct {
		typ, status, reason string
		want                bool
	}{
		{Ready, "False", Bypassed, true},
		{Ready, "False", TargetPortMismatch, true},
		{Stalled, "True", Bypassed, true},
		{Stalled, "True", TargetPortMismatch, true},
		{Stalled, "True", FeatureDisabled, true},
		{Stalled, "True", RefNotFound, false},
		{Ready, "True", Bypassed, false},
	} {
		if got := Allowed(c.typ, c.status, c.reason); got != c.want {
			t.Errorf("Allowed(%s, %s, %s) = %v, want %v", c.typ, c.status, c.reason, got, c.want)
		}
	}
}
