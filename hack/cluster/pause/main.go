// Command pause is the sandbox container of every pod on the real-node cluster: it holds the
// pod's namespaces open, reaps the zombies of its pid namespace and exits on SIGTERM or SIGINT.
// Built static into the pause image by hack/imagebuild (no registry is reachable to pull one).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
