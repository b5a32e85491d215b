package manager

import (
	"context"
	"testing"
	"time"
)

// The stop signal makes the manager unready at once; its own context ends only when the delay
// has passed (here: when the test fires the timer), or at once without a delay.
func TestDrain(t *testing.T) {
	fire := make(chan time.Time)
	d := newDrain(5 * time.Second)
	var asked time.Duration
	d.after = func(got time.Duration) <-chan time.Time { asked = got; return fire }
	parent, stop := context.WithCancel(context.Background())
	announced := make(chan time.Duration, 1)
	ctx, cancel := d.context(parent, func(delay time.Duration) { announced <- delay })
	defer cancel()
	if err := d.check(nil); err != nil {
		t.Fatalf("ready check before the stop: %v", err)
	}
	stop()
	if got := <-announced; got != 5*time.Second {
		t.Errorf("announced delay %s, want 5s", got)
	}
	if d.check(nil) == nil {
		t.Error("still ready after the stop signal")
	}
	select {
	case <-ctx.Done():
		t.Fatal("the manager's context ended before the delay")
	default:
	}
	fire <- time.Time{}
	<-ctx.Done()
	if asked != 5*time.Second {
		t.Errorf("waited for %s, want 5s", asked)
	}

	// Without a delay (no webhooks served), the stop is passed on directly.
	d = newDrain(0)
	d.after = func(time.Duration) <-chan time.Time { t.Error("a zero delay must not wait"); return nil }
	parent, stop = context.WithCancel(context.Background())
	ctx, cancel = d.context(parent, func(time.Duration) { t.Error("nothing to announce without a delay") })
	defer cancel()
	stop()
	<-ctx.Done()
}
