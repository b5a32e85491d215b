package manager

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/controllers"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/osmtest"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// TestAuditBesideOSMOnAKS runs meshkeeper in audit mode beside OSM laid out as the AKS add-on
// lays it out (control plane and MeshConfig in kube-system), on OSM v1.2.4's own CRDs, with no
// --meshconfig: the MeshConfig is discovered, OSM-injected pods are judged, the kinds whose CRD
// has no status subresource are reported by events and metrics instead of status writes, and
// osm-controller's IngressBackend fields are left alone.
func TestAuditBesideOSMOnAKS(t *testing.T) {
	c := startCluster(t, osmCRDs(t))
	mcKey := types.NamespacedName{Namespace: "kube-system", Name: "osm-mesh-config"}
	c.namespace("kube-system", nil, nil)
	c.createMeshConfig(mcKey)
	c.meshedNamespace("shop", "osm")
	osm := c.startOSM(osmtest.Options{Namespace: "kube-system"}, "shop")

	watched := []string{"drift-meshconfig", "egress", "ingressbackend"}
	errorsBefore := map[string]float64{}
	for _, ctl := range watched {
		errorsBefore[ctl] = reconcileErrors(t, ctl)
	}
	m := c.run("--mode=audit")

	// Pods of the mesh, injected by OSM alone.
	var pods []*corev1.Pod
	for _, name := range []string{"web-a", "web-b"} {
		pod := c.createPod(appPod("shop", name))
		if got := containerNames(pod.Spec.InitContainers); !slices.Equal(got, []string{osmtest.InitContainerName}) {
			t.Fatalf("pod %s init containers %v, want OSM's only", name, got)
		}
		if got := containerNames(pod.Spec.Containers); !slices.Equal(got, []string{"app", osmtest.SidecarName}) {
			t.Fatalf("pod %s containers %v, want app and OSM's envoy", name, got)
		}
		c.kubelet(pod)
		pods = append(pods, pod)
	}
	if n := osm.Injections(); n != len(pods) {
		t.Errorf("the fake OSM injected %d pods, want %d", n, len(pods))
	}
	for _, pod := range pods {
		c.podCondition(pod, conditions.PodExclusionsInSync, corev1.ConditionTrue, conditions.InSync, m.alive)
	}
	meshPods := func(verdict string) map[string]string {
		return map[string]string{"namespace": mcKey.Namespace, "name": mcKey.Name, "verdict": verdict}
	}
	c.eventually(30*time.Second, func() error {
		if v, _ := metricValue(t, "meshkeeper_mesh_pods", meshPods("in_sync")); v != float64(len(pods)) {
			return fmt.Errorf("meshkeeper_mesh_pods{verdict=in_sync} = %v, want %d", v, len(pods))
		}
		return nil
	})

	// Audit mode registers no admission webhook of its own: OSM's is the only one.
	mwcs := &admissionregistrationv1.MutatingWebhookConfigurationList{}
	c.must(c.c.List(c.ctx, mwcs))
	for _, cfg := range mwcs.Items {
		if cfg.Name != osm.ConfigurationName() {
			t.Errorf("mutating webhook configuration %s exists in audit mode", cfg.Name)
		}
	}
	vwcs := &admissionregistrationv1.ValidatingWebhookConfigurationList{}
	c.must(c.c.List(c.ctx, vwcs))
	for _, cfg := range vwcs.Items {
		t.Errorf("validating webhook configuration %s exists in audit mode", cfg.Name)
	}

	// A range added to the MeshConfig: every pod drifts, naming it.
	const added = "10.20.0.0/16"
	c.must(c.c.Patch(c.ctx, meshConfigObject(mcKey), client.RawPatch(types.MergePatchType,
		fmt.Appendf(nil, `{"spec":{"traffic":{"outboundIPRangeExclusionList":["169.254.169.254/32",%q]}}}`, added))))
	for _, pod := range pods {
		cond := c.podCondition(pod, conditions.PodExclusionsInSync, corev1.ConditionFalse, conditions.Drifted, m.alive)
		if !strings.Contains(cond.Message, added) {
			t.Errorf("pod %s: Drifted message does not name %s: %s", pod.Name, added, cond.Message)
		}
	}
	c.eventually(30*time.Second, func() error {
		if v, _ := metricValue(t, "meshkeeper_mesh_pods", meshPods("drifted")); v != float64(len(pods)) {
			return fmt.Errorf("meshkeeper_mesh_pods{verdict=drifted} = %v, want %d", v, len(pods))
		}
		return nil
	})

	// OSM's MeshConfig and Egress CRDs cannot store a status: said once, on each CRD.
	for _, crd := range []string{"meshconfigs.config.openservicemesh.io", "egresses.policy.openservicemesh.io"} {
		e := c.waitEvent("CustomResourceDefinition", "", crd, corev1.EventTypeWarning, "StatusSubresourceMissing")
		if !strings.Contains(e.Note, "no status subresource") || !strings.Contains(e.Note, "meshkeeper_object_ready") {
			t.Errorf("%s: StatusSubresourceMissing note %q", crd, e.Note)
		}
	}
	if evs := c.events("CustomResourceDefinition", "", "ingressbackends.policy.openservicemesh.io"); len(evs) > 0 {
		t.Errorf("IngressBackend's CRD has a status subresource, yet got events %v", evs)
	}

	// Seed 003 on OSM's Egress CRD: the policy's ports collide with a mesh Service. The verdict
	// arrives as a Warning event and a metric.
	c.must(c.c.Create(c.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "frontend"}}))
	c.must(c.c.Create(c.ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rediscluster"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "rediscluster"},
			Ports: []corev1.ServicePort{{Name: "tcp", Port: 7000, TargetPort: intstr.FromInt32(7000), Protocol: corev1.ProtocolTCP}}}}))
	egress := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "redis"},
		Spec: policyv1alpha1.EgressSpec{
			Sources:     []policyv1alpha1.EgressSourceSpec{{Kind: "ServiceAccount", Namespace: "shop", Name: "frontend"}},
			IPAddresses: []string{"10.0.0.6/32"},
		}}
	for p := int32(7000); p <= 7003; p++ {
		egress.Spec.Ports = append(egress.Spec.Ports, policyv1alpha1.PortSpec{Number: p, Protocol: "tcp"})
	}
	c.must(c.c.Create(c.ctx, egress))
	conflict := c.waitEvent("Egress", "shop", "redis", corev1.EventTypeWarning, conditions.Conflict)
	for _, want := range []string{"shop/rediscluster", "port 7000"} {
		if !strings.Contains(conflict.Note, want) {
			t.Errorf("Egress Conflict event lacks %q: %s", want, conflict.Note)
		}
	}
	c.eventually(30*time.Second, func() error {
		v, ok := metricValue(t, "meshkeeper_object_ready", map[string]string{"kind": controllers.KindEgress, "namespace": "shop", "name": "redis"})
		if !ok || v != 0 {
			return fmt.Errorf("meshkeeper_object_ready{kind=Egress,shop/redis} = %v (present %v), want 0", v, ok)
		}
		if v, _ := metricValue(t, "meshkeeper_object_findings", map[string]string{"kind": controllers.KindEgress, "namespace": "shop", "name": "redis", "severity": string(conditions.SeverityError)}); v < 1 {
			return fmt.Errorf("meshkeeper_object_findings{severity=error} = %v, want the collision", v)
		}
		if v, _ := metricValue(t, "meshkeeper_findings", map[string]string{"kind": controllers.KindEgress, "code": conditions.FindingPortCollision, "severity": string(conditions.SeverityError)}); v < 1 {
			return fmt.Errorf("meshkeeper_findings{kind=Egress,code=PortCollision,severity=Error} = %v, want the collision", v)
		}
		return nil
	})

	// IngressBackend: OSM's CRD has a status subresource, and osm-controller owns currentStatus
	// and reason. The backend Service is missing, so meshkeeper's verdict is not Ready: were it
	// to write OSM's fields, they would read "error" and a reason.
	ib := &policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"},
		Spec: policyv1alpha1.IngressBackendSpec{
			Backends: []policyv1alpha1.BackendSpec{{Name: "api", Port: policyv1alpha1.BackendPortSpec{Number: 8080, Protocol: "http"}}},
			Sources:  []policyv1alpha1.IngressSourceSpec{{Kind: "Service", Namespace: "shop", Name: "gateway"}},
		}}
	c.must(c.c.Create(c.ctx, ib))
	ibKey := client.ObjectKeyFromObject(ib)
	ibStatus := func(wantGeneration int64) map[string]any {
		t.Helper()
		var st map[string]any
		c.eventually(30*time.Second, func() error {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(policyv1alpha1.GroupVersion.WithKind("IngressBackend"))
			if err := c.c.Get(c.ctx, ibKey, u); err != nil {
				return err
			}
			st, _, _ = unstructured.NestedMap(u.Object, "status")
			if og, _, _ := unstructured.NestedInt64(st, "observedGeneration"); og != wantGeneration || u.GetGeneration() != wantGeneration {
				return fmt.Errorf("observedGeneration %d, generation %d, want %d", og, u.GetGeneration(), wantGeneration)
			}
			return nil
		})
		return st
	}
	ibStatus(1)
	// osm-controller's write.
	c.must(c.c.Status().Patch(c.ctx, ib, client.RawPatch(types.MergePatchType, []byte(`{"status":{"currentStatus":"committed","reason":""}}`))))
	// A spec change makes meshkeeper judge and write again, after osm-controller.
	c.must(c.c.Patch(c.ctx, ib, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"backends":[{"name":"api","port":{"number":8081,"protocol":"http"}}]}}`))))
	st := ibStatus(2)
	if cs, ok := st["currentStatus"].(string); !ok || cs != "committed" {
		t.Errorf("status.currentStatus = %#v, want osm-controller's \"committed\"", st["currentStatus"])
	}
	if r, ok := st["reason"].(string); !ok || r != "" {
		t.Errorf("status.reason = %#v, want osm-controller's \"\"", st["reason"])
	}
	conds, _, _ := unstructured.NestedSlice(st, "conditions")
	var ready string
	for _, raw := range conds {
		if cm, ok := raw.(map[string]any); ok && cm["type"] == conditions.Ready {
			ready = fmt.Sprint(cm["status"], "/", cm["reason"])
		}
	}
	if !strings.HasPrefix(ready, "False/") {
		t.Errorf("meshkeeper's Ready condition next to OSM's fields = %q, want False (conditions %v)", ready, conds)
	}

	// Nothing of meshkeeper's was written to the MeshConfig or the Egress, and their
	// controllers did not fail over the missing status subresource.
	for _, obj := range []client.Object{meshConfigObject(mcKey), egressObject(client.ObjectKeyFromObject(egress))} {
		c.must(c.c.Get(c.ctx, client.ObjectKeyFromObject(obj), obj))
		if w := writers(obj); !slices.Equal(w, []string{testAgent}) {
			t.Errorf("%s %s was written by %v, want only the test's own writes", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), w)
		}
		if _, found := obj.(*unstructured.Unstructured).Object["status"]; found {
			t.Errorf("%s %s has a status: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), obj.(*unstructured.Unstructured).Object["status"])
		}
	}
	for _, ctl := range watched {
		if n := reconcileErrors(t, ctl) - errorsBefore[ctl]; n != 0 {
			t.Errorf("controller %s: %v reconcile errors", ctl, n)
		}
	}

	// The served MeshConfig deleted while running: not fatal, every meshed pod says so.
	c.must(c.c.Delete(c.ctx, meshConfigObject(mcKey)))
	for _, pod := range pods {
		cond := c.podCondition(pod, conditions.PodExclusionsInSync, corev1.ConditionUnknown, conditions.MeshConfigNotFound, m.alive)
		if !strings.Contains(cond.Message, mcKey.String()) {
			t.Errorf("pod %s: MeshConfigNotFound message does not name %s: %s", pod.Name, mcKey, cond.Message)
		}
	}
	_ = m.alive()
}

func egressObject(key types.NamespacedName) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(policyv1alpha1.GroupVersion.WithKind("Egress"))
	u.SetNamespace(key.Namespace)
	u.SetName(key.Name)
	return u
}

// TestInjectPausesBesideOSMInjector runs meshkeeper in inject mode, its pod webhook served by the
// manager, while OSM's injector (osm-webhook-osm) serves the same mesh: meshkeeper refuses to
// inject and says so (not ready, an event), OSM's pods come out with one sidecar; once OSM's
// injector is gone meshkeeper resumes and injects.
func TestInjectPausesBesideOSMInjector(t *testing.T) {
	c := startCluster(t, osmCRDs(t), "config/webhook/manifests.yaml")
	// OSM comes first: meshkeeper's webhook configurations (envtest installed them, pointed at
	// the manager's port) arrive with meshkeeper, as a deploy applies them.
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	c.must(c.c.Get(c.ctx, types.NamespacedName{Name: "mutating-webhook-configuration"}, mutating))
	c.must(c.c.Get(c.ctx, types.NamespacedName{Name: "validating-webhook-configuration"}, validating))
	c.must(c.c.Delete(c.ctx, mutating))
	c.must(c.c.Delete(c.ctx, validating))
	mcKey := types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	c.namespace("osm-system", nil, nil)
	c.namespace("meshkeeper-system", nil, nil)
	c.eventually(30*time.Second, func() error {
		// The API server may call the validator it just lost for a moment.
		return c.c.Create(c.ctx, meshConfigObjectFromYAML(t, mcKey))
	})
	c.meshedNamespace("shop", "osm")
	osm := c.startOSM(osmtest.Options{}, "shop")
	for _, obj := range []client.Object{mutating, validating} {
		obj.SetResourceVersion("")
		obj.SetUID("")
		obj.SetManagedFields(nil)
		c.must(c.c.Create(c.ctx, obj))
	}

	m := c.run("--mode=inject",
		"--cert-manager",
		fmt.Sprintf("--webhook-port=%d", c.webhook.LocalServingPort),
		"--webhook-cert-dir="+c.webhook.LocalServingCertDir,
		"--operator-namespace=meshkeeper-system",
		"--mutating-webhook-configuration=mutating-webhook-configuration",
		"--validating-webhook-configuration=validating-webhook-configuration")

	// Not ready, with the reason; the webhook server itself is up.
	c.eventually(60*time.Second, func() error {
		_ = m.alive()
		if code, body := m.probeGet("/readyz/injector"); code != http.StatusInternalServerError || !strings.Contains(body, osm.ConfigurationName()) {
			return fmt.Errorf("/readyz/injector: %d %q, want 500 naming %s", code, body, osm.ConfigurationName())
		}
		if code, body := m.probeGet("/readyz/webhook"); code != http.StatusOK {
			return fmt.Errorf("/readyz/webhook: %d %q, want the webhook server up", code, body)
		}
		return nil
	})
	if code, body := m.probeGet("/readyz"); code == http.StatusOK {
		t.Errorf("/readyz is OK while another injector serves the mesh: %s", body)
	}
	conflict := c.waitEvent("MeshConfig", mcKey.Namespace, mcKey.Name, corev1.EventTypeWarning, "InjectorConflict")
	for _, want := range []string{osm.ConfigurationName(), "--mode=audit"} {
		if !strings.Contains(conflict.Note, want) {
			t.Errorf("InjectorConflict note lacks %q: %s", want, conflict.Note)
		}
	}

	// Pods of the mesh: OSM injects them, meshkeeper lets them through untouched and says why.
	c.warnings.take()
	for _, name := range []string{"web-a", "web-b"} {
		pod := c.createPod(appPod("shop", name))
		inits, ctrs := containerNames(pod.Spec.InitContainers), containerNames(pod.Spec.Containers)
		if !slices.Equal(inits, []string{osmtest.InitContainerName}) {
			t.Errorf("pod %s init containers %v, want only OSM's %s", name, inits, osmtest.InitContainerName)
		}
		if count(ctrs, injection.SidecarName) != 1 || len(ctrs) != 2 {
			t.Errorf("pod %s containers %v, want app and exactly one %s", name, ctrs, injection.SidecarName)
		}
		warned := c.warnings.take()
		if !slices.ContainsFunc(warned, func(w string) bool { return strings.HasPrefix(w, "meshkeeper") }) {
			t.Errorf("pod %s: no admission warning from meshkeeper (warnings %q)", name, warned)
		}
	}
	if n := osm.Injections(); n != 2 {
		t.Errorf("the fake OSM injected %d pods, want 2", n)
	}

	// OSM's injector goes away: meshkeeper resumes by itself.
	stopStart := time.Now()
	c.must(osm.Stop(c.ctx))
	c.eventually(60*time.Second, func() error {
		_ = m.alive()
		if code, body := m.probeGet("/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %q", code, body)
		}
		return nil
	})
	c.waitEvent("MeshConfig", mcKey.Namespace, mcKey.Name, corev1.EventTypeNormal, "InjectionResumed")
	t.Logf("injection resumed %s after OSM's injector was removed", time.Since(stopStart).Round(time.Millisecond))
	pod := c.createPod(appPod("shop", "web-c"))
	inits, ctrs := containerNames(pod.Spec.InitContainers), containerNames(pod.Spec.Containers)
	if !slices.Contains(inits, redirect.InitContainerName) || slices.Contains(inits, osmtest.InitContainerName) {
		t.Errorf("new pod init containers %v, want %s and not %s", inits, redirect.InitContainerName, osmtest.InitContainerName)
	}
	if count(ctrs, injection.SidecarName) != 1 {
		t.Errorf("new pod containers %v, want exactly one %s", ctrs, injection.SidecarName)
	}
}

// TestManagerDownBlocksNoForeignNamespace installs meshkeeper's webhook configurations as
// config/injector (the pod injector) and config/validating (the validators) render them, pointed
// at an address where nothing listens: the manager is down. Pods are created in every namespace,
// the MeshConfig can be written. A control with failurePolicy flipped to Fail shows the API server
// does call the webhooks for the mesh's namespace and the MeshConfig, and that the other
// namespaces are never sent to meshkeeper at all.
func TestManagerDownBlocksNoForeignNamespace(t *testing.T) {
	c := startCluster(t, osmCRDs(t))
	mcKey := types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	c.namespace("osm-system", nil, nil)
	c.namespace("meshkeeper-system", nil, nil)
	c.meshedNamespace("shop", "osm")
	c.meshedNamespace("other-shop", "other")
	c.namespace("plain", nil, nil)
	c.namespace("kube-system", nil, nil)

	down := "https://" + freeAddr(t) // nothing listens there once freeAddr has closed it
	var mutating *admissionregistrationv1.MutatingWebhookConfiguration
	for _, o := range objects(t, c.render("config/injector")) {
		if o.Kind == "MutatingWebhookConfiguration" {
			mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
			c.must(sigsyaml.Unmarshal(o.raw, mutating))
		}
	}
	var validating *admissionregistrationv1.ValidatingWebhookConfiguration
	for _, o := range objects(t, c.render("config/validating")) {
		if o.Kind == "ValidatingWebhookConfiguration" {
			validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			c.must(sigsyaml.Unmarshal(o.raw, validating))
		}
	}
	if mutating == nil || validating == nil {
		t.Fatalf("config/injector renders no MutatingWebhookConfiguration or config/validating no ValidatingWebhookConfiguration")
	}
	if len(mutating.Webhooks) != 1 || mutating.Webhooks[0].Name != injection.WebhookName {
		t.Fatalf("config/injector's mutating webhooks: %+v", mutating.Webhooks)
	}
	rendered := map[string]admissionregistrationv1.FailurePolicyType{}
	for i := range mutating.Webhooks {
		w := &mutating.Webhooks[i]
		rendered[w.Name] = ptr.Deref(w.FailurePolicy, "")
		w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To(down + *w.ClientConfig.Service.Path)}
	}
	for i := range validating.Webhooks {
		w := &validating.Webhooks[i]
		rendered[w.Name] = ptr.Deref(w.FailurePolicy, "")
		w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To(down + *w.ClientConfig.Service.Path)}
	}
	for name, p := range rendered {
		if p != admissionregistrationv1.Ignore {
			t.Errorf("webhook %s renders failurePolicy %q, want Ignore", name, p)
		}
	}
	if _, ok := rendered["meshconfig.meshkeeper.io"]; !ok {
		t.Fatalf("config/validating renders no MeshConfig validator: %v", rendered)
	}
	setPolicy := func(p admissionregistrationv1.FailurePolicyType) {
		t.Helper()
		c.must(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := c.c.Get(c.ctx, client.ObjectKeyFromObject(mutating), mutating); err != nil {
				return err
			}
			for i := range mutating.Webhooks {
				mutating.Webhooks[i].FailurePolicy = ptr.To(p)
			}
			return c.c.Update(c.ctx, mutating)
		}))
		c.must(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := c.c.Get(c.ctx, client.ObjectKeyFromObject(validating), validating); err != nil {
				return err
			}
			for i := range validating.Webhooks {
				validating.Webhooks[i].FailurePolicy = ptr.To(p)
			}
			return c.c.Update(c.ctx, validating)
		}))
	}

	// The control: failurePolicy Fail. Once the API server refuses the mesh's pods, it has
	// the configurations; pods of every other namespace still go through.
	for i := range mutating.Webhooks {
		mutating.Webhooks[i].FailurePolicy = ptr.To(admissionregistrationv1.Fail)
	}
	for i := range validating.Webhooks {
		validating.Webhooks[i].FailurePolicy = ptr.To(admissionregistrationv1.Fail)
	}
	c.must(c.c.Create(c.ctx, mutating))
	c.must(c.c.Create(c.ctx, validating))
	c.eventually(30*time.Second, func() error {
		pod := appPod("shop", "")
		pod.GenerateName = "control-"
		err := c.c.Create(c.ctx, pod, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), injection.WebhookName) {
			return fmt.Errorf("a pod of the mesh with the injector down and failurePolicy Fail: %v, want refused by %s", err, injection.WebhookName)
		}
		return nil
	})
	foreign := map[string]*corev1.Pod{
		"other-shop":        appPod("other-shop", "fail-policy"),
		"plain":             appPod("plain", "fail-policy"),
		"kube-system":       appPod("kube-system", "fail-policy"),
		"meshkeeper-system": appPod("meshkeeper-system", "fail-policy"),
	}
	foreign["meshkeeper-system"].Labels["app.kubernetes.io/part-of"] = "meshkeeper"
	for ns, pod := range foreign {
		if err := c.c.Create(c.ctx, pod); err != nil {
			t.Errorf("namespace %s: a pod is refused while meshkeeper is down, even though the namespace is not its mesh's: %v", ns, err)
		}
	}
	c.eventually(30*time.Second, func() error {
		err := c.c.Create(c.ctx, meshConfigObjectFromYAML(t, mcKey), client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "meshconfig.meshkeeper.io") {
			return fmt.Errorf("a MeshConfig write with the validator down and failurePolicy Fail: %v, want refused by meshconfig.meshkeeper.io", err)
		}
		return nil
	})

	// As rendered (Ignore): the manager down blocks nothing.
	setPolicy(admissionregistrationv1.Ignore)
	var meshed *corev1.Pod
	c.eventually(30*time.Second, func() error {
		pod := appPod("shop", "")
		pod.GenerateName = "web-"
		if err := c.c.Create(c.ctx, pod); err != nil {
			return fmt.Errorf("a pod of the mesh with the manager down: %v", err)
		}
		meshed = pod
		return nil
	})
	if got := containerNames(meshed.Spec.Containers); !slices.Equal(got, []string{"app"}) || len(meshed.Spec.InitContainers) > 0 {
		t.Errorf("pod %s created without meshkeeper has containers %v and init containers %v, want the app alone", meshed.Name, got, containerNames(meshed.Spec.InitContainers))
	}
	for ns := range foreign {
		pod := appPod(ns, "ignore-policy")
		if ns == "meshkeeper-system" {
			pod.Labels["app.kubernetes.io/part-of"] = "meshkeeper"
		}
		if err := c.c.Create(c.ctx, pod); err != nil {
			t.Errorf("namespace %s: a pod is refused while meshkeeper is down: %v", ns, err)
		}
	}
	c.eventually(30*time.Second, func() error {
		return c.c.Create(c.ctx, meshConfigObjectFromYAML(t, mcKey))
	})
	c.must(c.c.Patch(c.ctx, meshConfigObject(mcKey), client.RawPatch(types.MergePatchType,
		[]byte(`{"spec":{"traffic":{"outboundPortExclusionList":[5432]}}}`))))
}

func meshConfigObjectFromYAML(t *testing.T, key types.NamespacedName) *unstructured.Unstructured {
	t.Helper()
	mc := &unstructured.Unstructured{}
	if err := sigsyaml.Unmarshal(fmt.Appendf(nil, osmMeshConfig, key.Name, key.Namespace), &mc.Object); err != nil {
		t.Fatal(err)
	}
	return mc
}

// TestBadMeshConfigInput: a --meshconfig that does not exist keeps the manager running and
// tells every meshed pod; two MeshConfigs and no flag is a startup error naming both.
func TestBadMeshConfigInput(t *testing.T) {
	c := startCluster(t, osmCRDs(t))
	served := types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}
	c.namespace("osm-system", nil, nil)
	c.createMeshConfig(served)
	c.meshedNamespace("shop", "osm")
	osm := c.startOSM(osmtest.Options{}, "shop")
	pod := c.createPod(appPod("shop", "web"))
	c.must(osm.Stop(c.ctx))
	c.kubelet(pod)

	missing := types.NamespacedName{Namespace: "osm-system", Name: "missing"}
	m := c.run("--meshconfig=" + missing.String())
	cond := c.podCondition(pod, conditions.PodExclusionsInSync, corev1.ConditionUnknown, conditions.MeshConfigNotFound, m.alive)
	if !strings.Contains(cond.Message, missing.String()) {
		t.Errorf("MeshConfigNotFound message does not name %s: %s", missing, cond.Message)
	}
	_ = m.alive()
	m.stop()

	second := types.NamespacedName{Namespace: "kube-system", Name: "osm-mesh-config"}
	c.createMeshConfig(second)
	err := c.run().wait(60 * time.Second)
	if err == nil {
		t.Fatal("Run started with two MeshConfigs and no --meshconfig")
	}
	for _, want := range []string{served.String(), second.String(), "--meshconfig"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
}

// TestUnknownMeshConfigVersion: a MeshConfig CRD that serves only a version meshkeeper does not
// read (a newer OSM) is a startup error naming the CRD and the version meshkeeper reads.
func TestUnknownMeshConfigVersion(t *testing.T) {
	crds := osmCRDs(t)
	found := false
	for _, crd := range crds {
		if crd.Name != "meshconfigs.config.openservicemesh.io" {
			continue
		}
		var v apiextensionsv1.CustomResourceDefinitionVersion
		for _, have := range crd.Spec.Versions {
			if have.Storage {
				v = *have.DeepCopy()
			}
		}
		v.Name, v.Served, v.Storage = "v1alpha3", true, true
		crd.Spec.Versions = []apiextensionsv1.CustomResourceDefinitionVersion{v}
		found = true
	}
	if !found {
		t.Fatal("OSM's CRDs hold no MeshConfig CRD")
	}
	c := startCluster(t, crds)
	err := c.run().wait(60 * time.Second)
	if err == nil {
		t.Fatal("Run started on a MeshConfig CRD serving only v1alpha3")
	}
	for _, want := range []string{"meshconfigs.config.openservicemesh.io", "v1alpha2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
}
