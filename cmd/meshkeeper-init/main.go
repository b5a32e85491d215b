package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshkeeper/meshkeeper/internal/initrunner"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := initrunner.Main(ctx, os.Args[1:], os.Getenv, initrunner.OSExecutor{}, os.Stderr)
	stop()
	os.Exit(code)
}
