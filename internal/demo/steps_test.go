package demo

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	ctx := context.Background()
	t.Run("met after a few looks", func(t *testing.T) {
		n := 0
		out := Wait(ctx, time.Minute, time.Millisecond, nil, func(context.Context) (bool, string, error) {
			n++
			return n == 3, "look " + string(rune('0'+n)), nil
		})
		if !out.OK || out.Attempts != 3 || out.Detail != "look 3" || out.Aborted != "" {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("never met keeps the last detail", func(t *testing.T) {
		out := Wait(ctx, 20*time.Millisecond, time.Millisecond, nil, func(context.Context) (bool, string, error) {
			return false, "phase Pending", nil
		})
		if out.OK || out.Detail != "phase Pending" || out.Attempts < 1 {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("a failed look is retried, not a verdict", func(t *testing.T) {
		n := 0
		out := Wait(ctx, time.Minute, time.Millisecond, nil, func(context.Context) (bool, string, error) {
			n++
			if n == 1 {
				return true, "", errors.New("connection refused")
			}
			return true, "fine", nil
		})
		if !out.OK || out.Attempts != 2 || out.Detail != "fine" {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("an error of the last look is reported", func(t *testing.T) {
		out := Wait(ctx, 5*time.Millisecond, time.Millisecond, nil, func(context.Context) (bool, string, error) {
			return false, "", errors.New("connection refused")
		})
		if out.OK || !strings.Contains(out.Detail, "could not look: connection refused") {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("a dead process stops the wait", func(t *testing.T) {
		out := Wait(ctx, time.Hour, time.Millisecond, func() error { return errors.New("manager exited") },
			func(context.Context) (bool, string, error) { return false, "not yet", nil })
		if out.OK || out.Aborted != "manager exited" || out.Attempts != 1 {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("met wins over a dead process", func(t *testing.T) {
		out := Wait(ctx, time.Hour, time.Millisecond, func() error { return errors.New("manager exited") },
			func(context.Context) (bool, string, error) { return true, "done", nil })
		if !out.OK || out.Aborted != "" {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		out := Wait(cctx, time.Hour, time.Hour, nil, func(context.Context) (bool, string, error) { return false, "x", nil })
		if out.OK || out.Aborted != "interrupted" {
			t.Fatalf("outcome %+v", out)
		}
	})
}

func TestSummaryAndExitCode(t *testing.T) {
	pass := Result{Step: "1. a", Expect: "pods in sync", Outcome: Outcome{OK: true}}
	fail := Result{Step: "2. b", Expect: "pods drifted", Outcome: Outcome{Detail: "InSync"}}
	aborted := Result{Step: "2. b", Expect: "counted", Outcome: Outcome{OK: true, Aborted: "manager exited"}}
	tests := []struct {
		name       string
		results    []Result
		wantFailed int
		wantCode   int
		wantText   []string
	}{
		{"all met", []Result{pass, pass}, 0, 0, []string{"[ok  ] 1. a: pods in sync", "2 of 2 expectations met"}},
		{"one failed", []Result{pass, fail}, 1, 1, []string{"[FAIL] 2. b: pods drifted", "1 of 2 expectations met"}},
		{"aborted counts as failed", []Result{aborted}, 1, 1, []string{"[FAIL] 2. b: counted"}},
		{"nothing checked", nil, 1, 1, []string{"nothing was checked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, failed := Summary(tt.results)
			if failed != tt.wantFailed {
				t.Errorf("failed = %d, want %d", failed, tt.wantFailed)
			}
			if code := ExitCode(tt.results); code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(text, w) {
					t.Errorf("summary lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

func TestFormatResult(t *testing.T) {
	tests := []struct {
		r    Result
		want []string
	}{
		{Result{Expect: "node Ready", Outcome: Outcome{OK: true, Detail: "Ready=True", Waited: 1500 * time.Millisecond}},
			[]string{"[ok]   node Ready (1.5s)", "Ready=True"}},
		{Result{Expect: "pods drifted", Outcome: Outcome{Detail: "", Waited: time.Minute}},
			[]string{"[FAIL] pods drifted: not seen within 1m0s", "last seen: (nothing)"}},
		{Result{Expect: "pods drifted", Outcome: Outcome{Aborted: "manager exited", Detail: "InSync"}},
			[]string{"[FAIL] pods drifted: stopped waiting", "manager exited", "last seen: InSync"}},
	}
	for _, tt := range tests {
		got := FormatResult(tt.r)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("FormatResult(%+v) = %q, lacks %q", tt.r, got, w)
			}
		}
	}
}

func TestRunnerRecordsUnderSteps(t *testing.T) {
	var out bytes.Buffer
	r := &Runner{Out: &out, Timeout: time.Second, Interval: time.Millisecond}
	r.Section("bring-up")
	r.Record("node Ready", true, "")
	r.Step("drift")
	r.Expect(context.Background(), "pods drifted", func(context.Context) (bool, string, error) { return true, "Drifted", nil })
	if len(r.Results) != 2 || r.Results[0].Step != "bring-up" || r.Results[1].Step != "1. drift" {
		t.Fatalf("results %+v", r.Results)
	}
	if !strings.Contains(out.String(), "==> Step 1. drift") {
		t.Errorf("output lacks the step header:\n%s", out.String())
	}
}

func TestShouldHold(t *testing.T) {
	tests := []struct {
		setting  string
		terminal bool
		want     bool
		wantErr  bool
	}{
		{"", true, true, false},
		{"", false, false, false},
		{"1", true, true, false},
		{"1", false, false, false},
		{"0", true, false, false},
		{"0", false, false, false},
		{"yes", true, false, true},
	}
	for _, tt := range tests {
		got, err := ShouldHold(tt.setting, tt.terminal)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ShouldHold(%q, %v) = %v, %v; want %v, error %v", tt.setting, tt.terminal, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "DEMO_HOLD") {
			t.Errorf("error %q does not name DEMO_HOLD", err)
		}
	}
}
