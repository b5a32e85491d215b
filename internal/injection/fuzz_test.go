package injection

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// FuzzInject feeds arbitrary pod annotations to selection and injection. Whatever the input,
// neither may panic; injection either fails without returning a pod or returns a pod with exactly
// one init container and one sidecar added, whose argv keeps each rule set in its own argument.
func FuzzInject(f *testing.F) {
	f.Add("enabled", "80,443", "9090", "10.0.0.0/8,fd00::/8", "")
	f.Add("yes", "70000", "", "10.0.0.0/8$(reboot)", "192.168.0.0/16")
	f.Add("maybe", " , ,", "0", "::/0", "0.0.0.0/0")
	f.Fuzz(func(t *testing.T, inject, outPorts, inPorts, excl, incl string) {
		pod := testPod()
		pod.Annotations = map[string]string{
			AnnotationSidecarInjection:                      inject,
			redirect.AnnotationOutboundPortExclusionList:    outPorts,
			redirect.AnnotationInboundPortExclusionList:     inPorts,
			redirect.AnnotationOutboundIPRangeExclusionList: excl,
			redirect.AnnotationOutboundIPRangeInclusionList: incl,
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app", Labels: map[string]string{LabelMonitoredBy: "osm"}}}
		if _, err := Select(ns, pod, SelectOptions{MeshName: "osm"}); err != nil && !strings.Contains(err.Error(), AnnotationSidecarInjection) {
			t.Fatalf("selection error does not name the annotation: %v", err)
		}
		got, err := Inject(pod, testSpec(), testOptions())
		if err != nil {
			if got != nil {
				t.Fatal("failed injection returned a pod")
			}
			return
		}
		if len(got.Spec.InitContainers) != 1 || len(got.Spec.Containers) != 2 {
			t.Fatalf("init=%d containers=%d", len(got.Spec.InitContainers), len(got.Spec.Containers))
		}
		args := got.Spec.InitContainers[0].Args
		if len(args) < 5 || args[0] != redirect.InitVerbApply || args[1] != redirect.InitFlagIPv4Rules || args[3] != redirect.InitFlagIPv6Rules {
			t.Fatalf("unexpected init argv shape: %q", args)
		}
	})
}
