package controllers

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
)

// EventSource names meshkeeper's drift controllers (pods, MeshConfig) in the events they record.
const EventSource = "meshkeeper-drift"

// PolicyEventSource names the Egress and IngressBackend controllers in the events they record.
const PolicyEventSource = "meshkeeper-policy"

// SetupDrift registers the pod and MeshConfig drift controllers, and the Istio pod counter when
// Istio's pods are judged. The manager's cache should be
// built with CacheOptions so that pods are trimmed.
func SetupDrift(ctx context.Context, mgr ctrl.Manager, opts DriftOptions) error {
	pods := &PodReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
		Recorder: mgr.GetEventRecorder(EventSource), Options: opts}
	if err := pods.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("pod drift controller: %w", err)
	}
	if err := (&MeshConfigReconciler{Client: mgr.GetClient(), Recorder: pods.Recorder, Options: opts}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("meshconfig controller: %w", err)
	}
	if opts.IstioNamespace != "" {
		if err := (&IstioPodCounter{Client: mgr.GetClient(), Options: opts}).SetupWithManager(mgr); err != nil {
			return fmt.Errorf("istio pod counter: %w", err)
		}
	}
	return nil
}
