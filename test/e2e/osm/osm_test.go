//go:build e2e

package osm

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/test/e2e/e2eutil"
)

const (
	testappImage = "localhost/meshkeeper/testapp:dev"
	// envoyStandin is the image name osm.sh gives the chart for Envoy; the stand-in carries it.
	envoyStandin = "envoyproxy/envoy-distroless:v1.22.2"
	osmInitImage = "openservicemesh/init:v1.2.4"
	// driftRange is added to the MeshConfig's outbound exclusions: TEST-NET-1, reached by nothing
	// these tests send.
	driftRange = "192.0.2.0/24"
	// osmProxyUUIDLabel is the label OSM's injector puts on every pod it injects.
	osmProxyUUIDLabel = "osm-proxy-uuid"
)

var meshConfigGVK = schema.GroupVersionKind{Group: "config.openservicemesh.io", Version: "v1alpha2", Kind: "MeshConfig"}

// OSM's control plane, installed from its chart with images built from its module, runs: its
// three Deployments are Ready, bootstrap created the MeshConfig and the injector registered its
// webhook.
func TestOSMControlPlaneIsReady(t *testing.T) {
	requireOSM(t)
	for _, name := range []string{"osm-bootstrap", "osm-controller", "osm-injector"} {
		var d appsv1.Deployment
		if err := c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: osmNamespace, Name: name}, &d); err != nil {
			t.Fatal(err)
		}
		if d.Status.ReadyReplicas < 1 || d.Status.ReadyReplicas != d.Status.Replicas {
			t.Errorf("Deployment %s: %d of %d replicas ready", name, d.Status.ReadyReplicas, d.Status.Replicas)
		}
		want := "openservicemesh/" + name + ":v1.2.4"
		if got := d.Spec.Template.Spec.Containers[0].Image; got != want {
			t.Errorf("Deployment %s runs %s, want %s", name, got, want)
		}
	}
	var inj appsv1.Deployment
	if err := c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: osmNamespace, Name: "osm-injector"}, &inj); err != nil {
		t.Fatal(err)
	}
	envoy := ""
	for _, e := range inj.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "OSM_DEFAULT_ENVOY_IMAGE" {
			envoy = e.Value
		}
	}
	if envoy != envoyStandin {
		t.Errorf("osm-injector's Envoy image is %q, want %q (the stand-in's name)", envoy, envoyStandin)
	}
	mc := meshConfig(t)
	k.Kubectl(t, "get", "mutatingwebhookconfiguration", "osm-webhook-"+meshName)
	t.Logf("OSM's MeshConfig %s/%s was created by %s", osmNamespace, meshConfigName, managers(mc.GetManagedFields()))
}

// meshkeeper in audit mode runs beside OSM on OSM's CRDs: it did not replace them, registered no
// admission webhook, and told that OSM's MeshConfig CRD cannot store its status.
func TestMeshkeeperAuditsOnOSMsCRDs(t *testing.T) {
	requireOSM(t)
	var d appsv1.Deployment
	if err := c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: operatorNamespace, Name: managerDeployment}, &d); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--mode=audit") {
		t.Fatalf("the manager runs with %v, not --mode=audit", d.Spec.Template.Spec.Containers[0].Args)
	}
	if d.Status.ReadyReplicas < 1 {
		t.Errorf("the manager has no ready replica")
	}
	for _, kind := range []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} {
		out := k.Kubectl(t, "get", kind, "-o", "name")
		for _, name := range strings.Fields(out) {
			if strings.Contains(name, "meshkeeper") {
				t.Errorf("audit mode beside OSM registered %s", name)
			}
		}
	}
	for _, crd := range []string{"meshconfigs.config.openservicemesh.io", "egresses.policy.openservicemesh.io", "ingressbackends.policy.openservicemesh.io"} {
		out := k.Kubectl(t, "get", "crd", crd, "-o", "jsonpath={.metadata.labels}")
		if !strings.Contains(out, `"`+osmCRDLabel+`":"`+osmCRDValue+`"`) || strings.Contains(out, "meshkeeper") {
			t.Errorf("CRD %s is not OSM's as OSM installed it: labels %s", crd, out)
		}
	}
	// meshkeeper's start-up note on the CRD that cannot hold its status, naming it OSM's.
	e2eutil.Eventually(t, "meshkeeper's StatusSubresourceMissing event on OSM's MeshConfig CRD", 60*time.Second, func() (bool, string) {
		var evs eventsv1.EventList
		if err := c.List(e2eutil.Ctx(t), &evs); err != nil {
			return false, err.Error()
		}
		for _, e := range evs.Items {
			if e.Regarding.Kind == "CustomResourceDefinition" && e.Regarding.Name == "meshconfigs.config.openservicemesh.io" && e.Reason == "StatusSubresourceMissing" {
				if strings.Contains(e.Note, "this is OSM's CRD") {
					t.Logf("event from %s: %s", e.ReportingController, e.Note)
					return true, ""
				}
				return false, "the event does not call the CRD OSM's: " + e.Note
			}
		}
		return false, "no such event among " + strconv.Itoa(len(evs.Items))
	})
}

