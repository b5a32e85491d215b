package diagnose

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
)

// With Istio in the cluster, analyze reports HTTP and auto-detected Service ports that collide
// with external destinations, with their fixes; an unreadable mesh configuration is a Warning;
// without Istio nothing of it is reported.
func TestAnalyzeIstio(t *testing.T) {
	svc := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "dev-self", Name: "portal"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.233.0.115", Ports: []corev1.ServicePort{{Port: 7000}}}}
	pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "dev-self", Name: "test-0"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "test"}, {Name: "istio-proxy"}}}}
	entry := analysis.ServiceEntry{Namespace: "dev-self", Name: "redis", Hosts: []string{"redis.example.com"}, Resolution: "DNS",
		Ports: []analysis.ServiceEntryPort{{Number: 7000, Protocol: analysis.IstioTCP}}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio"},
		Data: map[string]string{analysis.IstioMeshKey: "outboundTrafficPolicy: {mode: SOMETIMES}"}}

	base := ClusterInput{MeshConfigRef: meshRef, Services: []corev1.Service{svc}, Now: testNow}
	if got := istioFindings(base); len(got) != 0 {
		t.Fatalf("no Istio in the cluster, yet: %v", got)
	}

	withPod := base
	withPod.Pods = []corev1.Pod{pod}
	got := Analyze(withPod)
	if !analysis.Has(got, conditions.FindingWellKnownPortCollision) {
		t.Fatalf("an Istio pod and a Service on 7000: %v", got)
	}

	full := withPod
	full.ServiceEntries, full.IstioMeshConfig = []analysis.ServiceEntry{entry}, cm
	got = Analyze(full)
	var collision *analysis.Finding
	for i := range got {
		if got[i].Code == conditions.FindingPortCollision {
			collision = &got[i]
		}
	}
	if collision == nil || collision.Severity != conditions.SeverityError || len(collision.Fixes) < 3 ||
		!strings.Contains(collision.Message, "redis.example.com:7000") || !strings.Contains(collision.Fixes[0], "kind: ServiceEntry") {
		t.Fatalf("PortCollision with fixes expected: %+v", got)
	}
	if !analysis.Has(got, CodeIstioMeshConfigInvalid) {
		t.Errorf("the invalid mesh configuration is not reported: %v", got)
	}
}
