package osmtest_test

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/osmtest"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// One control plane with OSM's CRDs and the fake injector for mesh "osm", shared by the tests.
var (
	env *testenv.Env
	inj *osmtest.Injector
	ctx = context.Background()
)

const meshConfigYAML = `apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata:
  name: osm-mesh-config
  namespace: osm-system
spec:
  sidecar:
    enablePrivilegedInitContainer: false
    logLevel: error
    localProxyMode: Localhost
  traffic:
    enableEgress: true
    enablePermissiveTrafficPolicyMode: true
    outboundIPRangeExclusionList:
    - 169.254.169.254/32
    outboundPortExclusionList:
    - 5432
    inboundPortExclusionList:
    - 9090
`

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		// The rules tests need no control plane; the envtest ones skip.
		return m.Run()
	}
	var err error
	if env, err = osmtest.StartEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	if err := seed(); err != nil {
		fmt.Fprintln(os.Stderr, "seeding:", err)
		return 1
	}
	if inj, err = osmtest.Start(ctx, env.Config, osmtest.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "starting the fake injector:", err)
		return 1
	}
	if err := inj.WaitReady(ctx, "meshed"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if err := inj.Stop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the fake injector:", err)
		code = 1
	}
	return code
}

func seed() error {
	mc := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(meshConfigYAML), &mc.Object); err != nil {
		return err
	}
	objs := []client.Object{
		namespace("osm-system", nil, nil),
		namespace("meshed", map[string]string{osmtest.LabelMonitoredBy: "osm"}, map[string]string{osmtest.AnnotationSidecarInject: "enabled"}),
		namespace("meshed-off", map[string]string{osmtest.LabelMonitoredBy: "osm"}, nil),
		namespace("plain", nil, map[string]string{osmtest.AnnotationSidecarInject: "enabled"}),
		namespace("other-mesh", map[string]string{osmtest.LabelMonitoredBy: "another"}, map[string]string{osmtest.AnnotationSidecarInject: "enabled"}),
		namespace("ignored", map[string]string{osmtest.LabelMonitoredBy: "osm", osmtest.LabelIgnore: "true"}, map[string]string{osmtest.AnnotationSidecarInject: "enabled"}),
		mc,
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s: %w", o.GetName(), err)
		}
	}
	return nil
}

func namespace(name string, labels, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
}

func needEnv(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Skip("envtest suite skipped in -short mode")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func appPod(ns, name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}},
	}
}

func containerNames(cs []corev1.Container) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

func TestOSMCRDsInstalled(t *testing.T) {
	needEnv(t)
	want, err := osmtest.CRDs()
	must(t, err)
	list := &apiextensionsv1.CustomResourceDefinitionList{}
	must(t, env.Client.List(ctx, list))
	var names []string
	byName := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for k := range list.Items {
		crd := &list.Items[k]
		names = append(names, crd.Name)
		byName[crd.Name] = crd
		if crd.Labels[osmtest.LabelReconcile] != osmtest.Version || crd.Labels[osmtest.LabelAppName] != osmtest.AppNameValue {
			t.Errorf("%s labels %v: want osm-bootstrap's", crd.Name, crd.Labels)
		}
	}
	for _, w := range want {
		if !slices.Contains(names, w.Name) {
			t.Errorf("CRD %s is not installed", w.Name)
		}
	}
	if len(names) != len(want) {
		t.Errorf("installed %v, want exactly OSM's %d", names, len(want))
	}
	hasStatus := func(name string) bool {
		crd := byName[name]
		if crd == nil {
			t.Fatalf("no CRD %s", name)
		}
		for _, v := range crd.Spec.Versions {
			if v.Storage {
				return v.Subresources != nil && v.Subresources.Status != nil
			}
		}
		return false
	}
	for name, status := range map[string]bool{
		"meshconfigs.config.openservicemesh.io":     false,
		"egresses.policy.openservicemesh.io":        false,
		"ingressbackends.policy.openservicemesh.io": true,
	} {
		if got := hasStatus(name); got != status {
			t.Errorf("%s: status subresource %v, want %v", name, got, status)
		}
	}
}

