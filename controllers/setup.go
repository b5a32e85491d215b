package controllers

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
)

// EventSource names meshkeeper's drift controllers in the events they record.
const EventSource = "meshkeeper-drift"

// SetupDrift registers the pod and MeshConfig drift controllers. The manager's cache should be
// built with CacheOptions so that pods are trimmed.
func SetupDrift(ctx context.Context, mgr ctrl.Manager, opts DriftOptions) error {
	pods := &PodReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
		Recorder: mgr.GetEventRecorder(EventSource), Options: opts}
	if err := pods.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("pod drift controller: %w", err)
	}
	if err := (&MeshConfigReconciler{Client: mgr.GetClient(), Options: opts}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("meshconfig controller: %w", err)
	}
	return nil
}
