package injection

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ns(name string, labels, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
}

func podWith(annotations map[string]string, hostNetwork bool) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: annotations},
		Spec:       corev1.PodSpec{HostNetwork: hostNetwork},
	}
}

func TestSelect(t *testing.T) {
	opts := SelectOptions{MeshName: "osm", OperatorNamespace: "meshkeeper-system"}
	monitored := map[string]string{LabelMonitoredBy: "osm"}
	enabled := map[string]string{AnnotationSidecarInjection: "enabled"}
	disabled := map[string]string{AnnotationSidecarInjection: "disabled"}
	tests := []struct {
		name    string
		ns      *corev1.Namespace
		pod     *corev1.Pod
		inject  bool
		wantErr string
	}{
		{"monitored and enabled namespace", ns("app", monitored, enabled), podWith(nil, false), true, ""},
		{"namespace yes", ns("app", monitored, map[string]string{AnnotationSidecarInjection: "yes"}), podWith(nil, false), true, ""},
		{"namespace TRUE is case-insensitive", ns("app", monitored, map[string]string{AnnotationSidecarInjection: "TRUE"}), podWith(nil, false), true, ""},
		{"monitored but not annotated", ns("app", monitored, nil), podWith(nil, false), false, ""},
		{"pod enables in unannotated namespace", ns("app", monitored, nil), podWith(enabled, false), true, ""},
		{"pod disables in enabled namespace", ns("app", monitored, enabled), podWith(disabled, false), false, ""},
		{"pod no", ns("app", monitored, enabled), podWith(map[string]string{AnnotationSidecarInjection: "no"}, false), false, ""},
		{"pod false", ns("app", monitored, enabled), podWith(map[string]string{AnnotationSidecarInjection: "false"}, false), false, ""},
		{"pod enables in disabled namespace", ns("app", monitored, disabled), podWith(map[string]string{AnnotationSidecarInjection: "true"}, false), true, ""},
		{"other mesh", ns("app", map[string]string{LabelMonitoredBy: "other"}, enabled), podWith(enabled, false), false, ""},
		{"not monitored", ns("app", nil, enabled), podWith(enabled, false), false, ""},
		{"ignored namespace", ns("app", map[string]string{LabelMonitoredBy: "osm", LabelIgnore: ""}, enabled), podWith(enabled, false), false, ""},
		{"kube-system", ns("kube-system", monitored, enabled), podWith(enabled, false), false, ""},
		{"operator namespace", ns("meshkeeper-system", monitored, enabled), podWith(enabled, false), false, ""},
		{"host network", ns("app", monitored, enabled), podWith(enabled, true), false, ""},
		{"bad pod value", ns("app", monitored, enabled), podWith(map[string]string{AnnotationSidecarInjection: "maybe"}, false), false,
			`metadata.annotations[openservicemesh.io/sidecar-injection]: Invalid value: "maybe"`},
		{"bad namespace value", ns("app", monitored, map[string]string{AnnotationSidecarInjection: "on"}), podWith(nil, false), false,
			`namespace app: metadata.annotations[openservicemesh.io/sidecar-injection]: Invalid value: "on"`},
		{"pod value wins over a bad namespace value", ns("app", monitored, map[string]string{AnnotationSidecarInjection: "on"}), podWith(enabled, false), true, ""},
		{"nil namespace", nil, podWith(nil, false), false, "namespace of the pod is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Select(tt.ns, tt.pod, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if d.Inject != tt.inject {
				t.Fatalf("Inject = %v (%s), want %v", d.Inject, d.Reason, tt.inject)
			}
			if d.Reason == "" {
				t.Fatal("a decision must carry a reason")
			}
		})
	}
}

// TestNamespaceMembership pins OSM's rule for every namespace shape the controllers, drift,
// analysis and diagnose meet; they all ask NamespaceMembership, so a row here is a promise about
// each of them.
func TestNamespaceMembership(t *testing.T) {
	ours := map[string]string{LabelMonitoredBy: "osm"}
	tests := []struct {
		name     string
		ns       *corev1.Namespace
		meshName string
		want     Membership
	}{
		{"labelled for the mesh", ns("app", ours, nil), "osm", Member},
		{"any mesh when the name is unknown", ns("app", map[string]string{LabelMonitoredBy: "other"}, nil), "", Member},
		{"other mesh", ns("app", map[string]string{LabelMonitoredBy: "other"}, nil), "osm", OtherMesh},
		{"unlabelled", ns("app", nil, nil), "osm", Unlabelled},
		{"unlabelled, any mesh", ns("app", nil, nil), "", Unlabelled},
		{"nil namespace", nil, "osm", Unlabelled},
		{"ignore label wins", ns("app", map[string]string{LabelMonitoredBy: "osm", LabelIgnore: "true"}, nil), "osm", IgnoredNamespace},
		{"ignore label with an empty value", ns("app", map[string]string{LabelMonitoredBy: "osm", LabelIgnore: ""}, nil), "osm", IgnoredNamespace},
		{"ignore label on another mesh's namespace", ns("app", map[string]string{LabelMonitoredBy: "other", LabelIgnore: "x"}, nil), "osm", IgnoredNamespace},
		{"kube-system even when labelled", ns("kube-system", ours, nil), "osm", SystemNamespace},
		{"kube-public even when labelled", ns("kube-public", ours, nil), "osm", SystemNamespace},
		{"kube-system, any mesh", ns("kube-system", ours, nil), "", SystemNamespace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NamespaceMembership(tt.ns, tt.meshName); got != tt.want {
				t.Fatalf("NamespaceMembership = %d, want %d", got, tt.want)
			}
			if got := InMesh(tt.ns, tt.meshName); got != (tt.want == Member) {
				t.Fatalf("InMesh = %v, want %v", got, tt.want == Member)
			}
		})
	}
}