// The heart of it: pods in a namespace added to OSM's mesh are injected by OSM alone, and
// meshkeeper's verdict on them is right before a MeshConfig change (in sync), after it (drifted,
// naming the range) and after `kubectl rollout restart` (OSM injected the new exclusions: in sync
// again). meshkeeper writes nothing to them but its own conditions.
func TestOSMInjectedPodsInSyncDriftedAndBack(t *testing.T) {
	requireOSM(t)
	ns := meshedNamespace(t)
	const app = "osm-meshed"
	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64),
					Containers: []corev1.Container{{
						Name:            "app",
						Image:           testappImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args:            []string{"serve", "-listen", ":8080"},
					}},
				},
			},
		},
	}
	t0 := time.Now()
	if err := c.Create(e2eutil.Ctx(t), d); err != nil {
		t.Fatal(err)
	}
	e2eutil.Eventually(t, "2 pods Ready and "+conditions.PodExclusionsInSync+"=True", 180*time.Second, func() (bool, string) {
		return k.PodsAll(t, ns, app, 2, "", inSync)
	})
	t.Logf("Deployment created to 2 OSM-injected pods Ready and in sync in %s", time.Since(t0).Round(10*time.Millisecond))
	before := k.DeploymentPods(t, ns, app)
	oldHash := before[0].Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	for i := range before {
		assertInjectedByOSM(t, &before[i], "")
	}
	checkRules(t, &before[0], false)

	// The MeshConfig is changed as a user would; it is put back afterwards.
	mc := meshConfig(t)
	original, _, err := unstructured.NestedStringSlice(mc.Object, "spec", "traffic", "outboundIPRangeExclusionList")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(original, driftRange) {
		t.Fatalf("the MeshConfig already excludes %s: %v", driftRange, original)
	}
	t.Cleanup(func() { patchExclusions(t, original) })
	patchExclusions(t, append(slices.Clone(original), driftRange))
	t1 := time.Now()
	e2eutil.Eventually(t, "both running pods "+conditions.PodExclusionsInSync+"=False/"+conditions.Drifted, 60*time.Second, func() (bool, string) {
		return k.PodsAll(t, ns, app, 2, "", func(p *corev1.Pod) (bool, string) {
			cond := e2eutil.PodCondition(p, conditions.PodExclusionsInSync)
			if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != conditions.Drifted {
				return false, e2eutil.DescribeCondition(cond)
			}
			if !strings.Contains(cond.Message, driftRange) {
				return false, "the message does not name " + driftRange + ": " + cond.Message
			}
			return true, ""
		})
	})
	t.Logf("MeshConfig patched to both pods Drifted in %s", time.Since(t1).Round(10*time.Millisecond))
	drifted := k.DeploymentPods(t, ns, app)
	for i := range drifted {
		p := &drifted[i]
		t.Logf("pod %s: %s", p.Name, e2eutil.DescribeCondition(e2eutil.PodCondition(p, conditions.PodExclusionsInSync)))
		if !e2eutil.PodRunningReady(p) {
			t.Errorf("pod %s: drifted, but audit mode must leave it running: %s", p.Name, p.Status.Phase)
		}
		if p.UID != uidOf(before, p.Name) {
			t.Errorf("pod %s was replaced before the restart", p.Name)
		}
		assertOnlyConditionsWritten(t, findPod(before, p.Name), p)
	}

	t2 := time.Now()
	k.Kubectl(t, "rollout", "restart", "deployment/"+app, "-n", ns)
	k.Kubectl(t, "rollout", "status", "deployment/"+app, "-n", ns, "--timeout=170s")
	e2eutil.Eventually(t, "the replaced pods "+conditions.PodExclusionsInSync+"=True/"+conditions.InSync, 90*time.Second, func() (bool, string) {
		return k.PodsAll(t, ns, app, 2, oldHash, inSync)
	})
	t.Logf("rollout restart to 2 new pods in sync in %s", time.Since(t2).Round(10*time.Millisecond))
	after := k.DeploymentPods(t, ns, app)
	for i := range after {
		if after[i].Labels[appsv1.DefaultDeploymentUniqueLabelKey] == oldHash {
			continue
		}
		assertInjectedByOSM(t, &after[i], driftRange)
	}
	checkRules(t, &after[0], true)
}

