// Command meshkeeper inspects and explains the traffic redirection of meshed pods. It is also
// installed as kubectl-meshkeeper.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshkeeper/meshkeeper/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
}
