package main

import (
	"flag"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/meshkeeper/meshkeeper/internal/manager"
	"github.com/meshkeeper/meshkeeper/internal/version"
)

func main() {
	o := manager.Options{Version: version.Get().Version}
	o.Bind(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := manager.Run(ctrl.SetupSignalHandler(), ctrl.GetConfigOrDie(), &o); err != nil {
		ctrl.Log.WithName("setup").Error(err, "manager stopped")
		os.Exit(1)
	}
}
