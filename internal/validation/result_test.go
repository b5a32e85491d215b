package validation

import (
	"strings"
	"testing"
)

// expect describes what a validation must report: every string in errs must appear in the
// aggregated error text, every string in warns in some warning; no errors (or warnings) at all
// when the list is empty.
type expect struct {
	errs  []string
	warns []string
}

func (e expect) check(t *testing.T, r Result) {
	t.Helper()
	agg := ""
	if len(r.Errors) > 0 {
		agg = r.Errors.ToAggregate().Error()
	}
	if len(e.errs) == 0 && agg != "" {
		t.Errorf("unexpected errors: %s", agg)
	}
	if len(e.errs) > 0 && agg == "" {
		t.Errorf("expected errors mentioning %q, got none", e.errs)
	}
	for _, want := range e.errs {
		if !strings.Contains(agg, want) {
			t.Errorf("errors %q do not mention %q", agg, want)
		}
	}
	all := strings.Join(r.Warnings, "\n")
	if len(e.warns) == 0 && len(r.Warnings) > 0 {
		t.Errorf("unexpected warnings: %s", all)
	}
	for _, want := range e.warns {
		if !strings.Contains(all, want) {
			t.Errorf("warnings %q do not mention %q", all, want)
		}
	}
}