func TestMeshConfigOnOSMCRD(t *testing.T) {
	needEnv(t)
	mc := &unstructured.Unstructured{}
	mc.SetGroupVersionKind(osmtest.MeshConfigGVR.GroupVersion().WithKind("MeshConfig"))
	must(t, env.Client.Get(ctx, types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}, mc))
	got, _, _ := unstructured.NestedStringSlice(mc.Object, "spec", "traffic", "outboundIPRangeExclusionList")
	if !slices.Equal(got, []string{"169.254.169.254/32"}) {
		t.Errorf("stored exclusions %v", got)
	}
	// No status subresource: a status write is answered 404 although the object exists.
	patch := client.RawPatch(types.MergePatchType, []byte(`{"status":{"observedGeneration":1}}`))
	if err := env.Client.Status().Patch(ctx, mc, patch); !apierrors.IsNotFound(err) {
		t.Errorf("status patch on OSM's MeshConfig: %v, want NotFound", err)
	}
}

func TestWebhookConfigurationIsOSMs(t *testing.T) {
	needEnv(t)
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	must(t, env.Client.Get(ctx, types.NamespacedName{Name: inj.ConfigurationName()}, mwc))
	if mwc.Name != "osm-webhook-osm" || len(mwc.Webhooks) != 1 {
		t.Fatalf("configuration %s with %d webhooks", mwc.Name, len(mwc.Webhooks))
	}
	wh := mwc.Webhooks[0]
	if wh.Name != osmtest.WebhookName || *wh.FailurePolicy != admissionregistrationv1.Fail ||
		*wh.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun || *wh.TimeoutSeconds != 20 {
		t.Errorf("webhook %s failurePolicy %s sideEffects %s timeout %d", wh.Name, *wh.FailurePolicy, *wh.SideEffects, *wh.TimeoutSeconds)
	}
	if wh.ClientConfig.URL == nil || !strings.HasSuffix(*wh.ClientConfig.URL, osmtest.WebhookPath) || len(wh.ClientConfig.CABundle) == 0 {
		t.Errorf("client config %+v", wh.ClientConfig)
	}
	if wh.NamespaceSelector.MatchLabels[osmtest.LabelMonitoredBy] != "osm" {
		t.Errorf("namespace selector %v", wh.NamespaceSelector)
	}
}

