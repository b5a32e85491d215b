package demo

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// Check looks at the cluster once. ok says whether it shows what the step expects; detail says
// what was seen, in words a person can act on. An error is a failed look (the apiserver did not
// answer), not a verdict: the check is simply tried again.
type Check func(ctx context.Context) (ok bool, detail string, err error)

// Outcome is what waiting for a Check produced.
type Outcome struct {
	OK       bool
	Detail   string
	Attempts int
	Waited   time.Duration
	// Aborted is set when waiting stopped early: the context ended or a process the scenario
	// depends on exited.
	Aborted string
}

// Result is one expectation of one step, as recorded for the summary.
type Result struct {
	Step   string
	Expect string
	Outcome
}

// Passed reports whether the expectation was met.
func (r Result) Passed() bool { return r.OK && r.Aborted == "" }

// Wait calls check every interval until it reports ok, timeout passes, ctx ends or alive
// reports an error (a process the check relies on is gone, so waiting longer cannot help).
// The detail of the last look is kept: on a timeout it says what was seen instead.
func Wait(ctx context.Context, timeout, interval time.Duration, alive func() error, check Check) Outcome {
	start := time.Now()
	deadline := start.Add(timeout)
	var out Outcome
	for {
		out.Attempts++
		ok, detail, err := check(ctx)
		switch {
		case err != nil:
			out.Detail = "could not look: " + err.Error()
		default:
			out.Detail = detail
		}
		out.Waited = time.Since(start)
		if ok && err == nil {
			out.OK = true
			return out
		}
		if alive != nil {
			if err := alive(); err != nil {
				out.Aborted = err.Error()
				return out
			}
		}
		if ctx.Err() != nil {
			out.Aborted = "interrupted"
			return out
		}
		left := time.Until(deadline)
		if left <= 0 {
			return out
		}
		select {
		case <-ctx.Done():
			out.Aborted = "interrupted"
			return out
		case <-time.After(min(interval, left)):
		}
	}
}

// Runner prints the scenario as it goes and records whether each expectation was met.
type Runner struct {
	Out      io.Writer
	Timeout  time.Duration
	Interval time.Duration
	// Alive is consulted between looks; see Wait.
	Alive func() error

	step    string
	steps   int
	Results []Result
}

// Step starts a numbered section of the scenario.
func (r *Runner) Step(title string) {
	r.steps++
	r.step = fmt.Sprintf("%d. %s", r.steps, title)
	fmt.Fprintf(r.Out, "\n==> Step %s\n", r.step)
}

// Section starts an unnumbered part of the run, such as bring-up.
func (r *Runner) Section(title string) {
	r.step = title
	fmt.Fprintf(r.Out, "\n==> %s\n", title)
}

// Say prints a line of narration under the current step.
func (r *Runner) Say(format string, args ...any) {
	fmt.Fprintf(r.Out, "    "+format+"\n", args...)
}

// Expect waits for check and records the outcome under the current step.
func (r *Runner) Expect(ctx context.Context, what string, check Check) bool {
	fmt.Fprintf(r.Out, "    ... waiting up to %s: %s\n", r.Timeout, what)
	out := Wait(ctx, r.Timeout, r.Interval, r.Alive, check)
	res := Result{Step: r.step, Expect: what, Outcome: out}
	r.Results = append(r.Results, res)
	fmt.Fprintln(r.Out, FormatResult(res))
	return res.Passed()
}

// Record adds an expectation that was decided without waiting (for example, an action the
// apiserver had to refuse).
func (r *Runner) Record(what string, ok bool, detail string) bool {
	res := Result{Step: r.step, Expect: what, Outcome: Outcome{OK: ok, Detail: detail, Attempts: 1}}
	r.Results = append(r.Results, res)
	fmt.Fprintln(r.Out, FormatResult(res))
	return ok
}

// FormatResult renders one result as the line printed under its step.
func FormatResult(r Result) string {
	switch {
	case r.Passed():
		line := fmt.Sprintf("    [ok]   %s (%s)", r.Expect, r.Waited.Round(100*time.Millisecond))
		if r.Detail != "" {
			line += "\n           " + r.Detail
		}
		return line
	case r.Aborted != "":
		return fmt.Sprintf("    [FAIL] %s: stopped waiting after %s: %s\n           last seen: %s", r.Expect, r.Waited.Round(100*time.Millisecond), r.Aborted, orNothing(r.Detail))
	default:
		return fmt.Sprintf("    [FAIL] %s: not seen within %s\n           last seen: %s", r.Expect, r.Waited.Round(100*time.Millisecond), orNothing(r.Detail))
	}
}

func orNothing(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return s
}

// Summary renders the results as a table of steps and says how many expectations failed; the
// demo's exit code is non-zero exactly when failed > 0 or nothing was checked at all.
func Summary(results []Result) (text string, failed int) {
	var b strings.Builder
	b.WriteString("\n==> Summary\n")
	if len(results) == 0 {
		b.WriteString("    nothing was checked\n")
		return b.String(), 1
	}
	for _, r := range results {
		mark := "ok  "
		if !r.Passed() {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(&b, "    [%s] %s: %s\n", mark, r.Step, r.Expect)
	}
	fmt.Fprintf(&b, "    %d of %d expectations met\n", len(results)-failed, len(results))
	return b.String(), failed
}

// ExitCode is the process exit code for a finished scenario.
func ExitCode(results []Result) int {
	if _, failed := Summary(results); failed > 0 {
		return 1
	}
	return 0
}

// ShouldHold decides whether the demo keeps running after the scenario. setting is DEMO_HOLD:
// "0" never holds; "1" or empty hold only for a person at a terminal, so CI and pipelines
// (stdin not a terminal) always finish by themselves.
func ShouldHold(setting string, stdinTerminal bool) (bool, error) {
	switch setting {
	case "":
		return stdinTerminal, nil
	case "0":
		return false, nil
	case "1":
		return stdinTerminal, nil
	default:
		return false, fmt.Errorf("DEMO_HOLD=%q: want 0, 1 or empty", setting)
	}
}
