package main

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshkeeper/meshkeeper/controllers"
)

func init() {
	setupFuncs = append(setupFuncs, setupPolicy)
}

// setupPolicy registers the Egress and IngressBackend controllers, judged against the same
// MeshConfig and mesh as the drift controllers.
func setupPolicy(ctx context.Context, mgr ctrl.Manager, o *Options) error {
	return controllers.SetupPolicy(ctx, mgr, controllers.PolicyOptions{MeshConfig: o.MeshConfig, MeshName: o.MeshName})
}