func TestInjectsLikeOSM(t *testing.T) {
	needEnv(t)
	before, secretsBefore := inj.Injections(), len(inj.Secrets())
	pod := appPod("meshed", "injected", map[string]string{
		osmtest.AnnotationOutboundPortExclusions:   "8080",
		osmtest.AnnotationOutboundIPRangeExclusion: "192.168.0.0/16",
	})
	must(t, env.Client.Create(ctx, pod))

	uuid := pod.Labels[osmtest.LabelProxyUUID]
	if uuid == "" {
		t.Fatalf("no %s label: %v", osmtest.LabelProxyUUID, pod.Labels)
	}
	if got := containerNames(pod.Spec.InitContainers); !slices.Equal(got, []string{"osm-init"}) {
		t.Errorf("init containers %v", got)
	}
	if got := containerNames(pod.Spec.Containers); !slices.Equal(got, []string{"app", "envoy"}) {
		t.Errorf("containers %v", got)
	}
	initC, envoy := pod.Spec.InitContainers[0], pod.Spec.Containers[1]
	if initC.Image != "openservicemesh/init:v1.2.4" || !strings.HasPrefix(envoy.Image, "envoyproxy/envoy-distroless:v1.22.") {
		t.Errorf("images %s, %s", initC.Image, envoy.Image)
	}
	if !slices.Equal(initC.Command, []string{"/bin/sh"}) || len(initC.Args) != 2 || initC.Args[0] != "-c" ||
		!strings.HasPrefix(initC.Args[1], "iptables-restore --noflush <<EOF\n") {
		t.Errorf("osm-init command %q %q", initC.Command, initC.Args)
	}
	if inj.Injections() != before+1 {
		t.Errorf("injections %d, want %d", inj.Injections(), before+1)
	}

	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: "meshed", Name: osmtest.BootstrapSecretPrefix + uuid}
	must(t, env.Client.Get(ctx, key, secret))
	if len(secret.Data[osmtest.BootstrapFile]) == 0 || len(secret.OwnerReferences) != 0 {
		t.Errorf("bootstrap Secret keys %d, owners %v", len(secret.Data), secret.OwnerReferences)
	}
	if got := inj.Secrets(); len(got) != secretsBefore+1 || got[len(got)-1] != key {
		t.Errorf("Secrets() = %v, want %v last", got, key)
	}
	var volume bool
	for _, v := range pod.Spec.Volumes {
		volume = volume || (v.Name == osmtest.BootstrapVolumeName && v.Secret != nil && v.Secret.SecretName == key.Name)
	}
	if !volume {
		t.Errorf("no bootstrap volume for %s: %+v", key.Name, pod.Spec.Volumes)
	}

	// meshkeeper's OSM parser reads the here-document as the merged exclusions.
	parsed, err := redirect.ParseContainer(redirect.Container{Name: initC.Name, Command: initC.Command, Args: initC.Args})
	must(t, err)
	want := redirect.Exclusions{
		OutboundIPRanges: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32"), netip.MustParsePrefix("192.168.0.0/16")},
		OutboundPorts:    []uint16{5432, 8080},
		InboundPorts:     []uint16{9090},
		ProxyUID:         osmtest.ProxyUID,
		LocalProxyMode:   redirect.LocalProxyModeLocalhost,
	}
	if d := redirect.Diff(want, parsed.Exclusions()); !d.Empty() {
		t.Errorf("parsed exclusions differ from the merge: %s", d)
	}
}

// A copy of an injected pod (kubectl debug --copy-to) gets a new uuid and a copy of the old
// pod's Secret, and no second sidecar.
func TestAlreadyInjectedPodGetsNewIdentity(t *testing.T) {
	needEnv(t)
	orig := appPod("meshed", "original", nil)
	must(t, env.Client.Create(ctx, orig))
	oldUUID := orig.Labels[osmtest.LabelProxyUUID]

	cp := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "meshed", Name: "original-copy", Labels: orig.Labels}, Spec: *orig.Spec.DeepCopy()}
	cp.Spec.NodeName = ""
	must(t, env.Client.Create(ctx, cp))
	newUUID := cp.Labels[osmtest.LabelProxyUUID]
	if newUUID == "" || newUUID == oldUUID {
		t.Errorf("copy's uuid %q, original's %q", newUUID, oldUUID)
	}
	if got := containerNames(cp.Spec.Containers); !slices.Equal(got, []string{"app", "envoy"}) {
		t.Errorf("copy's containers %v", got)
	}
	must(t, env.Client.Get(ctx, types.NamespacedName{Namespace: "meshed", Name: osmtest.BootstrapSecretPrefix + newUUID}, &corev1.Secret{}))
	var secretName string
	for _, v := range cp.Spec.Volumes {
		if v.Name == osmtest.BootstrapVolumeName {
			secretName = v.Secret.SecretName
		}
	}
	if secretName != osmtest.BootstrapSecretPrefix+newUUID {
		t.Errorf("copy mounts %q", secretName)
	}
}

