package testenv

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	cases := []struct {
		name, line string
		want       time.Duration
		comm       string
		wantErr    bool
	}{
		{"plain", "4242 (etcd) S 1 4242 4242 0 -1 4194560 1 0 0 0 150 25 0 0 20 0 9 0 100 0 0", 1750 * time.Millisecond, "etcd", false},
		{"a command with spaces and parentheses", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5", 70 * time.Millisecond, "a (b) c", false},
		{"cut short", "7 (x) R 1 2 3", 0, "", true},
		{"no command", "7 x R", 0, "", true},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 u s 0 0", 0, "", true},
	}
	for _, c := range cases {
		got, comm, err := parseStat(c.line)
		if (err != nil) != c.wantErr || got != c.want || comm != c.comm {
			t.Errorf("%s: parseStat = %v, %q, %v; want %v, %q, error %v", c.name, got, comm, err, c.want, c.comm, c.wantErr)
		}
	}
}

// TestCPUReadersAgree: this process's time read through getrusage lies between two /proc
// readings taken around it, give or take a clock tick each side (/proc counts whole ticks of
// 10 ms): both readers count the same thing in the same unit.
func TestCPUReadersAgree(t *testing.T) {
	end := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
		_ = x * x
	}
	before, _, err := PIDCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self, err := ProcessCPU()
	if err != nil {
		t.Fatal(err)
	}
	after, _, err := PIDCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	const tick = 20 * time.Millisecond
	if self <= 0 || self < before-tick || self > after+tick {
		t.Errorf("getrusage %v, /proc %v before and %v after: want getrusage between them, give or take %v", self, before, after, tick)
	}
}
