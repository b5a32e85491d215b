package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// The cluster tests share one envtest control plane, started by the first test that needs it
// and stopped by TestMain.
var (
	envOnce sync.Once
	env     *testenv.Env
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}
	os.Exit(code)
}

// cluster returns the control plane with the scenario of the troubleshooting guides loaded.
func cluster(t *testing.T) *testenv.Env {
	t.Helper()
	envOnce.Do(func() {
		env, envErr = testenv.Start()
		if envErr == nil {
			envErr = loadScenario(context.Background(), env.Client)
		}
	})
	if envErr != nil {
		t.Fatalf("envtest: %v", envErr)
	}
	return env
}

func kubectlArgs(args ...string) []string {
	return append(args, "--kubeconfig", env.Kubeconfig)
}

// Objects of the scenario: the seed 001 pod healthy, one whose init container failed, one whose
// rules predate the MeshConfig's exclusions; the meshkeeper control plane; and the port collision
// of seed 003 (a mesh Service on port 7000, an Egress to an external Redis on 7000 and 7003).
const (
	redisIP = "192.0.2.6" // TEST-NET-1: never routed, outside envtest's Service range
)

func loadScenario(ctx context.Context, c client.Client) error {
	ranges, err := os.ReadFile("testdata/seed001-ranges.txt")
	if err != nil {
		return err
	}
	basic, err := os.ReadFile("../drift/testdata/seed001-basic.sh")
	if err != nil {
		return err
	}
	meshed := map[string]string{"openservicemesh.io/monitored-by": "osm"}
	never := &metav1.LabelSelector{MatchLabels: map[string]string{"meshkeeper.io/test-never": "true"}}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "osm-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshkeeper-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "test", Labels: meshed,
			Annotations: map[string]string{"openservicemesh.io/sidecar-injection": "enabled"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Labels: meshed}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
		&configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "osm-system", Name: "osm-mesh-config"},
			Spec: configv1alpha2.MeshConfigSpec{
				Traffic:      configv1alpha2.TrafficSpec{OutboundIPRangeExclusionList: []string{"1.1.1.1/32", "2.2.2.2/24"}},
				FeatureFlags: configv1alpha2.FeatureFlags{EnableEgressPolicy: true}}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "frontend"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "legacy", Name: "admin-ui"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.115", Ports: []corev1.ServicePort{{Name: "http", Port: 7000}}}},
		&policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "redis"},
			Spec: policyv1alpha1.EgressSpec{Sources: []policyv1alpha1.EgressSourceSpec{{Kind: "ServiceAccount", Name: "frontend", Namespace: "test"}},
				IPAddresses: []string{redisIP + "/32"},
				Ports:       []policyv1alpha1.PortSpec{{Number: 7000, Protocol: "tcp"}, {Number: 7003, Protocol: "tcp"}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "meshkeeper-system", Name: "meshkeeper-webhook-service"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443}}}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "meshkeeper-mutating-webhook-configuration"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "inject.meshkeeper.io", AdmissionReviewVersions: []string{"v1"},
				SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone), NamespaceSelector: never, ObjectSelector: never,
				ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: []byte("not-a-real-ca"),
					Service: &admissionregistrationv1.ServiceReference{Namespace: "meshkeeper-system", Name: "meshkeeper-webhook-service", Path: ptr.To("/mutate-v1-pod")}}}}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "meshkeeper-validating-webhook-configuration"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "egress.meshkeeper.io", AdmissionReviewVersions: []string{"v1"},
				SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone), NamespaceSelector: never, ObjectSelector: never,
				ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: []byte("not-a-real-ca"),
					Service: &admissionregistrationv1.ServiceReference{Namespace: "meshkeeper-system", Name: "meshkeeper-webhook-service"}}}}},
	}
	labels := map[string]string{"app.kubernetes.io/name": "meshkeeper"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "meshkeeper-system", Name: "meshkeeper-controller-manager", Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "ghcr.io/meshkeeper/manager:v0.4.0"}}}}}}
	objs = append(objs, dep,
		// A user who may read pods in namespace test and nothing else.
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "pod-reader"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "pod-reader"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pod-reader"},
			Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "pod-reader"}}})
	pods := []*corev1.Pod{
		seedPodObj("test-58d4f8ff58-wtz4f", string(ranges)), // healthy
		seedPodObj("broken-58d4f8ff58-x7k2p", string(ranges)),
		seedPodObj("drifted-58d4f8ff58-q9m4z", string(basic)),
	}
	for _, p := range pods {
		objs = append(objs, p)
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	// Status, as the kubelet and the deployment controller would write it.
	now := metav1.NewTime(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC))
	dep.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
			LastUpdateTime: now, LastTransitionTime: now}}}
	if err := c.Status().Update(ctx, dep); err != nil {
		return fmt.Errorf("deployment status: %w", err)
	}
	for i, p := range pods {
		init := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}
		if i == 1 {
			init = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", StartedAt: now, FinishedAt: now}}
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning,
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "osm-init", Image: p.Spec.InitContainers[0].Image, ImageID: "", State: init, Ready: i != 1}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "test", Image: "test:v1", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}},
				{Name: "envoy", Image: "envoyproxy/envoy:v1.18.3", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}},
			}}
		if i == 1 {
			p.Status.Phase = corev1.PodPending
			for j := range p.Status.ContainerStatuses {
				p.Status.ContainerStatuses[j].Ready = false
				p.Status.ContainerStatuses[j].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
			}
		}
		if err := c.Status().Update(ctx, p); err != nil {
			return fmt.Errorf("pod %s status: %w", p.Name, err)
		}
	}
	return nil
}

