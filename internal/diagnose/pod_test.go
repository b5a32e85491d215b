package diagnose

import (
	"errors"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// want is the expected verdict of one check: its status and fragments its reason and hint contain.
type want struct {
	status Status
	reason []string
	hint   []string
}

func find(checks []Check, name string) *Check {
	for i := range checks {
		if checks[i].Name == name {
			return &checks[i]
		}
	}
	return nil
}

func TestDiagnosePod(t *testing.T) {
	ranges001 := script(t, "seed001-ranges.sh")
	basic001 := script(t, "seed001-basic.sh")
	seedPod := func() *podtest.PodBuilder { return makePod("test-58d4f8ff58-wtz4f").OSMInit(ranges001).Sidecar() }
	seedMC := makeMeshConfig(ranges("1.1.1.1/32", "2.2.2.2/24"))

	cases := []struct {
		name   string
		in     func() PodInput
		checks map[string]want
	}{
		{"seed 001: exclusions 1.1.1.1/32 and 2.2.2.2/24 rendered, everything healthy",
			func() PodInput { return healthy(seedPod().Running(initOK).Obj(), seedMC) },
			map[string]want{
				CheckSidecarInjected:   {StatusPass, []string{"envoy sidecar"}, nil},
				CheckSidecarReady:      {StatusPass, []string{"Running", "2/2"}, nil},
				CheckInitContainer:     {StatusPass, []string{"osm-init exited with code 0"}, nil},
				CheckPodAnnotations:    {StatusPass, []string{"no redirection annotations"}, nil},
				CheckExclusionsInSync:  {StatusPass, []string{"1.1.1.1/32", "2.2.2.0/24"}, nil},
				CheckNamespaceMonitor:  {StatusPass, []string{"monitored-by=osm"}, nil},
				CheckNamespaceInject:   {StatusPass, []string{"sidecar-injection=enabled"}, nil},
				CheckMeshConfig:        {StatusPass, []string{"osm-system/osm-mesh-config", "(generation 3)", "[1.1.1.1/32,2.2.2.2/24]"}, nil},
				CheckCRDs:              {StatusPass, []string{"meshconfigs.config.openservicemesh.io"}, nil},
				CheckMutatingWebhook:   {StatusPass, []string{"inject.meshkeeper.io -> service meshkeeper-system/meshkeeper-webhook-service"}, nil},
				CheckValidatingWebhook: {StatusPass, []string{"egress.meshkeeper.io"}, nil},
				CheckOperator:          {StatusPass, []string{"1/1 replicas available"}, nil},
			}},
		{"seed 001: a range added to the MeshConfig after the pod started is named",
			func() PodInput {
				return healthy(seedPod().Running(initOK).Obj(), makeMeshConfig(ranges("1.1.1.1/32", "2.2.2.2/24", "10.20.0.0/16")))
			},
			map[string]want{CheckExclusionsInSync: {StatusFail, []string{"outbound IP range 10.20.0.0/16 from MeshConfig osm-system/osm-mesh-config (generation 3) is not in the osm-init rules"},
				[]string{"kubectl rollout restart deployment/test -n test"}}}},
		{"seed 001: a range removed from the MeshConfig is named as unexpected",
			func() PodInput { return healthy(seedPod().Running(initOK).Obj(), makeMeshConfig(ranges("1.1.1.1/32"))) },
			map[string]want{CheckExclusionsInSync: {StatusFail, []string{"outbound IP range 2.2.2.0/24 is in the osm-init rules but neither"}, nil}}},
		{"seed 001: the basic rules when the MeshConfig asks for ranges",
			func() PodInput {
				return healthy(makePod("p").OSMInit(basic001).Sidecar().Running(initOK).Obj(), seedMC)
			},
			map[string]want{CheckExclusionsInSync: {StatusFail, []string{"1.1.1.1/32", "2.2.2.2/24", "is not in the osm-init rules"}, nil}}},
		{"the published '&& &&' command is unreadable, not accepted",
			func() PodInput {
				return healthy(makePod("p").OSMInit(script(t, "seed001-ranges-double-and.sh")).Sidecar().Running(initOK).Obj(), seedMC)
			},
			map[string]want{CheckExclusionsInSync: {StatusWarn, []string{"cannot read the rules of init container osm-init", "1:1049:", "whether the pod is in sync is unknown"},
				[]string{"kubectl rollout restart deployment/test -n test"}}}},
		{"rules given separately replace the init container",
			func() PodInput {
				in := healthy(makePod("p").OSMInit(basic001).Sidecar().Running(initOK).Obj(), seedMC)
				p, err := redirect.Parse([]byte(ranges001))
				if err != nil {
					t.Fatal(err)
				}
				in.Rules, in.RulesSource = p, "iptables-save"
				return in
			},
			map[string]want{CheckExclusionsInSync: {StatusPass, nil, nil}}},
		{"unreadable rules given separately warn, naming the source",
			func() PodInput {
				in := healthy(seedPod().Running(initOK).Obj(), seedMC)
				in.RulesSource, in.RulesErr = "dump.txt", errors.New("dump.txt:1:5: unknown option")
				return in
			},
			map[string]want{CheckExclusionsInSync: {StatusWarn, []string{"dump.txt", "unknown option"}, nil}}},
		{"init container failed: exit code and last log line",
			func() PodInput {
				in := healthy(seedPod().Running(corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}).Obj(), seedMC)
				in.InitLog = "iptables-restore: line 3 failed"
				return in
			},
			map[string]want{CheckInitContainer: {StatusFail, []string{"exited with code 2 (Error)", "last log line: iptables-restore: line 3 failed"},
				[]string{"kubectl logs test-58d4f8ff58-wtz4f -n test -c osm-init"}}}},
		{"init container crash-looping, log unreachable",
			func() PodInput {
				pod := seedPod().Running(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}).Obj()
				pod.Status.InitContainerStatuses[0].RestartCount = 4
				pod.Status.InitContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1}
				in := healthy(pod, seedMC)
				in.InitLogUnknown = "cannot get pods/log: node unreachable"
				return in
			},
			map[string]want{CheckInitContainer: {StatusFail, []string{"CrashLoopBackOff", "4 restarts", "last log line unavailable: cannot get pods/log"}, nil}}},
		{"no sidecar in an injected namespace: restart, later pod checks skipped",
			func() PodInput { return healthy(makePod("p").Running(initOK).Obj(), seedMC) },
			map[string]want{
				CheckSidecarInjected:  {StatusFail, []string{"no envoy sidecar"}, []string{"kubectl rollout restart deployment/test -n test"}},
				CheckSidecarReady:     {StatusSkip, nil, nil},
				CheckInitContainer:    {StatusSkip, nil, nil},
				CheckExclusionsInSync: {StatusSkip, nil, nil},
				CheckNamespaceMonitor: {StatusPass, nil, nil},
			}},
		{"namespace without label or annotation",
			func() PodInput {
				in := healthy(makePod("p").Running(initOK).Obj(), seedMC)
				in.Namespace = namespace("test", nil, nil)
				return in
			},
			map[string]want{
				CheckSidecarInjected:  {StatusFail, []string{"not meshed"}, []string{"kubectl label namespace test openservicemesh.io/monitored-by=osm"}},
				CheckNamespaceMonitor: {StatusFail, []string{"no openservicemesh.io/monitored-by label"}, []string{"kubectl label namespace test openservicemesh.io/monitored-by=osm --overwrite"}},
				CheckNamespaceInject:  {StatusFail, []string{"no openservicemesh.io/sidecar-injection annotation"}, []string{"kubectl annotate namespace test openservicemesh.io/sidecar-injection=enabled"}},
			}},
		{"namespace labelled for another mesh and ignored",
			func() PodInput {
				in := healthy(seedPod().Running(initOK).Obj(), seedMC)
				in.Namespace = namespace("test", map[string]string{injection.LabelMonitoredBy: "other", injection.LabelIgnore: "true"}, nil)
				return in
			},
			map[string]want{CheckNamespaceMonitor: {StatusFail, []string{"openservicemesh.io/ignore"}, []string{"openservicemesh.io/ignore-"}}}},
		{"kube-public labelled for the mesh never participates",
			func() PodInput {
				in := healthy(seedPod().Running(initOK).Obj(), seedMC)
				in.Namespace = namespace("kube-public", map[string]string{injection.LabelMonitoredBy: "osm"}, nil)
				return in
			},
			map[string]want{CheckNamespaceMonitor: {StatusFail, []string{"kube-public never participates"}, []string{"another namespace"}}}},
		{"pod annotation turns injection off",
			func() PodInput {
				return healthy(makePod("p").Annotate(injection.AnnotationSidecarInjection, "disabled").Running(initOK).Obj(), seedMC)
			},
			map[string]want{CheckNamespaceInject: {StatusFail, []string{"pod's annotation", "turns injection off"}, nil}}},
		{"invalid exclusion annotation",
			func() PodInput {
				return healthy(seedPod().Annotate(redirect.AnnotationOutboundPortExclusionList, "70000").Running(initOK).Obj(), seedMC)
			},
			map[string]want{
				CheckPodAnnotations:   {StatusFail, []string{"outbound-port-exclusion-list", "70000"}, nil},
				CheckExclusionsInSync: {StatusFail, []string{"cannot tell which exclusions"}, nil},
			}},
		{"sidecar crash-looping",
			func() PodInput {
				return healthy(seedPod().Running(initOK).SidecarStatus(corev1.ContainerStatus{RestartCount: 7,
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}).Obj(), seedMC)
			},
			map[string]want{CheckSidecarReady: {StatusFail, []string{"CrashLoopBackOff", "7 restarts", "1/2 containers ready"}, []string{"-c envoy --previous"}}}},
		{"MeshConfig missing: its check fails, the comparison is skipped",
			func() PodInput { return healthy(seedPod().Running(initOK).Obj(), nil) },
			map[string]want{
				CheckMeshConfig:       {StatusFail, []string{"osm-system/osm-mesh-config does not exist"}, []string{"kubectl get meshconfigs -A"}},
				CheckExclusionsInSync: {StatusSkip, []string{"does not exist"}, nil},
			}},
		{"MeshConfig with a range that breaks every new pod",
			func() PodInput {
				return healthy(seedPod().Running(initOK).Obj(), makeMeshConfig(ranges("999.1.1.1/32")))
			},
			map[string]want{CheckMeshConfig: {StatusFail, []string{"invalid traffic settings", "999.1.1.1/32"}, []string{"kubectl edit meshconfig osm-mesh-config -n osm-system"}}}},
		{"control plane broken: a CRD missing, empty CA bundle, webhook Service gone, operator unavailable",
			func() PodInput {
				in := healthy(seedPod().Running(initOK).Obj(), seedMC)
				delete(in.CRDs, "egresses.policy.openservicemesh.io")
				in.Mutating[0].Webhooks[0].ClientConfig.CABundle = nil
				in.Services = map[types.NamespacedName]bool{}
				in.Deployments = []appsv1.Deployment{deployment(false)}
				return in
			},
			map[string]want{
				CheckCRDs:              {StatusFail, []string{"missing CustomResourceDefinitions: egresses.policy.openservicemesh.io"}, []string{"kubectl apply -k config/crd"}},
				CheckMutatingWebhook:   {StatusFail, []string{"empty caBundle", "does not exist"}, nil},
				CheckValidatingWebhook: {StatusFail, []string{"meshkeeper-system/meshkeeper-webhook-service, which does not exist"}, nil},
				CheckOperator:          {StatusFail, []string{"0/1 replicas available", "minimum availability"}, []string{"kubectl describe deployment meshkeeper-controller-manager -n meshkeeper-system"}},
			}},
		{"nothing installed",
			func() PodInput {
				in := healthy(seedPod().Running(initOK).Obj(), seedMC)
				in.CRDs, in.Mutating, in.Validating, in.Deployments = map[string]bool{}, nil, nil, nil
				return in
			},
			map[string]want{
				CheckCRDs:              {StatusFail, []string{"meshconfigs.config.openservicemesh.io, egresses.policy.openservicemesh.io, ingressbackends.policy.openservicemesh.io"}, nil},
				CheckMutatingWebhook:   {StatusFail, []string{"no MutatingWebhookConfiguration"}, []string{"kubectl apply -k config/default"}},
				CheckValidatingWebhook: {StatusFail, []string{"no ValidatingWebhookConfiguration"}, nil},
				CheckOperator:          {StatusFail, []string{"no Deployment labelled app.kubernetes.io/name=meshkeeper in namespace meshkeeper-system"}, nil},
			}},
		{"audit mode beside OSM: no meshkeeper webhooks is expected, OSM's injector is named",
			func() PodInput {
				in := healthy(seedPod().Running(initOK).Obj(), seedMC)
				in.Mutating = []admissionregistrationv1.MutatingWebhookConfiguration{osmWebhook()}
				in.Validating = nil
				d := deployment(true)
				d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "manager", Args: []string{"--mode=audit", "--leader-elect"}}}
				in.Deployments = []appsv1.Deployment{d}
				return in
			},
			map[string]want{
				CheckMutatingWebhook:   {StatusSkip, []string{"audit mode", "osm-webhook-osm"}, nil},
				CheckValidatingWebhook: {StatusSkip, []string{"audit mode", "config/validating"}, nil},
				CheckOperator:          {StatusPass, []string{"1/1 replicas available"}, nil},
			}},
		{"inject mode beside OSM's injector: meshkeeper's injector is paused, with the fix",
			func() PodInput {
				in := healthy(seedPod().Running(initOK).Obj(), seedMC)
				in.Mutating = append(in.Mutating, osmWebhook())
				return in
			},
			map[string]want{
				CheckMutatingWebhook: {StatusWarn, []string{"paused", "osm-webhook-osm"}, []string{"--mode=audit"}},
			}},
		{"operator outside the cluster (make run, the demo): webhooks call a URL, no Deployment",
			func() PodInput {
				in := healthy(seedPod().Running(initOK).Obj(), seedMC)
				url := "https://127.0.0.1:9443/mutate-v1-pod"
				in.Mutating[0].Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: []byte("ca")}
				in.Deployments = nil
				return in
			},
			map[string]want{
				CheckMutatingWebhook: {StatusPass, []string{"https://127.0.0.1:9443/mutate-v1-pod"}, nil},
				CheckOperator:        {StatusWarn, []string{"runs outside the cluster", "https://127.0.0.1:9443/mutate-v1-pod"}, []string{"config/default"}},
			}},
		{"listing validating webhook configurations forbidden: only that check is skipped, naming its own resource",
			func() PodInput {
				in := healthy(seedPod().Running(initOK).Obj(), seedMC)
				in.Validating, in.ValidatingUnknown = nil, "forbidden to list validatingwebhookconfigurations"
				return in
			},
			map[string]want{
				CheckMutatingWebhook:   {StatusPass, []string{"MutatingWebhookConfiguration"}, nil},
				CheckValidatingWebhook: {StatusSkip, []string{"validatingwebhookconfigurations"}, nil},
			}},
		{"both webhook kinds forbidden: each skip names its own resource",
			func() PodInput {
				in := healthy(seedPod().Running(initOK).Obj(), seedMC)
				in.Mutating, in.MutatingUnknown = nil, "forbidden to list mutatingwebhookconfigurations"
				in.Validating, in.ValidatingUnknown = nil, "forbidden to list validatingwebhookconfigurations"
				return in
			},
			map[string]want{
				CheckMutatingWebhook:   {StatusSkip, []string{"mutatingwebhookconfigurations"}, nil},
				CheckValidatingWebhook: {StatusSkip, []string{"validatingwebhookconfigurations"}, nil},
			}},
		{"offline: cluster facts skipped, never failed",
			func() PodInput {
				in := healthy(seedPod().Obj(), seedMC)
				const why = Unknown("offline mode")
				in.Namespace, in.NamespaceUnknown = nil, why
				in.CRDs, in.CRDsUnknown = nil, why
				in.Mutating, in.Validating, in.WebhooksUnknown = nil, nil, why
				in.Deployments, in.OperatorUnknown = nil, why
				return in
			},
			map[string]want{
				CheckSidecarInjected:   {StatusPass, nil, nil},
				CheckSidecarReady:      {StatusSkip, []string{"no status"}, nil},
				CheckInitContainer:     {StatusSkip, []string{"no status"}, nil},
				CheckExclusionsInSync:  {StatusPass, nil, nil},
				CheckNamespaceMonitor:  {StatusSkip, []string{"offline mode"}, nil},
				CheckNamespaceInject:   {StatusSkip, []string{"offline mode"}, nil},
				CheckCRDs:              {StatusSkip, []string{"offline mode"}, nil},
				CheckMutatingWebhook:   {StatusSkip, []string{"offline mode"}, nil},
				CheckValidatingWebhook: {StatusSkip, []string{"offline mode"}, nil},
				CheckOperator:          {StatusSkip, []string{"offline mode"}, nil},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checks := DiagnosePod(tc.in())
			if len(checks) != len(CheckNames) {
				t.Fatalf("got %d checks, want one per name (%d)", len(checks), len(CheckNames))
			}
			for i, c := range checks {
				if c.Name != CheckNames[i] {
					t.Errorf("check %d is %q, want %q", i, c.Name, CheckNames[i])
				}
				if strings.Contains(c.Reason, "\n") {
					t.Errorf("%s: reason spans lines: %q", c.Name, c.Reason)
				}
				if c.Status == StatusFail && c.Hint == "" {
					t.Errorf("%s fails without a hint: %s", c.Name, c.Reason)
				}
			}
			for name, w := range tc.checks {
				c := find(checks, name)
				if c.Status != w.status {
					t.Errorf("%s: status %s, want %s (reason: %s)", name, c.Status, w.status, c.Reason)
				}
				for _, s := range w.reason {
					if !strings.Contains(c.Reason, s) {
						t.Errorf("%s: reason lacks %q: %s", name, s, c.Reason)
					}
				}
				for _, s := range w.hint {
					if !strings.Contains(c.Hint, s) {
						t.Errorf("%s: hint lacks %q: %s", name, s, c.Hint)
					}
				}
			}
		})
	}
}

