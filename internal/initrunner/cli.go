package initrunner

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

const usage = `usage: meshkeeper-init apply --ipv4-rules TEXT [--ipv6-rules TEXT] [--pod-ip-env NAME] [--backend auto|nft|legacy] [--timeout DURATION]

Loads iptables-restore input for the nat table into the pod's network namespace.
Only the nat table, OSM_PROXY_* chains and hooks from PREROUTING/OUTPUT are accepted.
`

// Main is the whole program behind cmd/meshkeeper-init; it returns the exit code. Progress goes
// to stderr line by line (kubectl logs -c meshkeeper-init); a failure ends with exactly one line
// starting "meshkeeper-init: error:".
func Main(ctx context.Context, args []string, getenv func(string) string, ex Executor, stderr io.Writer) int {
	log := &prefixWriter{w: stderr, prefix: "meshkeeper-init: "}
	fail := func(err error) int {
		msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
		fmt.Fprintf(stderr, "meshkeeper-init: error: %s\n", msg)
		return 1
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fail(errors.New("missing verb: the only verb is apply"))
	}
	switch args[0] {
	case "apply":
	case "help", "-h", "--help":
		fmt.Fprint(stderr, usage)
		return 0
	default:
		fmt.Fprint(stderr, usage)
		return fail(fmt.Errorf("unknown verb %q: the only verb is apply", clip(args[0])))
	}

	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	var flagErr bytes.Buffer
	fs.SetOutput(&flagErr)
	var o Options
	fs.StringVar(&o.IPv4Rules, "ipv4-rules", "", "iptables-restore input (nat table) for IPv4")
	fs.StringVar(&o.IPv6Rules, "ipv6-rules", "", "ip6tables-restore input (nat table) for IPv6; skipped when IPv6 is disabled in the pod")
	fs.StringVar(&o.PodIPEnv, "pod-ip-env", "", "environment variable holding the pod IP, substituted for the placeholder in the rules")
	fs.StringVar(&o.Backend, "backend", BackendAuto, "iptables backend: auto, nft or legacy")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	if err := fs.Parse(args[1:]); err != nil {
		fmt.Fprint(stderr, usage)
		return fail(fmt.Errorf("apply: %v", err))
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("apply: unexpected argument %q", clip(fs.Arg(0))))
	}
	seen := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { seen[f.Name] = true })
	if !seen["ipv4-rules"] && !seen["ipv6-rules"] {
		return fail(errors.New("apply: --ipv4-rules or --ipv6-rules is required"))
	}
	if *timeout <= 0 {
		return fail(fmt.Errorf("apply: --timeout %s must be positive", *timeout))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	o.Getenv, o.Exec, o.Log = getenv, ex, log
	if err := Apply(ctx, o); err != nil {
		return fail(err)
	}
	fmt.Fprintf(log, "done\n")
	return 0
}

// prefixWriter starts every line with a fixed prefix so interleaved output stays attributable.
type prefixWriter struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for _, c := range b {
		if !p.midLine {
			out.WriteString(p.prefix)
			p.midLine = true
		}
		out.WriteByte(c)
		if c == '\n' {
			p.midLine = false
		}
	}
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
