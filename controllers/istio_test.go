package controllers

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
)

// istioWorld adds an Istio control-plane namespace with the default revision's injector
// ConfigMap, and an application namespace labelled istio-injection=enabled, beside the OSM world.
type istioWorld struct {
	*world
	controlPlane string
	shop         string
}

const istioTestValues = `{"global":{"proxy":{"includeIPRanges":"*","excludeIPRanges":"10.0.0.0/24","includeInboundPorts":"*","excludeInboundPorts":"","excludeOutboundPorts":"","statusPort":15020}},"pilot":{"cni":{"enabled":false}}}`

func newIstioWorld(t *testing.T, mesh string) *istioWorld {
	w := &istioWorld{world: newWorld(t, mesh, nil), controlPlane: mesh + "-istio-system", shop: mesh + "-shop"}
	must(t, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.controlPlane}}))
	must(t, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.shop,
		Labels: map[string]string{"istio-injection": "enabled"}}}))
	cm := podtest.IstioInjectorConfigMap(istioTestValues)
	cm.Namespace = w.controlPlane
	must(t, env.Client.Create(ctx, cm))
	return w
}

// setValues replaces the injector's values the way `istioctl install` or a Helm upgrade does.
func (w *istioWorld) setValues(values string) {
	w.t.Helper()
	cm := &corev1.ConfigMap{}
	must(w.t, env.Client.Get(ctx, types.NamespacedName{Namespace: w.controlPlane, Name: istio.InjectorConfigMapName}, cm))
	cm.Data[istio.InjectorValuesKey] = values
	must(w.t, env.Client.Update(ctx, cm))
}

// istioPod is a Deployment replica in the shop namespace as Istio's injector leaves it.
func (w *istioWorld) istioPod(name string, shape func(*podtest.PodBuilder) *podtest.PodBuilder) *corev1.Pod {
	b := podtest.NewPod(w.shop, name, "frontend:v1").Owner("apps/v1", "ReplicaSet", "frontend-8c4c9dcb9").
		Label("pod-template-hash", "8c4c9dcb9").Label("app", "frontend")
	pod := shape(b).Obj()
	pod.OwnerReferences[0].UID = "7e57a11e-0000-4000-8000-000000000002"
	pod.Spec.NodeName = "node-1"
	return pod
}

var istioArgsNow = []string{"-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "10.0.0.0/24",
	"-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"}

func (w *istioWorld) condition(name string, t corev1.PodConditionType, status corev1.ConditionStatus, reason string) corev1.PodCondition {
	w.t.Helper()
	saved := w.app
	w.app = w.shop
	defer func() { w.app = saved }()
	return w.world.condition(name, t, status, reason)
}

func (w *istioWorld) create(pod *corev1.Pod) *corev1.Pod {
	w.t.Helper()
	return w.world.create(pod, initExited(0, "Completed"))
}

