package main

import (
	"context"
	"flag"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshkeeper/meshkeeper/controllers"
	"github.com/meshkeeper/meshkeeper/internal/injection"
)

// driftFlags tune the drift controllers.
var driftFlags struct {
	maxConcurrent      int
	autoRestartMinWait time.Duration
}

func init() {
	flag.IntVar(&driftFlags.maxConcurrent, "drift-max-concurrent-reconciles", 8,
		"Pods evaluated in parallel by the drift controller.")
	flag.DurationVar(&driftFlags.autoRestartMinWait, "auto-restart-min-interval", 10*time.Minute,
		"Least time between two restarts of one workload by the opt-in auto-restart (annotation meshkeeper.io/auto-restart: \"true\").")
	setupFuncs = append(setupFuncs, setupDrift)
}

func setupDrift(ctx context.Context, mgr ctrl.Manager, o *Options) error {
	cluster, err := o.ClusterRanges()
	if err != nil {
		return err
	}
	return controllers.SetupDrift(ctx, mgr, controllers.DriftOptions{
		ClusterRanges:           cluster,
		MeshConfig:              o.MeshConfig,
		Selection:               injection.SelectOptions{MeshName: o.MeshName, OperatorNamespace: o.OperatorNamespace},
		MaxConcurrentReconciles: driftFlags.maxConcurrent,
		AutoRestartMinInterval:  driftFlags.autoRestartMinWait,
	})
}
