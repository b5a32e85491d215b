package manager

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
)

func TestLoggedCheckLogsChangesOnly(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	var verdict error
	check := loggedCheck("webhook", func(*http.Request) error { return verdict }, log)

	steps := []struct {
		verdict error
		logged  string // a substring of the one line logged, "" for none
	}{
		{nil, ""},
		{nil, ""},
		{errors.New("webhook certificate not ready"), `"check"="webhook" "reason"="webhook certificate not ready"`},
		{errors.New("webhook certificate not ready"), ""},
		{errors.New("another injector serves the mesh"), `"reason"="another injector serves the mesh"`},
		{nil, `"previousReason"="another injector serves the mesh"`},
		{nil, ""},
	}
	for i, s := range steps {
		lines = nil
		verdict = s.verdict
		if err := check(nil); !errors.Is(err, s.verdict) {
			t.Errorf("step %d: the check returned %v, want %v", i, err, s.verdict)
		}
		got := strings.Join(lines, "\n")
		switch {
		case s.logged == "" && len(lines) != 0:
			t.Errorf("step %d: logged %q, want nothing", i, got)
		case s.logged != "" && (len(lines) != 1 || !strings.Contains(got, s.logged)):
			t.Errorf("step %d: logged %q, want one line with %s", i, got, s.logged)
		}
	}
}
