package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// PodColumns is the custom-columns view of pods with meshkeeper's three conditions, by reason:
// the reason is the word a person scans for (Injected, Applied, InSync, Drifted, ...).
const PodColumns = "NAME:.metadata.name," +
	"PHASE:.status.phase," +
	`SIDECAR:.status.conditions[?(@.type=="meshkeeper.io/SidecarInjected")].reason,` +
	`REDIRECTION:.status.conditions[?(@.type=="meshkeeper.io/RedirectionApplied")].reason,` +
	`EXCLUSIONS:.status.conditions[?(@.type=="meshkeeper.io/ExclusionsInSync")].reason`

// Shell shows the commands a person would type to see the demo's state, and their output. The
// commands run for real (kubectl against the demo's kubeconfig, the meshkeeper CLI), always as
// argv, never through a shell; the line printed above the output is how to type them.
type Shell struct {
	Out        io.Writer
	Kubeconfig string
	// KubectlBin is the kubectl binary; empty when none was found, in which case the commands are
	// printed for later use and the demo relies on its own checks.
	KubectlBin string
	// Dir is where commands run (the repository root, so bin/meshkeeper resolves).
	Dir string
}

// FindKubectl looks for kubectl on PATH, then next to the envtest binaries (hack/envtest.sh
// links the machine's kubectl there).
func FindKubectl(assets string) string {
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p
	}
	p := filepath.Join(assets, "kubectl")
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// Kubectl prints and runs `kubectl args...`.
func (s *Shell) Kubectl(ctx context.Context, args ...string) {
	fmt.Fprintf(s.Out, "\n    $ kubectl %s\n", ShellJoin(args))
	if s.KubectlBin == "" {
		fmt.Fprintln(s.Out, "      (kubectl is not installed here; the demo checks the same through the API)")
		return
	}
	s.run(ctx, s.KubectlBin, args)
}

// Command prints and runs a program from the repository (display is how it is typed).
func (s *Shell) Command(ctx context.Context, bin string, args ...string) {
	fmt.Fprintf(s.Out, "\n    $ %s %s\n", bin, ShellJoin(args))
	s.run(ctx, filepath.Join(s.Dir, bin), args)
}

func (s *Shell) run(ctx context.Context, bin string, args []string) {
	if ctx.Err() != nil {
		fmt.Fprintln(s.Out, "      (not run: interrupted)")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.Kubeconfig)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	fmt.Fprint(s.Out, Indent(buf.String(), "      "))
	if err != nil {
		fmt.Fprintf(s.Out, "      (%s: %v)\n", filepath.Base(bin), err)
	}
}

// Indent prefixes every non-empty line of text and ends it with a newline.
func Indent(text, prefix string) string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return ""
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// ShellJoin renders argv the way a person types it into a POSIX shell: arguments that a shell
// would split or expand are single-quoted.
func ShellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if strings.IndexFunc(s, unsafeInShell) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Has reports whether a program of the repository accepts the given arguments (exit code 0),
// to tell which commands this build offers.
func (s *Shell) Has(ctx context.Context, bin string, args ...string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.Dir, bin), args...)
	cmd.Dir = s.Dir
	return cmd.Run() == nil
}

// unsafeInShell reports runes a POSIX shell would treat specially somewhere in a word.
func unsafeInShell(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("-_./:=,@%+", r)
}
