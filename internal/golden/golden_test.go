package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder keeps Check's verdicts instead of failing this test.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()                           {}
func (r *recorder) Errorf(string, ...any)             { r.failed = true }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = true }
func (r *recorder) Fatal(args ...any)                 { r.failed = true }

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Chdir(wd) }()
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "x.golden"), []byte("same\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, got string
		fails     bool
	}{{"x.golden", "same\n", false}, {"x.golden", "other\n", true}, {"missing.golden", "x", true}} {
		r := &recorder{TB: t}
		Check(r, tc.name, []byte(tc.got))
		if r.failed != tc.fails {
			t.Errorf("Check(%s, %q) failed = %v, want %v", tc.name, tc.got, r.failed, tc.fails)
		}
	}
}