// TestIstioPodsDriftWhenTheInjectorValuesChange is seed 003's fix applied mesh-wide: the
// excluded ranges change in the injector's values, running pods keep their istio-init rules,
// and each is reported with the value, the ConfigMap key it came from and the restart command;
// the OSM pods of the same cluster are not touched.
func TestIstioPodsDriftWhenTheInjectorValuesChange(t *testing.T) {
	w := newIstioWorld(t, "istiodrift")
	h := startManager(t, w.mesh, func(o *DriftOptions) { o.IstioNamespace = w.controlPlane })
	osm := w.world.create(w.injected(w.appPod("bookbuyer", "a")), initExited(0, "Completed"))
	pods := []string{"frontend-8c4c9dcb9-a", "frontend-8c4c9dcb9-b"}
	for _, name := range pods {
		w.create(w.istioPod(name, func(b *podtest.PodBuilder) *podtest.PodBuilder { return b.IstioInit(istioArgsNow...) }))
	}
	for _, name := range pods {
		w.condition(name, conditions.PodSidecarInjected, condTrue, conditions.Injected)
		w.condition(name, conditions.PodRedirectionApplied, condTrue, conditions.Applied)
		w.condition(name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	}
	w.world.condition(osm.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	eventually(t, 10*time.Second, func() error {
		if _, n := h.client.Writes(); n < 3 {
			return fmt.Errorf("%d writes", n)
		}
		return nil
	})
	time.Sleep(time.Second)
	h.client.Reset()

	w.setValues(strings.Replace(istioTestValues, `"excludeIPRanges":"10.0.0.0/24"`, `"excludeIPRanges":"10.0.0.0/24,10.0.1.0/24"`, 1))
	for _, name := range pods {
		c := w.condition(name, conditions.PodExclusionsInSync, condFalse, conditions.Drifted)
		want := fmt.Sprintf("outbound IP range 10.0.1.0/24 from ConfigMap %s/istio-sidecar-injector key values, global.proxy.excludeIPRanges is not in the istio-init rules; restart the pod: kubectl rollout restart deployment/frontend -n %s", w.controlPlane, w.shop)
		if c.Message != want {
			t.Errorf("Drifted message:\n%s\nwant:\n%s", c.Message, want)
		}
	}
	time.Sleep(2 * time.Second)
	writes, n := h.client.Writes()
	if n != len(pods) {
		t.Errorf("%d writes after the values changed (%v), want one per Istio pod (%d): the OSM pod must not be rewritten", n, writes, len(pods))
	}
	if c := w.podIn(w.app, osm.Name); conditionOf(c, conditions.PodExclusionsInSync) != "True/InSync" {
		t.Errorf("the OSM pod changed: %s", conditionOf(c, conditions.PodExclusionsInSync))
	}
	// The metrics count each mesh's pods under its own mesh label.
	eventually(t, 20*time.Second, func() error {
		if err := verdictSeries(t, "meshkeeper_namespace_pods", map[string]string{"mesh": MeshIstio, "namespace": w.shop},
			map[drift.PodVerdict]float64{drift.VerdictDrifted: 2}); err != nil {
			return err
		}
		if err := verdictSeries(t, "meshkeeper_namespace_pods", map[string]string{"mesh": w.mesh, "namespace": w.app},
			map[drift.PodVerdict]float64{drift.VerdictInSync: 1}); err != nil {
			return err
		}
		if v, _ := gathered(t, "meshkeeper_drifted_pods", map[string]string{"mesh": MeshIstio, "namespace": w.shop, "kind": drift.KindDeployment, "workload": "frontend"}); v != 2 {
			return fmt.Errorf("meshkeeper_drifted_pods{mesh=istio,workload=frontend} = %v, want 2", v)
		}
		return nil
	})
	for _, mesh := range []string{MeshIstio, w.mesh} {
		for _, ns := range []string{w.shop, w.app} {
			if (mesh == MeshIstio) == (ns == w.shop) {
				continue
			}
			if v, ok := gathered(t, "meshkeeper_namespace_pods", map[string]string{"mesh": mesh, "namespace": ns, "verdict": string(drift.VerdictInSync)}); ok {
				t.Errorf("namespace %s counted under mesh %s (%v)", ns, mesh, v)
			}
		}
	}

	// A label edit on the ConfigMap changes no desired state and triggers no evaluation write.
	h.client.Reset()
	cm := &corev1.ConfigMap{}
	must(t, env.Client.Get(ctx, types.NamespacedName{Namespace: w.controlPlane, Name: istio.InjectorConfigMapName}, cm))
	cm.Labels["touched"] = "yes"
	must(t, env.Client.Update(ctx, cm))
	time.Sleep(2 * time.Second)
	if _, n := h.client.Writes(); n != 0 {
		t.Errorf("%d writes after a label edit", n)
	}

	// Without the ConfigMap there is no desired state: Unknown, naming the revision.
	must(t, env.Client.Delete(ctx, cm))
	c := w.condition(pods[0], conditions.PodExclusionsInSync, condUnknown, conditions.InjectorConfigNotFound)
	if !strings.Contains(c.Message, "revision default") {
		t.Errorf("message %q does not name the revision", c.Message)
	}
}

// TestIstioCNIPodsAreJudgedAgainstTheirTemplate: istio-cni pods carry the values the injector
// wrote into their annotations, so only the workload's template says which ones the workload set
// itself. A value the template sets is what the workload asked for; one it does not is the
// injector's and drifts when the values change.
func TestIstioCNIPodsAreJudgedAgainstTheirTemplate(t *testing.T) {
	w := newIstioWorld(t, "istiocni")
	startManager(t, w.mesh, func(o *DriftOptions) { o.IstioNamespace = w.controlPlane })
	injectedAnn := map[string]string{istio.AnnotationExcludeOutboundIPRanges: "10.0.0.0/24",
		istio.AnnotationIncludeOutboundIPRanges: "*", istio.AnnotationIncludeInboundPorts: "*",
		istio.AnnotationExcludeInboundPorts: "15020", istio.AnnotationInterceptionMode: "REDIRECT"}
	rs := func(name, uid string, ann map[string]string) {
		r := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: w.shop, Name: name},
			Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: ann},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "frontend:v1"}}}}}}
		must(t, env.Client.Create(ctx, r))
	}
	rs("frontend-8c4c9dcb9", "", nil)
	rs("pinned-6b5d", "", map[string]string{istio.AnnotationExcludeOutboundIPRanges: "10.0.0.0/24"})
	ownedBy := func(pod *corev1.Pod, name string) *corev1.Pod {
		r := &appsv1.ReplicaSet{}
		must(t, env.Client.Get(ctx, types.NamespacedName{Namespace: w.shop, Name: name}, r))
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name, UID: r.UID, Controller: ptr.To(true)}}
		return pod
	}
	plain := w.create(ownedBy(w.istioPod("frontend-8c4c9dcb9-c", func(b *podtest.PodBuilder) *podtest.PodBuilder { return b.IstioCNI(injectedAnn) }), "frontend-8c4c9dcb9"))
	pinned := w.create(ownedBy(w.istioPod("pinned-6b5d-a", func(b *podtest.PodBuilder) *podtest.PodBuilder { return b.IstioCNI(injectedAnn) }), "pinned-6b5d"))
	w.condition(plain.Name, conditions.PodRedirectionApplied, condTrue, conditions.Applied)
	w.condition(plain.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	w.condition(pinned.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)

	w.setValues(strings.Replace(istioTestValues, `"excludeIPRanges":"10.0.0.0/24"`, `"excludeIPRanges":"10.0.0.0/16"`, 1))
	c := w.condition(plain.Name, conditions.PodExclusionsInSync, condFalse, conditions.Drifted)
	for _, want := range []string{"outbound IP range 10.0.0.0/16 from ConfigMap", "outbound IP range 10.0.0.0/24 is in the istio-cni rules but neither"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q does not contain %q", c.Message, want)
		}
	}
	time.Sleep(2 * time.Second)
	if got := conditionOf(w.podIn(w.shop, pinned.Name), conditions.PodExclusionsInSync); got != "True/InSync" {
		t.Errorf("the pod whose template sets the annotation: %s, want True/InSync", got)
	}
}

