package diagnose

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/meshkeeper/meshkeeper/internal/podtest"
)

const istioValues = `{"global":{"proxy":{"includeIPRanges":"*","excludeIPRanges":"","includeInboundPorts":"*","excludeInboundPorts":"","statusPort":15020}}}`

func istioCheck(t *testing.T, pod *corev1.Pod, name string) Check {
	t.Helper()
	in := PodInput{Pod: pod, Namespace: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled"}}},
		IstioNamespace: "istio-system", IstioInjector: podtest.IstioInjectorConfigMap(istioValues), Now: time.Unix(0, 0)}
	for _, c := range DiagnosePod(in) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check", name)
	return Check{}
}

func TestIstioPorts(t *testing.T) {
	base := func(args ...string) *podtest.PodBuilder {
		return podtest.NewPod("shop", "web-1", "web:v1").Deployment("web", "5f7d").IstioInit(args...).InitDone()
	}
	good := []string{"-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"}
	if c := istioCheck(t, base(good...).Obj(), CheckIstioPorts); c.Status != StatusPass {
		t.Errorf("fresh pod: %+v", c)
	}
	// A hand-edited template that dropped the health port from -d: the kubelet's probes are
	// then sent through the proxy.
	noHealth := append([]string{}, good...)
	noHealth[len(noHealth)-1] = "15090,15020"
	c := istioCheck(t, base(noHealth...).Obj(), CheckIstioPorts)
	if c.Status != StatusFail || !strings.Contains(c.Reason, "inbound port 15021 is captured") {
		t.Errorf("missing 15021: %+v", c)
	}
	// The proxy runs as another UID than the rules let through.
	pod := base(good...).Obj()
	pod.Spec.Containers[1].SecurityContext.RunAsUser = ptr.To[int64](1000)
	c = istioCheck(t, pod, CheckIstioPorts)
	if c.Status != StatusFail || !strings.Contains(c.Reason, "let UID 1337 bypass capture but istio-proxy runs as UID 1000") {
		t.Errorf("UID mismatch: %+v", c)
	}
	// A pod Istio should have injected and did not: the runbook stops at the sidecar.
	bare := podtest.NewPod("shop", "web-2", "web:v1").Deployment("web", "5f7d").Obj()
	if c := istioCheck(t, bare, CheckSidecarInjected); c.Status != StatusFail || c.Code != "SidecarMissing" {
		t.Errorf("bare pod: %+v", c)
	}
	if c := istioCheck(t, bare, CheckIstioPorts); c.Status != StatusSkip {
		t.Errorf("bare pod istio-ports: %+v", c)
	}
}