// OSM's own pods are left as they were: no condition, label, annotation or spec change by
// meshkeeper, none of them replaced.
func TestOSMPodsUntouched(t *testing.T) {
	requireOSM(t)
	if len(osmPodsBefore) == 0 {
		t.Fatal("no pod in " + osmNamespace + " before meshkeeper was deployed")
	}
	for _, was := range osmPodsBefore {
		var now corev1.Pod
		if err := c.Get(e2eutil.Ctx(t), client.ObjectKeyFromObject(&was), &now); err != nil {
			t.Errorf("OSM's pod %s: %v", was.Name, err)
			continue
		}
		if now.UID != was.UID {
			t.Errorf("OSM's pod %s was replaced", was.Name)
		}
		assertSameObject(t, &was, &now)
		for _, cond := range now.Status.Conditions {
			if strings.HasPrefix(string(cond.Type), "meshkeeper.io/") {
				t.Errorf("OSM's pod %s has meshkeeper's condition %s", now.Name, cond.Type)
			}
		}
		for _, mf := range now.ManagedFields {
			if mf.FieldsV1 != nil && strings.Contains(mf.FieldsV1.GetRawString(), "meshkeeper") {
				t.Errorf("OSM's pod %s: %s wrote %s", now.Name, mf.Manager, mf.FieldsV1.GetRawString())
			}
		}
		t.Logf("OSM's pod %s: unchanged; fields written by %s", now.Name, managers(now.ManagedFields))
	}
}

// meshedNamespace creates a namespace added to OSM's mesh the way `osm namespace add` does it:
// the monitored-by label naming the mesh and sidecar injection enabled by annotation.
func meshedNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:        fmt.Sprintf("e2e-osm-%d", time.Now().Unix()%100000),
		Labels:      map[string]string{"openservicemesh.io/monitored-by": meshName},
		Annotations: map[string]string{"openservicemesh.io/sidecar-injection": "enabled"},
	}}
	if err := c.Create(e2eutil.Ctx(t), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() || !keep() {
			_, _ = k.TryRun("kubectl", "delete", "namespace", ns.Name, "--wait=false")
		}
	})
	return ns.Name
}

func keep() bool { return os.Getenv("E2E_KEEP") != "" }

func meshConfig(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	mc := &unstructured.Unstructured{}
	mc.SetGroupVersionKind(meshConfigGVK)
	if err := c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: osmNamespace, Name: meshConfigName}, mc); err != nil {
		t.Fatalf("OSM's MeshConfig: %v", err)
	}
	return mc
}

