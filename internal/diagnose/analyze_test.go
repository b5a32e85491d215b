package diagnose

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func service(ns, name, clusterIP string, port int32) corev1.Service {
	return corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Ports: []corev1.ServicePort{{Name: "tcp", Port: port}}}}
}

func redisEgress(ports ...int32) policyv1alpha1.Egress {
	e := policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "redis"},
		Spec: policyv1alpha1.EgressSpec{Sources: []policyv1alpha1.EgressSourceSpec{{Kind: policyv1alpha1.KindServiceAccount, Name: "frontend", Namespace: "test"}},
			IPAddresses: []string{"10.0.0.6/32"}}}
	for _, p := range ports {
		e.Spec.Ports = append(e.Spec.Ports, policyv1alpha1.PortSpec{Number: p, Protocol: "tcp"})
	}
	return e
}

func egressOn(s *configv1alpha2.MeshConfigSpec) {
	s.FeatureFlags.EnableEgressPolicy = true
}

func codes(fs []analysis.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

func TestAnalyze(t *testing.T) {
	ranges001 := script(t, "seed001-ranges.sh")
	seedMC := makeMeshConfig(ranges("1.1.1.1/32", "2.2.2.2/24"), egressOn)
	base := func(mc *configv1alpha2.MeshConfig, pods ...*corev1.Pod) ClusterInput {
		in := ClusterInput{MeshConfigRef: meshRef, MeshConfig: mc,
			Namespaces:      []corev1.Namespace{*meshedNamespace(), *namespace("legacy", map[string]string{injection.LabelMonitoredBy: "osm"}, nil)},
			ServiceAccounts: []types.NamespacedName{{Namespace: "test", Name: "frontend"}},
			Selection:       injection.SelectOptions{MeshName: "osm"}, Now: testNow}
		in.Cluster.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}
		for _, p := range pods {
			in.Pods = append(in.Pods, *p)
		}
		return in
	}
	cases := []struct {
		name     string
		in       ClusterInput
		want     []string
		contains map[string][]string
	}{
		{"healthy seed 001 pod, no findings",
			base(seedMC, makePod("a").OSMInit(ranges001).Sidecar().Running(initOK).Obj()), nil, nil},
		{"drifted, failed, missing and not-ready pods",
			base(makeMeshConfig(ranges("1.1.1.1/32", "2.2.2.2/24", "9.9.9.0/24"), egressOn),
				makePod("drifted").OSMInit(ranges001).Sidecar().Running(initOK).Obj(),
				makePod("failed").OSMInit(ranges001).Sidecar().Running(corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}).Obj(),
				makePod("bare").Running(initOK).Obj(),
				makePod("noinit").Sidecar().Running(initOK).Obj(),
				makePod("unready").OSMInit(script(t, "seed001-ranges.sh")).Sidecar().Running(initOK).SidecarStatus(corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}).Obj()),
			[]string{CodeExclusionsDrifted, CodeExclusionsDrifted, CodeExclusionsDrifted, CodeInitContainerFailed, CodeInitContainerMissing, CodeSidecarMissing, CodeSidecarNotReady},
			map[string][]string{CodeExclusionsDrifted: {"9.9.9.0/24"}, CodeInitContainerFailed: {"test/failed", "exited with code 3"}, CodeSidecarMissing: {"test/bare"}}},
		{"unreadable rules are reported although the pod condition is Unknown, not drift",
			base(seedMC, makePod("unreadable").OSMInit(script(t, "seed001-ranges-double-and.sh")).Sidecar().Running(initOK).Obj()),
			[]string{CodeRulesUnreadable}, map[string][]string{CodeRulesUnreadable: {"test/unreadable", "syntax error"}}},
		{"MeshConfig missing: reported once, pods not judged against it",
			base(nil, makePod("a").OSMInit(ranges001).Sidecar().Running(initOK).Obj()),
			[]string{conditions.FindingMeshConfigNotFound}, nil},
		{"MeshConfig invalid",
			base(makeMeshConfig(ranges("999.1.1.1/32")), makePod("a").OSMInit(ranges001).Sidecar().Running(initOK).Obj()),
			[]string{CodeMeshConfigInvalid}, map[string][]string{CodeMeshConfigInvalid: {"999.1.1.1/32"}}},
		{"seed 003: a mesh Service on port 7000 swallows the external Redis",
			func() ClusterInput {
				in := base(seedMC, makePod("a").OSMInit(ranges001).Sidecar().Running(initOK).Obj())
				in.Services = []corev1.Service{service("legacy", "admin-ui", "10.96.0.115", 7000)}
				in.Egresses = []policyv1alpha1.Egress{redisEgress(7000, 7003)}
				return in
			}(),
			[]string{conditions.FindingPortCollision}, map[string][]string{conditions.FindingPortCollision: {"legacy/admin-ui", "port 7000", "test/a"}}},
		{"dangerous exclusions: capture disabled",
			base(makeMeshConfig(ranges("0.0.0.0/0"))),
			[]string{conditions.FindingCaptureDisabled}, nil},
		{"dangerous exclusions: the Service CIDR, or cluster ranges unknown",
			func() ClusterInput {
				in := base(makeMeshConfig(ranges("10.96.0.0/16")))
				in.Services = []corev1.Service{service("legacy", "admin-ui", "10.96.0.115", 7000)}
				return in
			}(),
			[]string{conditions.FindingExclusionOverlapsServiceCIDR, conditions.FindingExclusionCoversServices}, map[string][]string{conditions.FindingExclusionCoversServices: {"legacy/admin-ui"}}},
		{"cluster ranges unknown",
			func() ClusterInput {
				in := base(makeMeshConfig(ranges("10.96.0.0/16")))
				in.Cluster.ServiceCIDRs = nil
				return in
			}(),
			[]string{conditions.FindingClusterRangesUnknown}, nil},
		{"IngressBackend port excluded by the backend pods' own annotation",
			func() ClusterInput {
				mc := makeMeshConfig(ranges("1.1.1.1/32", "2.2.2.2/24"), func(s *configv1alpha2.MeshConfigSpec) { s.FeatureFlags.EnableIngressBackendPolicy = true })
				pod := makePod("web-1").OSMInit(ranges001).Sidecar().Running(initOK).Annotate(redirect.AnnotationInboundPortExclusionList, "8080").Obj()
				pod.Labels["app"] = "web"
				in := base(mc, pod)
				web := service("test", "web", "10.96.0.80", 80)
				web.Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
				web.Spec.Selector = map[string]string{"app": "web"}
				in.Services = []corev1.Service{web}
				in.IngressBackends = []policyv1alpha1.IngressBackend{{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "web"},
					Spec: policyv1alpha1.IngressBackendSpec{Backends: []policyv1alpha1.BackendSpec{{Name: "web", Port: policyv1alpha1.BackendPortSpec{Number: 8080, Protocol: "http"}}},
						Sources: []policyv1alpha1.IngressSourceSpec{{Kind: policyv1alpha1.KindIPRange, Name: "10.0.0.0/8"}}}}}
				return in
			}(),
			[]string{conditions.FindingBackendPortNotIntercepted, CodeExclusionsDrifted}, map[string][]string{conditions.FindingBackendPortNotIntercepted: {"annotation of pods test/web-1"}}},
		{"shadowed Egress destination",
			func() ClusterInput {
				in := base(makeMeshConfig(ranges("10.0.0.0/24"), egressOn))
				in.Cluster.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}
				in.Egresses = []policyv1alpha1.Egress{redisEgress(7000)}
				return in
			}(),
			[]string{conditions.FindingDestinationShadowed}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Analyze(tc.in)
			gotCodes := codes(got)
			w := slices.Clone(tc.want)
			slices.Sort(w)
			g := slices.Clone(gotCodes)
			slices.Sort(g)
			if !slices.Equal(g, w) {
				for _, f := range got {
					t.Logf("%s %s: %s", f.Severity, f.Code, f.Message)
				}
				t.Fatalf("codes %v, want %v", g, w)
			}
			for code, frags := range tc.contains {
				var msgs []string
				for _, f := range got {
					if f.Code == code {
						msgs = append(msgs, f.Message)
					}
				}
				all := strings.Join(msgs, "\n")
				for _, s := range frags {
					if !strings.Contains(all, s) {
						t.Errorf("%s lacks %q: %s", code, s, all)
					}
				}
			}
			for i := 1; i < len(got); i++ {
				if SeverityAtLeast(got[i].Severity, got[i-1].Severity) && got[i].Severity != got[i-1].Severity {
					t.Errorf("findings not sorted most severe first: %s before %s", got[i-1].Severity, got[i].Severity)
				}
			}
			for _, f := range got {
				if !slices.ContainsFunc(Codes, func(c struct {
					Code     string
					Severity conditions.Severity
				}) bool {
					return c.Code == f.Code
				}) {
					t.Errorf("code %s is not listed in Codes", f.Code)
				}
			}
		})
	}
}

// Every code Analyze can report has a section in docs/findings.md, and every section is a
// code: the document is the list users and alerts rely on.
func TestCodesDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "findings.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^### `?([A-Za-z]+)`?\\s*$\\n+\\*\\*Severity:\\*\\* ([A-Za-z ,]+)").FindAllStringSubmatch(string(data), -1) {
		documented[m[1]] = m[2]
	}
	for _, c := range Codes {
		sev, ok := documented[c.Code]
		if !ok {
			t.Errorf("code %s is not documented in docs/findings.md", c.Code)
			continue
		}
		if c.Severity != "" && !strings.Contains(sev, string(c.Severity)) {
			t.Errorf("code %s: documented severity %q, reported %s", c.Code, sev, c.Severity)
		}
		delete(documented, c.Code)
	}
	for code := range documented {
		t.Errorf("docs/findings.md documents %s, which Analyze never reports", code)
	}
}
