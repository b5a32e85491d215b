package controllers

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

var policyCRDs sync.Once

// installPolicyCRDs adds the Egress and IngressBackend CRDs, with their schema rules, to the
// shared control plane the first time a policy test needs them.
func installPolicyCRDs(t testing.TB) {
	t.Helper()
	var err error
	policyCRDs.Do(func() {
		var root string
		if root, err = testenv.RepoRoot(); err != nil {
			return
		}
		base := filepath.Join(root, "config", "crd", "bases")
		_, err = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{
			filepath.Join(base, "policy.openservicemesh.io_egresses.yaml"),
			filepath.Join(base, "policy.openservicemesh.io_ingressbackends.yaml"),
		}, ErrorIfPathMissing: true})
	})
	must(t, err)
}

// policyHarness is a running manager with the Egress and IngressBackend controllers.
type policyHarness struct {
	opts   PolicyOptions
	client *counter
	events *recorder
	cancel context.CancelFunc
	done   chan error
}

// startPolicyManager runs the policy controllers for mesh, served by MeshConfig
// <mesh>-system/<mesh>-config (the same layout newWorld creates), with writes counted.
func startPolicyManager(t testing.TB, mesh string) *policyHarness {
	t.Helper()
	installPolicyCRDs(t)
	opts := PolicyOptions{MeshConfig: types.NamespacedName{Namespace: mesh + "-system", Name: mesh + "-config"}, MeshName: mesh}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(cacheOptionsFor(DriftOptions{MeshConfig: opts.MeshConfig})),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	must(t, err)
	h := &policyHarness{opts: opts, client: newCounter(mgr.GetClient()),
		events: &recorder{EventRecorder: mgr.GetEventRecorder(PolicyEventSource)}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	must(t, IndexPolicyFields(ctx, mgr))
	must(t, (&EgressReconciler{policyDeps{Client: h.client, Recorder: h.events, Options: opts}}).SetupWithManager(mgr))
	must(t, (&IngressBackendReconciler{policyDeps{Client: h.client, Recorder: h.events, Options: opts}}).SetupWithManager(mgr))
	go func() { h.done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("manager stopped with: %v", err)
		}
	})
	return h
}

// statusWrites counts the status patches sent for objects of type obj.
func (h *policyHarness) statusWrites(obj runtime.Object) int {
	w, _ := h.client.Writes()
	return w[fmt.Sprintf("%T", obj)+"/status"]
}

// kstatusOf reads obj back from the API server and computes its kstatus.
func kstatusOf(t testing.TB, obj client.Object) kstatus.Status {
	t.Helper()
	must(t, env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj))
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	must(t, err)
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: u})
	must(t, err)
	return res.Status
}

// checkVocabulary fails on any condition outside the documented vocabulary.
func checkVocabulary(t testing.TB, conds []metav1.Condition) {
	t.Helper()
	for _, c := range conds {
		if !conditions.Allowed(c.Type, string(c.Status), c.Reason) {
			t.Errorf("condition %s=%s reason %s is not in the vocabulary", c.Type, c.Status, c.Reason)
		}
	}
}

func conditionString(conds []metav1.Condition, typ string) string {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return "absent"
	}
	return string(c.Status) + "/" + c.Reason
}
