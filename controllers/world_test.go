package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

var ctx = context.Background()

// world is a mesh for one test: the MeshConfig's namespace, one application namespace in the
// mesh with injection enabled, and the MeshConfig itself.
type world struct {
	t    testing.TB
	mesh string
	app  string
	mc   types.NamespacedName
}

func newWorld(t testing.TB, mesh string, spec func(*configv1alpha2.MeshConfigSpec)) *world {
	t.Helper()
	w := &world{t: t, mesh: mesh, app: mesh + "-app",
		mc: types.NamespacedName{Namespace: mesh + "-system", Name: mesh + "-config"}}
	must(t, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.mc.Namespace}}))
	w.namespace(w.app, true)
	mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Namespace: w.mc.Namespace, Name: w.mc.Name}}
	if spec != nil {
		spec(&mc.Spec)
	}
	must(t, env.Client.Create(ctx, mc))
	return w
}

// namespace creates a namespace in this world's mesh, with injection on or off.
func (w *world) namespace(name string, inject bool) {
	w.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{injection.LabelMonitoredBy: w.mesh}}}
	if inject {
		ns.Annotations = map[string]string{injection.AnnotationSidecarInjection: "enabled"}
	}
	must(w.t, env.Client.Create(ctx, ns))
}

func (w *world) meshConfig() *configv1alpha2.MeshConfig {
	w.t.Helper()
	mc := &configv1alpha2.MeshConfig{}
	must(w.t, env.Client.Get(ctx, w.mc, mc))
	return mc
}

// updateMeshConfig changes the spec the way `kubectl edit` would.
func (w *world) updateMeshConfig(change func(*configv1alpha2.MeshConfigSpec)) *configv1alpha2.MeshConfig {
	w.t.Helper()
	mc := w.meshConfig()
	before := mc.DeepCopy()
	change(&mc.Spec)
	must(w.t, env.Client.Patch(ctx, mc, client.MergeFrom(before)))
	return mc
}

// appPod is a Deployment replica as the API server would hold it before injection.
func (w *world) appPod(deployment, suffix string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: deployment + "-5f7d8c-" + suffix, Namespace: w.app,
			Labels: map[string]string{"app": deployment, "pod-template-hash": "5f7d8c"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet",
				Name: deployment + "-5f7d8c", UID: "0f1c2a3b-0000-4000-8000-000000000001", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "app", Image: "example/" + deployment + ":v1"}}},
	}
}

// injected runs the real injector against the current MeshConfig, as the webhook would at
// admission.
func (w *world) injected(pod *corev1.Pod) *corev1.Pod {
	w.t.Helper()
	mc := w.meshConfig()
	out, err := injection.Inject(pod, &mc.Spec, injection.Options{MeshConfig: w.mc, MeshConfigGeneration: mc.Generation,
		Version: "test", DefaultEnvoyImage: "envoyproxy/envoy:v1.31.2", DefaultInitImage: "meshkeeper/init:test"})
	must(w.t, err)
	return out
}

// osmPod is a pod injected by OSM: an osm-init container running script through /bin/sh -c.
func (w *world) osmPod(deployment, suffix, script string) *corev1.Pod {
	pod := w.appPod(deployment, suffix)
	pod.Spec.InitContainers = []corev1.Container{{Name: redirect.OSMInitContainerName, Image: "openservicemesh/init:v1.2.4",
		Command: []string{"/bin/sh"}, Args: []string{"-c", script}}}
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: injection.SidecarName, Image: "envoyproxy/envoy:v1.22"})
	return pod
}

// kubeletConditions are what a kubelet reports for a running pod.
func kubeletConditions() []corev1.PodCondition {
	t := metav1.NewTime(time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC))
	return []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: t},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: t},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: t},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: t},
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: t},
	}
}

// initExited is the status a kubelet writes once the init container has exited with code.
func initExited(code int32, reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if len(p.Spec.InitContainers) == 0 {
			return
		}
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.InitContainers[0].Name, Image: p.Spec.InitContainers[0].Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason,
				StartedAt: metav1.NewTime(time.Date(2026, 11, 22, 1, 2, 0, 0, time.UTC)), FinishedAt: metav1.NewTime(time.Date(2026, 11, 22, 1, 2, 1, 0, time.UTC))}}}}
	}
}

// create stores the pod and then plays the kubelet: running phase, kubelet conditions and
// whatever the status functions add.
// Like a kubelet, it keeps conditions of other types that a controller may have written between
// the two steps, and retries on conflict.
func (w *world) create(pod *corev1.Pod, status ...func(*corev1.Pod)) *corev1.Pod {
	w.t.Helper()
	must(w.t, env.Client.Create(ctx, pod))
	key := client.ObjectKeyFromObject(pod)
	must(w.t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(ctx, key, pod); err != nil {
			return err
		}
		pod.Status.Phase = corev1.PodRunning
		for _, k := range kubeletConditions() {
			if c := drift.Find(pod.Status.Conditions, k.Type); c != nil {
				*c = k
			} else {
				pod.Status.Conditions = append(pod.Status.Conditions, k)
			}
		}
		for _, f := range status {
			f(pod)
		}
		return env.Client.Status().Update(ctx, pod)
	}))
	return pod
}

func (w *world) pod(name string) *corev1.Pod {
	w.t.Helper()
	pod := &corev1.Pod{}
	must(w.t, env.Client.Get(ctx, types.NamespacedName{Namespace: w.app, Name: name}, pod))
	return pod
}

// condition waits until the pod's condition t has the wanted status and reason, and returns it.
func (w *world) condition(name string, t corev1.PodConditionType, status corev1.ConditionStatus, reason string) corev1.PodCondition {
	w.t.Helper()
	var got corev1.PodCondition
	eventually(w.t, 30*time.Second, func() error {
		c := drift.Find(w.pod(name).Status.Conditions, t)
		if c == nil {
			return fmt.Errorf("pod %s has no %s condition", name, t)
		}
		got = *c
		if c.Status != status || c.Reason != reason {
			return fmt.Errorf("pod %s: %s=%s %s (%s), want %s %s", name, t, c.Status, c.Reason, c.Message, status, reason)
		}
		return nil
	})
	return got
}

func fixture(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "internal", "drift", "testdata", name))
	must(t, err)
	return string(data)
}

func (w *world) podIn(namespace, name string) *corev1.Pod {
	w.t.Helper()
	pod := &corev1.Pod{}
	must(w.t, env.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, pod))
	return pod
}