// TestIstioSidecarMissing: a pod created in an istio-injection=enabled namespace while Istio's
// injector was unavailable is reported, like an OSM pod would be.
func TestIstioSidecarMissing(t *testing.T) {
	w := newIstioWorld(t, "istiomissing")
	startManager(t, w.mesh, func(o *DriftOptions) { o.IstioNamespace = w.controlPlane })
	bare := w.create(w.istioPod("frontend-8c4c9dcb9-d", func(b *podtest.PodBuilder) *podtest.PodBuilder { return b }))
	c := w.condition(bare.Name, conditions.PodSidecarInjected, condFalse, conditions.SidecarMissing)
	if !strings.Contains(c.Message, "namespace "+w.shop+" has istio-injection=enabled") {
		t.Errorf("message %q does not say why the pod should have a sidecar", c.Message)
	}
	eventually(t, 20*time.Second, func() error {
		return verdictSeries(t, "meshkeeper_namespace_pods", map[string]string{"mesh": MeshIstio, "namespace": w.shop},
			map[drift.PodVerdict]float64{drift.VerdictSidecarMissing: 1})
	})
	// Opted out: nothing is written.
	out := w.create(w.istioPod("frontend-8c4c9dcb9-e", func(b *podtest.PodBuilder) *podtest.PodBuilder {
		return b.Label("sidecar.istio.io/inject", "false")
	}))
	time.Sleep(2 * time.Second)
	if got := conditionOf(w.podIn(w.shop, out.Name), conditions.PodSidecarInjected); got != "" {
		t.Errorf("opted-out pod got %s", got)
	}
	if err := verdictSeries(t, "meshkeeper_namespace_pods", map[string]string{"mesh": MeshIstio, "namespace": w.shop},
		map[drift.PodVerdict]float64{drift.VerdictSidecarMissing: 1}); err != nil {
		t.Errorf("the opted-out pod is counted: %v", err)
	}
}

