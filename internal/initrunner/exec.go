package initrunner

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
)

// Command is one program run: a name looked up in PATH, its arguments, and what it reads on
// stdin. There is deliberately no way to express a shell line.
type Command struct {
	Name  string
	Args  []string
	Stdin []byte
}

// Result is what a finished command wrote.
type Result struct {
	Stdout []byte
	Stderr []byte
}

// Executor runs commands. The real one execs; tests substitute a recorder that checks argv and
// stdin without a kernel.
type Executor interface {
	// LookPath reports whether a program is installed, as exec.LookPath does.
	LookPath(name string) (string, error)
	// Run runs the command to completion. A non-zero exit is an error; the Result still holds
	// what the program wrote so the caller can report its stderr.
	Run(ctx context.Context, c Command) (Result, error)
}

// OSExecutor runs programs with os/exec.
type OSExecutor struct{}

// LookPath implements Executor.
func (OSExecutor) LookPath(name string) (string, error) { return exec.LookPath(name) }

// Run implements Executor.
func (OSExecutor) Run(ctx context.Context, c Command) (Result, error) {
	if c.Name == "" {
		return Result{}, errors.New("empty command name")
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	err := cmd.Run()
	return Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}, err
}
