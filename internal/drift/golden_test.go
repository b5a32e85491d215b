package drift

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/golden"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// TestEvaluateGolden pins the full text of the verdicts people read in `kubectl describe pod`
// for the situations of the OSM troubleshooting guide (seed 001) and its v1.2 counterpart.
// Refresh with `go test ./internal/drift -run Golden -update` and review the diff.
func TestEvaluateGolden(t *testing.T) {
	seed := func(script string) *podtest.PodBuilder {
		return makePod("bookbuyer-7d9f8c-wtz4f").Deployment("bookbuyer", "7d9f8c").Sidecar().OSMInit(fixture(t, script))
	}
	cases := []struct {
		name string
		pod  *corev1.Pod
		mc   *configv1alpha2.MeshConfig
	}{
		{"seed001 init container completed, nothing excluded", seed("seed001-basic.sh").InitDone().Obj(), meshConfig(1)},
		{"seed001 ranges added to MeshConfig after the pod started", seed("seed001-basic.sh").InitDone().Obj(),
			meshConfig(7, ipExclusions("1.1.1.1/32", "2.2.2.2/24"))},
		{"seed001 ranges as published (stray &&)", seed("seed001-ranges-double-and.sh").InitDone().Obj(),
			meshConfig(7, ipExclusions("1.1.1.1/32", "2.2.2.2/24"))},
		{"seed001 ports: MeshConfig 6379,7070 and pod annotation 8080", seed("seed001-ports.sh").InitDone().
			Annotate(redirect.AnnotationOutboundPortExclusionList, "8080").Obj(), meshConfig(3, outPorts(6379, 7070))},
		{"seed001 ports: 7070 removed, annotation gone", seed("seed001-ports.sh").InitDone().Obj(), meshConfig(4, outPorts(6379))},
		{"osm v1.2 heredoc after an inbound port and a range changed", seed("osm-v12-heredoc.sh").InitDone().Obj(),
			meshConfig(9, ipExclusions("10.0.0.0/8", "172.16.0.0/12"), outPorts(6379, 7070), inPorts(9091))},
		{"init container crash-looping", seed("seed001-basic.sh").InitStatus(corev1.ContainerStatus{RestartCount: 3,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", Message: "iptables-restore: line 3 failed"}},
		}).Obj(), meshConfig(1)},
		{"no sidecar in an injected namespace", makePod("bookthief-6c5d4-abcde").Deployment("bookthief", "7d9f8c").Obj(), meshConfig(1)},
	}
	var b strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&b, "== %s\n", c.name)
		for _, cond := range Evaluate(gather(c.pod, c.mc)) {
			fmt.Fprintf(&b, "%s=%s %s\n  %s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
	}
	golden.CheckString(t, "evaluate.golden", b.String())
}
