package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Benchmarks that claim a ratio compare CPU time, not wall-clock time, because on a shared machine
// CPU time moves far less with what else runs. These two readers are the one way the tree measures
// it, for this process and for the control-plane processes or servers a benchmark starts.

// ProcessCPU is the user+system CPU time this process has used so far.
func ProcessCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// PIDCPU is the user+system CPU time process pid has used so far and its command name, from
// /proc/PID/stat (clock ticks of 10 ms: fine over the seconds a benchmark phase lasts).
func PIDCPU(pid int) (time.Duration, string, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", err
	}
	return parseStat(string(raw))
}

// parseStat reads a /proc/PID/stat line. The command name is in parentheses and may hold spaces
// and parentheses itself, so fields are counted after the last ")": state is the first, utime
// and stime the 12th and 13th.
func parseStat(stat string) (time.Duration, string, error) {
	open, closing := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || closing < open {
		return 0, "", fmt.Errorf("unexpected /proc stat line %q", stat)
	}
	fields := strings.Fields(stat[closing+1:])
	if len(fields) < 13 {
		return 0, "", fmt.Errorf("unexpected /proc stat line %q: %d fields after the command", stat, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, "", fmt.Errorf("unexpected /proc stat line %q: %w", stat, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, stat[open+1 : closing], nil
}

// LoadAverage is /proc/loadavg's first three fields ("unknown" where it cannot be read): every
// figure a test or benchmark logs carries the load it was measured under.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
