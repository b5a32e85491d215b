package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"sigs.k8s.io/yaml"
)

// Exit codes of diagnose, explain and analyze (docs/cli.md lists them).
const (
	// exitProblems: a check failed, a finding reached --fail-on, or the explained connection is
	// black-holed.
	exitProblems = 1
	// exitUsage: bad flags, arguments or input files.
	exitUsage = 2
	// exitCluster: the cluster could not be used (no kubeconfig, unreachable, credentials
	// rejected, RBAC forbidden, object not found).
	exitCluster = 3
)

func usageError(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// withUsageErrors makes flag and argument errors of cmd exit with exitUsage.
func withUsageErrors(cmd *cobra.Command) *cobra.Command {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			return nil
		}
	}
	return cmd
}

// output is the -o flag of the troubleshooting verbs.
type output string

const (
	outputTable output = "table"
	outputJSON  output = "json"
	outputYAML  output = "yaml"
)

func (o output) validate() error {
	switch o {
	case outputTable, outputJSON, outputYAML:
		return nil
	}
	return usageError("--output %q: use table, json or yaml", string(o))
}

// writeData prints v as JSON or YAML.
func writeData(w io.Writer, o output, v any) error {
	if o == outputYAML {
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	return writeJSON(w, v)
}

// palette colours table cells; it is empty unless stdout is a terminal and NO_COLOR is unset.
type palette struct{ on bool }

func paletteFor(w io.Writer) palette {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return palette{}
	}
	return palette{on: term.IsTerminal(int(f.Fd()))}
}

var colours = map[string]string{
	"pass": "32", "warn": "33", "fail": "31", "skip": "90",
	"Info": "36", "Warning": "33", "Error": "31",
}

// paint colours s by its own value (a status or severity). The escape codes are added after the
// padding so that tabwriter keeps columns aligned.
func (p palette) paint(s string, width int) string {
	padded := s + strings.Repeat(" ", max(0, width-len(s)))
	code, ok := colours[s]
	if !p.on || !ok {
		return padded
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m" + strings.Repeat(" ", max(0, width-len(s)))
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// oneLine keeps table cells on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
