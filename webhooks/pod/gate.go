package pod

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
)

// Gate says whether injection is paused and why. It starts paused until the first look at the
// cluster's webhook configurations: injecting before knowing whether another injector serves the
// same mesh could give a pod two sidecars, which the API server refuses.
type Gate struct {
	reason atomic.Pointer[string]
}

// NewGate returns a gate paused until Resume.
func NewGate() *Gate {
	g := &Gate{}
	g.Pause("meshkeeper has not yet checked the cluster for another injector of this mesh")
	return g
}

// Pause stops injection; reason is told to every pod creation and to the readiness probe.
func (g *Gate) Pause(reason string) { g.reason.Store(&reason) }

// Resume lets injection run.
func (g *Gate) Resume() { g.reason.Store(nil) }

// Paused returns why injection is paused, if it is.
func (g *Gate) Paused() (string, bool) {
	if r := g.reason.Load(); r != nil {
		return *r, true
	}
	return "", false
}

// Check is a readiness check: not ready while paused. The pod webhook's failurePolicy is Ignore,
// so a not-ready replica never blocks a pod; it shows up in kubectl get pods with the reason in
// the probe's message.
func (g *Gate) Check(*http.Request) error {
	if r, paused := g.Paused(); paused {
		return errors.New(r)
	}
	return nil
}

// InjectorWatch pauses injection while another mutating webhook injects pods of the same mesh
// (OSM's osm-webhook-<mesh>, see injection.OtherInjectors), and resumes it once that is gone. It
// is a runnable of every replica, not a leader-elected controller: every replica serves the
// webhook and keeps its own gate. It looks once the cache has synced, whether or not any webhook
// configuration exists, and again on every change.
type InjectorWatch struct {
	Cache      cache.Cache
	Recorder   events.EventRecorder
	Gate       *Gate
	MeshName   string
	Own        string
	MeshConfig types.NamespacedName
	last       string
}

var (
	_ manager.Runnable               = (*InjectorWatch)(nil)
	_ manager.LeaderElectionRunnable = (*InjectorWatch)(nil)
)

// NeedLeaderElection is false: see InjectorWatch.
func (w *InjectorWatch) NeedLeaderElection() bool { return false }

// Start evaluates after the cache syncs and after every change until ctx ends.
func (w *InjectorWatch) Start(ctx context.Context) error {
	inf, err := w.Cache.GetInformer(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{})
	if err != nil {
		return fmt.Errorf("watching mutating webhook configurations: %w", err)
	}
	poke := make(chan struct{}, 1)
	notify := func(any) {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: notify, UpdateFunc: func(_, o any) { notify(o) }, DeleteFunc: notify,
	}); err != nil {
		return err
	}
	if !w.Cache.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	log := ctrl.LoggerFrom(ctx).WithName("injector-watch")
	for {
		if err := w.evaluate(ctrl.LoggerInto(ctx, log)); err != nil {
			log.Error(err, "checking for other injectors")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poke:
		}
	}
}

func (w *InjectorWatch) evaluate(ctx context.Context) error {
	list := &admissionregistrationv1.MutatingWebhookConfigurationList{}
	if err := w.Cache.List(ctx, list); err != nil {
		return err
	}
	others := injection.OtherInjectors(list.Items, w.MeshName, w.Own)
	now := strings.Join(others, ",")
	// Nothing changed, unless the gate is still paused from the start and nothing conflicts.
	_, paused := w.Gate.Paused()
	if now == w.last && (!paused || now != "") {
		return nil
	}
	log := ctrl.LoggerFrom(ctx)
	if len(others) == 0 {
		w.Gate.Resume()
		if w.last != "" {
			log.Info("no other injector serves the mesh any more: injection resumed", "mesh", w.MeshName)
			w.event(ctx, corev1.EventTypeNormal, "InjectionResumed", fmt.Sprintf("no other mutating webhook injects pods of mesh %s: meshkeeper injects again", w.MeshName))
		}
		w.last = ""
		return nil
	}
	reason := injection.InjectorConflictMessage(w.MeshName, others)
	w.Gate.Pause(reason)
	log.Error(nil, reason, "mesh", w.MeshName, "injectors", others)
	w.event(ctx, corev1.EventTypeWarning, "InjectorConflict", reason)
	w.last = now
	return nil
}

// event tells the served MeshConfig, where kubectl describe meshconfig shows it.
func (w *InjectorWatch) event(ctx context.Context, kind, reason, msg string) {
	if w.Recorder == nil {
		return
	}
	mc := &configv1alpha2.MeshConfig{}
	if err := w.Cache.Get(ctx, w.MeshConfig, mc); err != nil {
		return
	}
	w.Recorder.Eventf(mc, nil, kind, reason, "Inject", "%s", msg)
}