func TestCheckCodesAreTheOperatorsReasons(t *testing.T) {
	in := healthy(makePod("p").OSMInit(script(t, "seed001-ranges.sh")).Sidecar().Running(initOK).Obj(), makeMeshConfig(ranges("3.3.3.3/32")))
	got := map[string]string{}
	for _, c := range DiagnosePod(in) {
		got[c.Name] = c.Code
	}
	for name, code := range map[string]string{CheckSidecarInjected: conditions.Injected, CheckInitContainer: conditions.Applied, CheckExclusionsInSync: conditions.Drifted} {
		if got[name] != code {
			t.Errorf("%s: code %q, want %q", name, got[name], code)
		}
	}
}

func TestWorstAndSummary(t *testing.T) {
	checks := []Check{{Status: StatusPass}, {Status: StatusSkip}, {Status: StatusWarn}, {Status: StatusPass}}
	if w := Worst(checks); w != StatusWarn {
		t.Errorf("worst %s, want warn", w)
	}
	if s := Summarize(checks); s != (Summary{Pass: 2, Warn: 1, Skip: 1}) {
		t.Errorf("summary %+v", s)
	}
	if w := Worst(append(checks, Check{Status: StatusFail})); w != StatusFail {
		t.Errorf("worst %s, want fail", w)
	}
}

// A MeshConfig read from a file has no generation: drift messages name the file instead of
// quoting "(generation 0)".
func TestDriftMessageNamesTheMeshConfigFile(t *testing.T) {
	in := healthy(makePod("p").OSMInit(script(t, "seed001-ranges.sh")).Sidecar().Running(initOK).Obj(), makeMeshConfig(ranges("3.3.3.3/32")))
	in.MeshConfig.Generation = 0
	in.MeshConfigSource = "meshconfig.yaml"
	c := find(DiagnosePod(in), CheckExclusionsInSync)
	if c.Status != StatusFail || !strings.Contains(c.Reason, "MeshConfig osm-system/osm-mesh-config (from file meshconfig.yaml)") || strings.Contains(c.Reason, "generation") {
		t.Errorf("exclusions-in-sync %s: %s", c.Status, c.Reason)
	}
}

// osmWebhook is the configuration OSM v1.2's injector registers for mesh osm.
func osmWebhook() admissionregistrationv1.MutatingWebhookConfiguration {
	return admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "osm-webhook-osm"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "osm-inject.k8s.io",
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"openservicemesh.io/monitored-by": "osm"}},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}}}}}
}
