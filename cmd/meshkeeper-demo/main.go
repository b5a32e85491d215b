package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/meshkeeper/meshkeeper/internal/demo"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

func main() {
	timeout := flag.Duration("timeout", 60*time.Second, "How long each step waits for what it expects.")
	hold := flag.String("hold", os.Getenv("DEMO_HOLD"), "0 exits right after the scenario; 1 or empty keep everything running until Ctrl-C when stdin is a terminal (default $DEMO_HOLD).")
	flag.Parse()

	holding, err := demo.ShouldHold(*hold, stdinIsTerminal())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "run the demo from the meshkeeper repository (make demo):", err)
		os.Exit(2)
	}
	if os.Getenv(testenv.AssetsEnv) == "" {
		fmt.Println("meshkeeper demo: locating kube-apiserver and etcd (hack/envtest.sh builds them on first use)")
	}
	assets, err := testenv.Assets(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := demo.Run(ctx, demo.Options{
		Root:    root,
		Dir:     filepath.Join(root, ".demo"),
		Assets:  assets,
		Hold:    holding,
		Timeout: *timeout,
		Out:     os.Stdout,
	})
	stop()
	os.Exit(code)
}

func stdinIsTerminal() bool {
	st, err := os.Stdin.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