// seedPodObj is a replica of Deployment "test" in namespace test with the osm-init container of
// the OSM troubleshooting guide running script.
func seedPodObj(name, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: name, Labels: map[string]string{"app": "test", "pod-template-hash": "58d4f8ff58"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "test-58d4f8ff58", UID: "0b6c4c6e-1f7a-4d8e-9d61-2f1c1e9a7b10", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{ServiceAccountName: "frontend",
			InitContainers: []corev1.Container{{Name: "osm-init", Image: "openservicemesh/init:2c18593efc7a31986a6ae7f412e73b6067e11a57",
				Command: []string{"/bin/sh"}, Args: []string{"-c", strings.TrimSpace(script)}}},
			Containers: []corev1.Container{{Name: "test", Image: "test:v1"}, {Name: "envoy", Image: "envoyproxy/envoy:v1.18.3"}}},
	}
}

func TestClusterGolden(t *testing.T) {
	cluster(t)
	cases := []struct {
		name string
		code int
		args []string
	}{
		{"cluster-diagnose-healthy", 0, []string{"diagnose", "pod", "test-58d4f8ff58-wtz4f", "-n", "test"}},
		{"cluster-diagnose-healthy-json", 0, []string{"diagnose", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "-o", "json"}},
		{"cluster-diagnose-init-failed", 1, []string{"diagnose", "pod", "broken-58d4f8ff58-x7k2p", "-n", "test"}},
		{"cluster-diagnose-drifted-json", 1, []string{"diagnose", "pod", "drifted-58d4f8ff58-q9m4z", "-n", "test", "-o", "json"}},
		{"cluster-diagnose-other-operator-namespace", 1, []string{"diagnose", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "--operator-namespace", "elsewhere", "--meshconfig-name", "nope"}},
		{"cluster-explain-collision", 1, []string{"explain", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "--to", redisIP + ":7000"}},
		{"cluster-explain-egress-json", 0, []string{"explain", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "--to", redisIP + ":7003", "-o", "json"}},
		{"cluster-explain-bypass", 0, []string{"explain", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "--to", "1.1.1.1:443"}},
		{"cluster-explain-proxy-uid", 0, []string{"explain", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "--to", redisIP + ":7000", "--uid", "1500"}},
		{"cluster-explain-inbound", 0, []string{"explain", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "--inbound", "--port", "8080"}},
		{"cluster-explain-inbound-pod-reader", 0, []string{"explain", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "--as", "pod-reader", "--inbound", "--port", "8080"}},
		{"cluster-analyze-namespace", 1, []string{"analyze", "-n", "test"}},
		{"cluster-analyze-all-json", 1, []string{"analyze", "-A", "-o", "json"}},
		{"cluster-analyze-clean-namespace", 0, []string{"analyze", "-n", "plain"}},
		{"cluster-pod-not-found", 3, []string{"diagnose", "pod", "nope", "-n", "test"}},
		{"cluster-forbidden", 3, []string{"diagnose", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "--as", "jane"}},
		{"cluster-diagnose-pod-reader", 0, []string{"diagnose", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "--as", "pod-reader"}},
		{"cluster-explain-pod-reader", 0, []string{"explain", "pod", "test-58d4f8ff58-wtz4f", "-n", "test", "--as", "pod-reader", "--to", "1.1.1.1:443"}},
		{"cluster-analyze-forbidden", 3, []string{"analyze", "-A", "--as", "jane"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			runGolden(t, tc.name, tc.code, kubectlArgs(tc.args...)...)
			t.Logf("%s took %v", tc.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// The checks and findings must name the values a person has to act on.
func TestClusterVerdicts(t *testing.T) {
	cluster(t)
	stdout, stderr, code := run("", kubectlArgs("diagnose", "pod", "drifted-58d4f8ff58-q9m4z", "-n", "test", "-o", "json")...)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep diagnoseReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		switch c.Name {
		case "exclusions-in-sync":
			for _, v := range []string{"1.1.1.1/32", "2.2.2.2/24"} {
				if c.Status != "fail" || !strings.Contains(c.Reason, v) {
					t.Errorf("exclusions-in-sync %s does not name %s: %s", c.Status, v, c.Reason)
				}
			}
		default:
			if c.Status != "pass" {
				t.Errorf("%s: %s %s", c.Name, c.Status, c.Reason)
			}
		}
	}
	if len(rep.Skipped) != 0 {
		t.Errorf("nothing should be skipped with a reachable cluster: %+v", rep.Skipped)
	}

	stdout, _, _ = run("", kubectlArgs("analyze", "-A", "-o", "json")...)
	var ar analyzeReport
	if err := json.Unmarshal([]byte(stdout), &ar); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range ar.Findings {
		got[f.Code+" "+f.Objects[0]] = true
	}
	for _, want := range []string{"PortCollision Egress/test/redis", "InitContainerFailed Pod/test/broken-58d4f8ff58-x7k2p",
		"ExclusionsDrifted Pod/test/drifted-58d4f8ff58-q9m4z"} {
		if !got[want] {
			t.Errorf("analyze -A lacks %s: %v", want, got)
		}
	}
	if got["ExclusionsDrifted Pod/test/test-58d4f8ff58-wtz4f"] {
		t.Errorf("the healthy pod is reported drifted")
	}
}

func TestConnectionErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", dir)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cases := []struct {
		name string
		args []string
		has  []string
	}{
		{"no kubeconfig", []string{"diagnose", "pod", "web", "-n", "shop"}, []string{"no usable kubeconfig", "--pod FILE --meshconfig FILE"}},
		{"kubeconfig file missing", []string{"analyze", "--kubeconfig", dir + "/missing"}, []string{dir + "/missing"}},
		{"server unreachable", []string{"explain", "pod", "web", "-n", "shop", "--to", "1.1.1.1:80", "--server", "https://127.0.0.1:1", "--insecure-skip-tls-verify"},
			[]string{"cannot reach the API server at https://127.0.0.1:1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run("", tc.args...)
			if code != exitCluster {
				t.Errorf("exit %d, want %d: %s", code, exitCluster, stderr)
			}
			for _, s := range tc.has {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q: %s", s, stderr)
				}
			}
		})
	}
}
