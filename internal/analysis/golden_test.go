package analysis

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/golden"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// seed003 is the cluster of seed 003, with a few more ways to get it wrong: the external Redis
// 10.0.0.6 on 7000-7003, a ClusterIP Service on 7000, a headless one on 7001, and a pod whose
// annotation excludes the Redis address.
func seed003() EgressInput {
	return EgressInput{
		Egress:          seed003Egress().obj(),
		Mesh:            makeMesh().mesh(),
		Monitored:       map[string]bool{"shop": true, "cache": true},
		ServiceAccounts: []types.NamespacedName{{Namespace: "shop", Name: "frontend"}},
		Services: []corev1.Service{
			makeService("cache", "rediscluster").clusterIP("10.96.40.115").port(7000, 7000).obj(),
			makeService("cache", "sentinel").headless().port(7001, 7001).obj(),
		},
		Pods: []corev1.Pod{
			makePod("shop", "frontend-8c4c9dcb9-kpm8n", "frontend"),
			makePod("shop", "frontend-8c4c9dcb9-x7q2w", "frontend"),
			makePod("shop", "frontend-canary", "frontend", redirect.AnnotationOutboundIPRangeExclusionList, "10.0.0.0/24"),
		},
	}
}

func TestGoldenSeed003Findings(t *testing.T) {
	got, err := json.MarshalIndent(ToAPI(AnalyzeEgress(seed003())), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "seed003-findings.json", append(got, '\n'))
}

func TestGoldenSeed003Trace(t *testing.T) {
	in := seed003()
	var buf bytes.Buffer
	for _, pod := range in.Pods {
		cfg, errs := redirect.Effective(in.Mesh.Settings, pod.Annotations)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		ti := TraceInput{Config: cfg, ServiceAccount: types.NamespacedName{Namespace: pod.Namespace, Name: pod.Spec.ServiceAccountName},
			Mesh: in.Mesh, Services: in.Services, Monitored: in.Monitored, Egresses: []policyv1alpha1.Egress{*in.Egress}}
		buf.WriteString("pod " + pod.Namespace + "/" + pod.Name + "\n")
		for _, d := range []string{"10.0.0.6:7000", "10.0.0.6:7001", "10.0.0.6:7003", "10.0.0.7:7003", "10.96.40.115:7000", "203.0.113.9:443"} {
			buf.WriteString("  " + Trace(ti, netip.MustParseAddrPort(d)).String() + "\n")
		}
	}
	golden.Check(t, "seed003-trace.txt", buf.Bytes())
}
