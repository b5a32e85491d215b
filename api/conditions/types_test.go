package conditions

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"regexp"
	"strings"
	"testing"
)

var (
	// reasonPattern is PascalCase, a subset of what metav1.Condition accepts for reasons.
	reasonPattern = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	// typePattern is metav1.Condition's pattern for types (optionally domain-prefixed).
	typePattern = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$`)
)

// stringConsts returns the untyped string constants declared in types.go, by name.
func stringConsts(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if vs.Type != nil {
				continue // typed constants (Polarity, int64) are not vocabulary
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				out[name.Name] = constant.StringVal(constant.MakeFromLiteral(lit.Value, lit.Kind, 0))
			}
		}
	}
	return out
}

func TestVocabularyIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, ti := range Vocabulary {
		if seen[ti.Type] {
			t.Errorf("type %q listed twice", ti.Type)
		}
		seen[ti.Type] = true
		if !typePattern.MatchString(ti.Type) {
			t.Errorf("type %q does not fit metav1.Condition's type pattern", ti.Type)
		}
		if ti.Pod != strings.HasPrefix(ti.Type, "meshkeeper.io/") {
			t.Errorf("type %q: pod condition types, and only they, carry the meshkeeper.io/ prefix", ti.Type)
		}
		if ti.Polarity != PositivePolarity && ti.Polarity != NegativePolarity {
			t.Errorf("type %q: polarity %q", ti.Type, ti.Polarity)
		}
		if len(ti.True) == 0 || len(ti.False) == 0 {
			t.Errorf("type %q needs reasons for True and False", ti.Type)
		}
		for _, list := range [][]string{ti.True, ti.False, ti.Unknown} {
			dup := map[string]bool{}
			for _, r := range list {
				if !reasonPattern.MatchString(r) {
					t.Errorf("type %q: reason %q is not PascalCase", ti.Type, r)
				}
				if dup[r] {
					t.Errorf("type %q: reason %q listed twice for one status", ti.Type, r)
				}
				dup[r] = true
			}
		}
	}
}

// TestEveryConstantIsInTheVocabulary keeps the constants and Vocabulary in step: a reason or type
// declared but never listed would be undocumented to tools that read Vocabulary.
func TestEveryConstantIsInTheVocabulary(t *testing.T) {
	types := map[string]bool{}
	reasons := map[string]bool{}
	for _, ti := range Vocabulary {
		types[ti.Type] = true
		for _, list := range [][]string{ti.True, ti.False, ti.Unknown} {
			for _, r := range list {
				reasons[r] = true
			}
		}
	}
	consts := stringConsts(t)
	if len(consts) < 20 {
		t.Fatalf("found only %d constants in types.go; the parser is looking at the wrong thing", len(consts))
	}
	for name, value := range consts {
		if !types[value] && !reasons[value] {
			t.Errorf("constant %s = %q is neither a type nor a reason in Vocabulary", name, value)
		}
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		typ, status, reason string
		want                bool
	}{
		{Ready, "True", Succeeded, true},
		{Ready, "False", InvalidSpec, true},
		{Ready, "Unknown", Progressing, true},
		{Ready, "True", InvalidSpec, false},
		{Ready, "Maybe", Succeeded, false},
		{Stalled, "True", InvalidSpec, true},
		{Reconciling, "True", Progressing, true},
		{PodExclusionsInSync, "False", Drifted, true},
		{PodExclusionsInSync, "True", Drifted, false},
		{PodExclusionsInSync, "Unknown", RulesUnreadable, true},
		{PodExclusionsInSync, "False", RulesUnreadable, false},
		{Ready, "False", Drifted, false},
		{PodsInSync, "True", InSync, true},
		{PodsInSync, "False", Drifted, true},
		{PodsInSync, "False", PodsFailed, true},
		{PodsInSync, "Unknown", Ignored, false},
		{PodsInSync, "Unknown", InvalidSpec, true},
		{PodRedirectionApplied, "False", InitContainerFailed, true},
		{PodExclusionsInSync, "Unknown", NotMeshed, false},
		{"Bogus", "True", Succeeded, false},
	}
	for _, tt := range tests {
		if got := Allowed(tt.typ, tt.status, tt.reason); got != tt.want {
			t.Errorf("Allowed(%q, %q, %q) = %v, want %v", tt.typ, tt.status, tt.reason, got, tt.want)
		}
	}
}

func TestIsHealthy(t *testing.T) {
	tests := []struct {
		typ, status string
		want        bool
	}{
		{Ready, "True", true},
		{Ready, "False", false},
		{Ready, "Unknown", false},
		{Stalled, "True", false},
		{Stalled, "False", true},
		{Reconciling, "True", false},
		{Reconciling, "False", true},
		{PodExclusionsInSync, "True", true},
		{PodsInSync, "False", false},
		{"example.com/Custom", "True", true},
		{"example.com/Custom", "False", false},
	}
	for _, tt := range tests {
		if got := IsHealthy(tt.typ, tt.status); got != tt.want {
			t.Errorf("IsHealthy(%q, %q) = %v, want %v", tt.typ, tt.status, got, tt.want)
		}
	}
}

func TestKstatusNames(t *testing.T) {
	// kstatus, Flux and Argo CD match these exact strings.
	for got, want := range map[string]string{Ready: "Ready", Reconciling: "Reconciling", Stalled: "Stalled"} {
		if got != want {
			t.Errorf("condition type %q, want %q", got, want)
		}
	}
}