func TestLeavesOtherPodsAlone(t *testing.T) {
	needEnv(t)
	cases := []struct {
		ns, name    string
		annotations map[string]string
		admitted    bool // reaches the fake (selected by the configuration)
	}{
		{ns: "plain", name: "unmonitored"},
		{ns: "other-mesh", name: "another-mesh"},
		{ns: "ignored", name: "ignored"},
		{ns: "meshed-off", name: "namespace-not-enabled", admitted: true},
		{ns: "meshed", name: "pod-disabled", annotations: map[string]string{osmtest.AnnotationSidecarInject: "disabled"}, admitted: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			admissions, secrets := inj.Admissions(), len(inj.Secrets())
			pod := appPod(tc.ns, tc.name, tc.annotations)
			must(t, env.Client.Create(ctx, pod))
			if got := containerNames(pod.Spec.Containers); !slices.Equal(got, []string{"app"}) || len(pod.Spec.InitContainers) != 0 {
				t.Errorf("pod was changed: containers %v, init %v", got, containerNames(pod.Spec.InitContainers))
			}
			if _, ok := pod.Labels[osmtest.LabelProxyUUID]; ok {
				t.Errorf("pod labelled %v", pod.Labels)
			}
			wantAdmissions := admissions
			if tc.admitted {
				wantAdmissions++
			}
			if got := inj.Admissions(); got != wantAdmissions {
				t.Errorf("admissions %d, want %d", got, wantAdmissions)
			}
			if got := len(inj.Secrets()); got != secrets {
				t.Errorf("%d Secrets created", got-secrets)
			}
		})
	}
}

func TestDryRunCreatesNoSecret(t *testing.T) {
	needEnv(t)
	secrets := len(inj.Secrets())
	pod := appPod("meshed", "dry-run", nil)
	must(t, env.Client.Create(ctx, pod, client.DryRunAll))
	if got := containerNames(pod.Spec.Containers); !slices.Equal(got, []string{"app", "envoy"}) {
		t.Errorf("dry run not injected: %v", got)
	}
	if got := len(inj.Secrets()); got != secrets {
		t.Errorf("a dry run created %d Secrets", got-secrets)
	}
}

// OSM answers errors without the request's uid: the API server takes that for a failed call and
// failurePolicy Fail refuses the pod.
func TestInvalidAnnotationRefused(t *testing.T) {
	needEnv(t)
	pod := appPod("meshed", "bad-annotation", map[string]string{osmtest.AnnotationSidecarInject: "maybe"})
	err := env.Client.Create(ctx, pod)
	if err == nil {
		t.Fatal("pod with an invalid sidecar-injection annotation was admitted")
	}
	if !strings.Contains(err.Error(), osmtest.WebhookName) {
		t.Errorf("error does not name the webhook: %v", err)
	}
	t.Logf("API server's answer: %v", err)
}

// A second mesh's injector: after Stop its configuration is gone and its namespace's pods are
// created untouched.
func TestStopRemovesTheConfiguration(t *testing.T) {
	needEnv(t)
	must(t, env.Client.Create(ctx, namespace("second", map[string]string{osmtest.LabelMonitoredBy: "second"},
		map[string]string{osmtest.AnnotationSidecarInject: "enabled"})))
	second, err := osmtest.Start(ctx, env.Config, osmtest.Options{MeshName: "second"})
	must(t, err)
	must(t, second.WaitReady(ctx, "second"))
	if second.ConfigurationName() != "osm-webhook-second" {
		t.Errorf("configuration name %s", second.ConfigurationName())
	}
	pod := appPod("second", "while-running", nil)
	must(t, env.Client.Create(ctx, pod))
	if got := containerNames(pod.Spec.Containers); !slices.Equal(got, []string{"app", "envoy"}) {
		t.Errorf("second mesh's pod not injected: %v", got)
	}

	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	must(t, second.Stop(stopCtx))
	err = env.Client.Get(ctx, types.NamespacedName{Name: "osm-webhook-second"}, &admissionregistrationv1.MutatingWebhookConfiguration{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("configuration after Stop: %v", err)
	}
	pod = appPod("second", "after-stop", nil)
	must(t, env.Client.Create(ctx, pod))
	if got := containerNames(pod.Spec.Containers); !slices.Equal(got, []string{"app"}) {
		t.Errorf("pod created after Stop was injected: %v", got)
	}
}
