package main

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshkeeper/meshkeeper/controllers"
	"github.com/meshkeeper/meshkeeper/internal/injection"
)

func init() {
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
		MaxConcurrentReconciles: o.DriftMaxConcurrent,
		AutoRestartMinInterval:  o.AutoRestartMinInterval,
	})
}
