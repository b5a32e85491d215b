package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// verbs builds the top-level commands. New verbs (diagnose, explain, analyze, ...) are added by
// appending their constructor here; each receives the same streams.
var verbs = []func(genericiooptions.IOStreams) *cobra.Command{
	newRulesCommand,
	newDiagnoseCommand,
	newExplainCommand,
	newAnalyzeCommand,
}

// NewRootCommand returns the meshkeeper command tree writing to the given streams.
func NewRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:           "meshkeeper",
		Short:         "Inspect and explain the traffic redirection of meshed pods",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	for _, v := range verbs {
		root.AddCommand(v(streams))
	}
	return root
}

// Run executes the command line and returns the process exit code, printing any error on the
// error stream.
func Run(args []string, streams genericiooptions.IOStreams) int {
	root := NewRootCommand(streams)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(streams.ErrOut, err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// exitError carries a specific exit code (e.g. 2 for a difference, not a failure).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// readInput reads FILE, or standard input for "-", and returns the name to use in messages.
func readInput(streams genericiooptions.IOStreams, file string) ([]byte, string, error) {
	if file == "-" {
		data, err := io.ReadAll(streams.In)
		return data, "<stdin>", err
	}
	data, err := os.ReadFile(file)
	return data, file, err
}
