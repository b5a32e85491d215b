package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

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
	newMigrateTopic,
	newVersionCommand,
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
	// An unknown flag anywhere is a usage error; subcommands that set their own keep theirs.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	return asGroup(root, exitUsage)
}

// asGroup makes a command that only holds subcommands reject an unknown one with the given exit
// code instead of printing its help and exiting 0, which would let a typo in a script pass.
// Without arguments the help is printed.
// newGroup is a command that only holds children (diagnose, explain, rules); see asGroup.
func newGroup(use, short string, code int, children ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	cmd.AddCommand(children...)
	return asGroup(cmd, code)
}

func asGroup(cmd *cobra.Command, code int) *cobra.Command {
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
		}
		return &exitError{code: code, err: fmt.Errorf("%s (run %s --help for the list)", msg, c.CommandPath())}
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	return cmd
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