func conditionOf(pod *corev1.Pod, t corev1.PodConditionType) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return ""
}

// TestTrimPodKeepsIstioVerdicts: the cached (trimmed) Istio pod reaches the verdicts of the full
// one, including the proxy's UID, which only the istio-proxy security context says.
func TestTrimPodKeepsIstioVerdicts(t *testing.T) {
	ns := metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled"}}
	cm := podtest.IstioInjectorConfigMap(istioTestValues)
	for name, pod := range map[string]*corev1.Pod{
		"uid 1337": podtest.NewPod("shop", "web-1", "web:v1").Deployment("web", "5f7d").IstioInit(istioArgsNow...).InitDone().Obj(),
		// OpenShift-style: the injector picked another UID for the proxy, and the rules still
		// name 1337.
		"uid mismatch": func() *corev1.Pod {
			p := podtest.NewPod("shop", "web-2", "web:v1").Deployment("web", "5f7d").IstioInit(istioArgsNow...).InitDone().Obj()
			p.Spec.Containers[1].SecurityContext.RunAsUser = ptr.To[int64](1000680000)
			p.Spec.Containers[1].Env = []corev1.EnvVar{{Name: "PROXY_CONFIG", Value: "{}"}}
			return p
		}(),
	} {
		out, err := TrimPod(pod.DeepCopy())
		must(t, err)
		ref := drift.InjectorRef("istio-system", "default")
		full := drift.Evaluate(drift.GatherIstio(pod, ns, drift.ReadIstioInjector(ref, cm), nil, time.Unix(0, 0)))
		small := drift.Evaluate(drift.GatherIstio(out.(*corev1.Pod), ns, drift.ReadIstioInjector(ref, cm), nil, time.Unix(0, 0)))
		if !reflect.DeepEqual(full, small) {
			t.Errorf("%s: verdicts differ:\nfull:    %+v\ntrimmed: %+v", name, full, small)
		}
		if name == "uid mismatch" && !strings.Contains(small[2].Message, "UID 1337 bypass the proxy, but the proxy runs as UID 1000680000") {
			t.Errorf("UID mismatch not reported: %+v", small[2])
		}
	}
}

// TestInjectorMemoReadsEachVersionOnce: the memo answers from its parse while the ConfigMap's
// UID and resourceVersion stand, and reads again on any change of either, for a ConfigMap that
// is gone, or one without resourceVersion.
func TestInjectorMemoReadsEachVersionOnce(t *testing.T) {
	ref := drift.InjectorRef("istio-system", istio.DefaultRevision)
	cm := podtest.IstioInjectorConfigMap(istioTestValues)
	cm.UID, cm.ResourceVersion = "uid-1", "10"
	excluded := func(inj drift.IstioInjector) string { return inj.Values.ExcludeIPRanges }
	var m injectorMemo

	if got := excluded(m.read(ref, cm)); got != "10.0.0.0/24" {
		t.Fatalf("first read: excludeIPRanges %q", got)
	}
	// The same version with other data can only come from a test; it shows whether the
	// memo answered without parsing.
	stale := cm.DeepCopy()
	stale.Data[istio.InjectorValuesKey] = strings.Replace(istioTestValues, "10.0.0.0/24", "10.9.0.0/16", 1)
	if got := excluded(m.read(ref, stale)); got != "10.0.0.0/24" {
		t.Errorf("same UID and resourceVersion: parsed again (%q)", got)
	}
	for i, c := range []struct {
		name    string
		uid, rv string
	}{
		{"new resourceVersion", "uid-1", "11"},
		{"recreated, same resourceVersion", "uid-2", "11"},
		{"no resourceVersion", "uid-2", ""},
	} {
		next := cm.DeepCopy()
		want := fmt.Sprintf("10.9.%d.0/24", i)
		next.Data[istio.InjectorValuesKey] = strings.Replace(istioTestValues, "10.0.0.0/24", want, 1)
		next.UID, next.ResourceVersion = types.UID(c.uid), c.rv
		if got := excluded(m.read(ref, next)); got != want {
			t.Errorf("%s: the memo answered %q, want the new values %q", c.name, got, want)
		}
	}
	if inj := m.read(ref, nil); !inj.Missing {
		t.Error("a ConfigMap that is gone was not read as missing")
	}
	if len(m.m) != 1 {
		t.Errorf("%d entries for one revision", len(m.m))
	}
}
