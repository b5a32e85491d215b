package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/drift"
)

const (
	// AnnotationAutoRestart, set to "true" on a namespace or a Deployment, StatefulSet or
	// DaemonSet, lets the operator restart that workload when its pods drift. Restarts are never
	// done without it: a restart drops connections, and only the owner can judge when that is
	// acceptable.
	AnnotationAutoRestart = "meshkeeper.io/auto-restart"
	// AnnotationRestartedAt is written into the pod template to roll the workload, the same
	// mechanism as `kubectl rollout restart`. Its value also serves as the rate limit's memory,
	// so the limit survives operator restarts.
	AnnotationRestartedAt = "meshkeeper.io/restartedAt"
	// EventReasonAutoRestart is the reason of the event recorded for each restart.
	EventReasonAutoRestart = "AutoRestart"
)

// needsRestart says whether a pod's verdict is one a new pod fixes.
func needsRestart(conds []corev1.PodCondition) bool {
	if c := drift.Find(conds, conditions.PodExclusionsInSync); c != nil && c.Status == corev1.ConditionFalse && c.Reason == conditions.Drifted {
		return true
	}
	c := drift.Find(conds, conditions.PodSidecarInjected)
	return c != nil && c.Status == corev1.ConditionFalse && c.Reason == conditions.SidecarMissing
}

// optedIn reads the opt-in annotation; only the exact value "true" counts.
func optedIn(annotations map[string]string) bool {
	return strings.TrimSpace(annotations[AnnotationAutoRestart]) == "true"
}

// restartDue decides whether a workload last restarted at last may be restarted at now. When it
// may not, wait is how long until it may.
func restartDue(last, now time.Time, minInterval time.Duration) (due bool, wait time.Duration) {
	if last.IsZero() {
		return true, 0
	}
	if elapsed := now.Sub(last); elapsed < minInterval {
		return false, minInterval - elapsed
	}
	return true, 0
}

// restartLimiter remembers restarts made by this process, so that a stale read of the workload
// cannot lead to a second restart within the interval.
// It also remembers, for a short while, workloads found not to have opted in, so that every
// reconcile of their drifted pods does not read the workload again.
type restartLimiter struct {
	mu         sync.Mutex
	last       map[drift.Workload]time.Time
	notOptedIn map[drift.Workload]time.Time
}

// optInRecheck is how long a "not opted in" answer is trusted.
const optInRecheck = time.Minute

func newRestartLimiter() *restartLimiter {
	return &restartLimiter{last: map[drift.Workload]time.Time{}, notOptedIn: map[drift.Workload]time.Time{}}
}

func (l *restartLimiter) skip(w drift.Workload, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.notOptedIn[w]
	return ok && now.Sub(t) < optInRecheck
}

func (l *restartLimiter) markNotOptedIn(w drift.Workload, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notOptedIn[w] = now
}

func (l *restartLimiter) get(w drift.Workload) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[w]
}

func (l *restartLimiter) set(w drift.Workload, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last[w] = t
}

// claim takes the right to restart w at now, when no restart of w happened or was claimed within
// minInterval. Drifted pods of one workload are reconciled concurrently: checking and recording
// in two steps let each of them restart the workload. release gives back a claim whose restart
// did not happen.
func (l *restartLimiter) claim(w drift.Workload, now time.Time, minInterval time.Duration) (ok bool, previous time.Time, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	previous = l.last[w]
	if due, wait := restartDue(previous, now, minInterval); !due {
		return false, previous, wait
	}
	l.last[w] = now
	return true, previous, 0
}

func (l *restartLimiter) release(w drift.Workload, claimed, previous time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last[w].Equal(claimed) {
		l.last[w] = previous
	}
}

// workloadObject returns an empty typed object for a restartable workload kind.
func workloadObject(kind string) (client.Object, *corev1.PodTemplateSpec) {
	switch kind {
	case drift.KindDeployment:
		d := &appsv1.Deployment{}
		return d, &d.Spec.Template
	case drift.KindStatefulSet:
		s := &appsv1.StatefulSet{}
		return s, &s.Spec.Template
	case drift.KindDaemonSet:
		d := &appsv1.DaemonSet{}
		return d, &d.Spec.Template
	}
	return nil, nil
}

// remediate restarts the pod's workload when the pod drifted, the namespace or the workload
// opted in, and the workload was not restarted within the minimum interval.
func (r *PodReconciler) remediate(ctx context.Context, in drift.Input, conds []corev1.PodCondition) (ctrl.Result, error) {
	w := drift.WorkloadOf(in.Pod)
	if !needsRestart(conds) || !w.Restartable() {
		return ctrl.Result{}, nil
	}
	now := r.Options.now()
	if due, wait := restartDue(r.restarts.get(w), now, r.Options.minInterval()); !due {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if !optedIn(in.Namespace.Annotations) && r.restarts.skip(w, now) {
		return ctrl.Result{}, nil
	}
	obj, tmpl := workloadObject(w.Kind)
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: w.Name}, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !optedIn(in.Namespace.Annotations) && !optedIn(obj.GetAnnotations()) {
		r.restarts.markNotOptedIn(w, now)
		return ctrl.Result{}, nil
	}
	last, _ := time.Parse(time.RFC3339, tmpl.Annotations[AnnotationRestartedAt])
	if due, wait := restartDue(last, now, r.Options.minInterval()); !due {
		r.restarts.set(w, last)
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	claimed, previous, wait := r.restarts.claim(w, now, r.Options.minInterval())
	if !claimed {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	// The resourceVersion makes the patch conditional on the workload read above: a restart
	// written meanwhile (by another replica that led before) turns this one into a conflict,
	// and the next reconcile reads the newer restartedAt.
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": obj.GetResourceVersion()},
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{AnnotationRestartedAt: now.UTC().Format(time.RFC3339)}}}}})
	if err != nil {
		r.restarts.release(w, now, previous)
		return ctrl.Result{}, err
	}
	if err := r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		r.restarts.release(w, now, previous)
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, fmt.Errorf("restarting %s %s/%s: %w", w.Kind, w.Namespace, w.Name, err)
	}
	autoRestarts.WithLabelValues(w.Namespace, w.Kind).Inc()
	r.Recorder.Eventf(obj, in.Pod, corev1.EventTypeNormal, EventReasonAutoRestart, "Restart",
		"restarted %s %s because pod %s no longer matches %s (%s is set); next restart no sooner than %s",
		w.Kind, w.Name, in.Pod.Name, in.Mesh.WithGeneration(), AnnotationAutoRestart, now.Add(r.Options.minInterval()).UTC().Format(time.RFC3339))
	return ctrl.Result{}, nil
}