func patchExclusions(t *testing.T, ranges []string) {
	t.Helper()
	if ranges == nil {
		ranges = []string{}
	}
	b, err := json.Marshal(map[string]any{"spec": map[string]any{"traffic": map[string]any{"outboundIPRangeExclusionList": ranges}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.TryRun("kubectl", "patch", "meshconfig", meshConfigName, "-n", osmNamespace, "--type=merge", "-p", string(b)); err != nil {
		t.Errorf("patching the MeshConfig: %v", err)
	}
}

// assertInjectedByOSM checks a pod carries OSM's injection and nothing of meshkeeper's: OSM's
// init container (whose rules exclude wantRange when it is set) and the sidecar under Envoy's
// name, OSM's label, no meshkeeper-init.
func assertInjectedByOSM(t *testing.T, p *corev1.Pod, wantRange string) {
	t.Helper()
	inits, ctrs := containerNames(p.Spec.InitContainers), containerNames(p.Spec.Containers)
	if !slices.Equal(inits, []string{redirect.OSMInitContainerName}) {
		t.Errorf("pod %s: init containers %v, want only OSM's %s", p.Name, inits, redirect.OSMInitContainerName)
	}
	if !slices.Equal(ctrs, []string{"app", "envoy"}) {
		t.Errorf("pod %s: containers %v, want app and OSM's envoy", p.Name, ctrs)
	}
	if p.Labels[osmProxyUUIDLabel] == "" {
		t.Errorf("pod %s: no %s label: OSM did not inject it", p.Name, osmProxyUUIDLabel)
	}
	for k := range p.Annotations {
		if strings.Contains(k, "meshkeeper") {
			t.Errorf("pod %s: meshkeeper annotation %s", p.Name, k)
		}
	}
	for _, ic := range p.Spec.InitContainers {
		if ic.Name != redirect.OSMInitContainerName {
			continue
		}
		if ic.Image != osmInitImage {
			t.Errorf("pod %s: %s runs %s, want %s", p.Name, ic.Name, ic.Image, osmInitImage)
		}
		script := strings.Join(append(slices.Clone(ic.Command), ic.Args...), " ")
		if !strings.Contains(script, "iptables-restore") || !strings.Contains(script, "OSM_PROXY_OUTBOUND") {
			t.Errorf("pod %s: %s does not run OSM's rules: %q", p.Name, ic.Name, script)
		}
		if excluded := strings.Contains(script, "-d "+driftRange+" -j RETURN"); excluded != (wantRange != "") {
			t.Errorf("pod %s: OSM's rules exclude %s: %v, want %v", p.Name, driftRange, excluded, wantRange != "")
		}
	}
	for _, s := range p.Status.InitContainerStatuses {
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			t.Errorf("pod %s: init container %s: %+v", p.Name, s.Name, s.State)
		}
	}
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == "envoy" && s.Image != envoyStandin && s.Image != "docker.io/"+envoyStandin {
			t.Errorf("pod %s: envoy runs %s, want the stand-in %s", p.Name, s.Image, envoyStandin)
		}
	}
}

// checkRules reads the nat table of the pod's network namespace from the host: OSM's chains are
// there, and the drift range is excluded exactly when OSM injected the pod after the change.
func checkRules(t *testing.T, p *corev1.Pod, wantRange bool) {
	t.Helper()
	pid := k.HostPID(t, p, "app")
	var table string
	for _, tool := range []string{"iptables-save", "iptables-nft-save", "iptables-legacy-save"} {
		out, err := k.TryRun("nsenter", "-t", pid, "-n", tool, "-t", "nat")
		if err == nil && strings.Contains(out, "OSM_PROXY_OUTBOUND") {
			table = out
			break
		}
	}
	if table == "" {
		t.Errorf("pod %s: no OSM_PROXY_OUTBOUND chain in its network namespace", p.Name)
		return
	}
	rule := "-A OSM_PROXY_OUTBOUND -d " + driftRange + " -j RETURN"
	if got := strings.Contains(table, rule); got != wantRange {
		t.Errorf("pod %s: %q in its nat table: %v, want %v\n%s", p.Name, rule, got, wantRange, table)
	}
	n := strings.Count(table, "\n-A OSM_PROXY_")
	t.Logf("pod %s: %d rules in OSM's chains in its network namespace (read from the host)", p.Name, n)
}

// assertOnlyConditionsWritten checks that between two observations of a pod only its status
// changed, and that the field manager that wrote meshkeeper's conditions wrote nothing but them.
func assertOnlyConditionsWritten(t *testing.T, was, now *corev1.Pod) {
	t.Helper()
	if was == nil {
		t.Errorf("pod %s: not seen before", now.Name)
		return
	}
	assertSameObject(t, was, now)
	var mine []string
	for _, mf := range now.ManagedFields {
		if mf.FieldsV1 == nil || !strings.Contains(mf.FieldsV1.GetRawString(), "meshkeeper.io/") || mf.Manager == "kubelet" {
			continue
		}
		mine = append(mine, mf.Manager)
	}
	if len(mine) == 0 {
		t.Errorf("pod %s: no field manager wrote meshkeeper's conditions: %s", now.Name, managers(now.ManagedFields))
		return
	}
	for _, mf := range now.ManagedFields {
		if !slices.Contains(mine, mf.Manager) {
			continue
		}
		if mf.Subresource != "status" {
			t.Errorf("pod %s: %s wrote the pod itself, not only its status: %s", now.Name, mf.Manager, mf.FieldsV1.GetRawString())
			continue
		}
		if bad := notMeshkeeperConditions(mf.FieldsV1.GetRawBytes()); bad != "" {
			t.Errorf("pod %s: %s wrote %s, not only meshkeeper's conditions", now.Name, mf.Manager, bad)
		}
	}
	t.Logf("pod %s: only status conditions written by %v", now.Name, mine)
}

// notMeshkeeperConditions describes what in a managedFields set is not one of meshkeeper's pod
// conditions ("" when there is nothing else).
func notMeshkeeperConditions(raw []byte) string {
	var set map[string]any
	if err := json.Unmarshal(raw, &set); err != nil {
		return "unreadable fields: " + err.Error()
	}
	var extra []string
	for k, v := range set {
		if k != "f:status" {
			extra = append(extra, k)
			continue
		}
		status, _ := v.(map[string]any)
		for sk, sv := range status {
			if sk == "." {
				continue
			}
			if sk != "f:conditions" {
				extra = append(extra, "status "+sk)
				continue
			}
			conds, _ := sv.(map[string]any)
			for ck := range conds {
				if ck != "." && !strings.HasPrefix(ck, `k:{"type":"meshkeeper.io/`) {
					extra = append(extra, "condition "+ck)
				}
			}
		}
	}
	slices.Sort(extra)
	return strings.Join(extra, ", ")
}

// assertSameObject checks the labels, annotations and spec of two observations of a pod.
func assertSameObject(t *testing.T, was, now *corev1.Pod) {
	t.Helper()
	for what, pair := range map[string][2]any{
		"labels":      {was.Labels, now.Labels},
		"annotations": {was.Annotations, now.Annotations},
		"spec":        {was.Spec, now.Spec},
	} {
		a, _ := json.Marshal(pair[0])
		b, _ := json.Marshal(pair[1])
		if string(a) != string(b) {
			t.Errorf("pod %s: %s changed:\nwas %s\nnow %s", now.Name, what, a, b)
		}
	}
}

func managers(mfs []metav1.ManagedFieldsEntry) string {
	var out []string
	for _, mf := range mfs {
		s := mf.Manager + " (" + string(mf.Operation)
		if mf.Subresource != "" {
			s += " " + mf.Subresource
		}
		out = append(out, s+")")
	}
	return strings.Join(out, ", ")
}

func inSync(p *corev1.Pod) (bool, string) {
	if !e2eutil.PodRunningReady(p) {
		return false, "not Ready (" + string(p.Status.Phase) + ")"
	}
	cond := e2eutil.PodCondition(p, conditions.PodExclusionsInSync)
	if cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != conditions.InSync {
		return false, conditions.PodExclusionsInSync + " " + e2eutil.DescribeCondition(cond)
	}
	return true, ""
}

func findPod(pods []corev1.Pod, name string) *corev1.Pod {
	for i := range pods {
		if pods[i].Name == name {
			return &pods[i]
		}
	}
	return nil
}

func uidOf(pods []corev1.Pod, name string) types.UID {
	if p := findPod(pods, name); p != nil {
		return p.UID
	}
	return ""
}
