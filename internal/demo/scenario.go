package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Names used throughout the scenario.
const (
	MeshName       = "osm"
	MeshNamespace  = "osm-system"
	MeshConfigName = "osm-mesh-config"
	AppNamespace   = "shop"
	NodeName       = "kwok-node-0"

	// FailInitAnnotation names the init container that the demo's kwok stage makes fail.
	FailInitAnnotation = "demo.meshkeeper.io/fail-init-container"
	// kwokCompletedWeight takes kwok's "init containers completed" stage out of the running.
	kwokCompletedWeight = "pod-init-container-completed.stage.kwok.x-k8s.io/weight"
)

// app is a Deployment whose ReplicaSet's pods the demo creates itself: envtest runs no
// controller-manager, so nothing else would.
type app struct {
	name, hash, image string
	port              int32
	rsUID             types.UID
}

func (a *app) rsName() string { return a.name + "-" + a.hash }

// pod is the pod a ReplicaSet of a would create, named with suffix.
func (a *app) pod(suffix string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      a.rsName() + "-" + suffix,
			Namespace: AppNamespace,
			Labels:    map[string]string{"app": a.name, "pod-template-hash": a.hash},
		},
		Spec: corev1.PodSpec{
			NodeName:           NodeName,
			ServiceAccountName: a.name,
			Containers: []corev1.Container{{
				Name:  "app",
				Image: a.image,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: a.port, Protocol: corev1.ProtocolTCP}},
			}},
		},
	}
	if a.rsUID != "" {
		p.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: a.rsName(), UID: a.rsUID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}}
	}
	return p
}

// MeshConfig is the mesh-wide configuration the scenario starts from.
func MeshConfig() *configv1alpha2.MeshConfig {
	return &configv1alpha2.MeshConfig{
		ObjectMeta: metav1.ObjectMeta{Name: MeshConfigName, Namespace: MeshNamespace},
		Spec: configv1alpha2.MeshConfigSpec{
			Traffic: configv1alpha2.TrafficSpec{
				EnablePermissiveTrafficPolicyMode: true,
				OutboundIPRangeExclusionList:      []string{"169.254.169.254/32"},
				OutboundPortExclusionList:         []int32{5432},
				InboundPortExclusionList:          []int32{9100},
			},
			FeatureFlags: configv1alpha2.FeatureFlags{EnableEgressPolicy: true, EnableIngressBackendPolicy: true},
		},
	}
}

// ExclusionChange is the merge patch of step 2: it adds 192.0.2.0/24 and outbound port 6379.
const ExclusionChange = `{"spec":{"traffic":{"outboundIPRangeExclusionList":["169.254.169.254/32","192.0.2.0/24"],"outboundPortExclusionList":[5432,6379]}}}`

// scenario holds what the steps share.
type scenario struct {
	r    *Runner
	sh   *Shell
	c    client.Client
	apps map[string]*app
	pods []string // names of the checkout pods, in creation order
}

func (s *scenario) checkout() *app { return s.apps["checkout"] }

func (s *scenario) run(ctx context.Context) {
	s.apps = map[string]*app{
		"checkout": {name: "checkout", hash: "7c9d8b6f5", image: "registry.example.com/shop/checkout:1.4.2", port: 8080},
		"payments": {name: "payments", hash: "5f6b7d9c4", image: "registry.example.com/shop/payments:2.0.1", port: 8443},
	}
	if !s.stepInSync(ctx) {
		if ctx.Err() != nil {
			return
		}
		s.r.Say("step 1 did not show an injected, in-sync mesh; the next steps would only repeat its failure, so they are skipped")
		return
	}
	if ctx.Err() != nil {
		return
	}
	s.stepDrift(ctx)
	if ctx.Err() != nil {
		return
	}
	s.stepRecover(ctx)
}

// create creates obj and reports the refusal, if any, as a failed expectation.
func (s *scenario) create(ctx context.Context, obj client.Object, what string) bool {
	if err := s.c.Create(ctx, obj); err != nil {
		s.r.Record("create "+what, false, err.Error())
		return false
	}
	return true
}

func (s *scenario) stepInSync(ctx context.Context) bool {
	r := s.r
	r.Step("a namespace joins the mesh; its pods are injected and in sync")
	ok := true
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: MeshNamespace}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ingress-nginx"}},
		{ObjectMeta: metav1.ObjectMeta{Name: AppNamespace,
			Labels:      map[string]string{injection.LabelMonitoredBy: MeshName},
			Annotations: map[string]string{injection.AnnotationSidecarInjection: "enabled"}}},
	} {
		ok = s.create(ctx, ns, "namespace "+ns.Name) && ok
	}
	r.Say("namespace %s joins the mesh as `osm namespace add` does it: labelled %s=%s, annotated %s=enabled",
		AppNamespace, injection.LabelMonitoredBy, MeshName, injection.AnnotationSidecarInjection)

	mc := MeshConfig()
	ok = s.create(ctx, mc, "MeshConfig "+MeshNamespace+"/"+MeshConfigName) && ok
	t := mc.Spec.Traffic
	r.Say("MeshConfig %s/%s excludes outbound IP ranges %v, outbound ports %v, inbound ports %v",
		MeshNamespace, MeshConfigName, t.OutboundIPRangeExclusionList, t.OutboundPortExclusionList, t.InboundPortExclusionList)

	// What the policies refer to: the workloads' ServiceAccounts and Services, and the ingress.
	for _, a := range []*app{s.apps["checkout"], s.apps["payments"]} {
		ok = s.create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: AppNamespace}}, "ServiceAccount "+a.name) && ok
		ok = s.create(ctx, service(AppNamespace, a.name, 80, a.port), "Service "+a.name) && ok
	}
	ok = s.create(ctx, service("ingress-nginx", "ingress-nginx-controller", 80, 80), "Service ingress-nginx-controller") && ok
	ok = s.create(ctx, egress(), "Egress") && ok
	ok = s.create(ctx, ingressBackend(), "IngressBackend") && ok
	r.Say("Egress %s/redis-cache lets checkout reach 203.0.113.10:6379; IngressBackend %s/checkout admits ingress-nginx on port 8080", AppNamespace, AppNamespace)

	ok = s.deploy(ctx, s.checkout(), 2) && ok
	if !ok {
		return false
	}
	sel := client.MatchingLabels{"app": "checkout"}
	ok = r.Expect(ctx, "both checkout pods carry the sidecar, run, and report SidecarInjected, RedirectionApplied and ExclusionsInSync True",
		s.podsCheck(sel, 2, InSync)) && ok
	ok = r.Expect(ctx, "the MeshConfig's status counts 2 meshed pods, both in sync",
		s.meshConfigCheck(configv1alpha2.PodSummary{Meshed: 2, InSync: 2})) && ok
	ok = r.Expect(ctx, "the Egress and the IngressBackend are Ready", s.policiesReady) && ok

	s.sh.Kubectl(ctx, "get", "pods", "-n", AppNamespace, "-o", "custom-columns="+PodColumns)
	s.sh.Kubectl(ctx, "get", "meshconfig", "-A")
	s.sh.Kubectl(ctx, "get", "egress,ingressbackend", "-n", AppNamespace)
	return ok
}

func (s *scenario) stepDrift(ctx context.Context) {
	r := s.r
	r.Step("the MeshConfig's exclusions change; running pods drift")

	bad := &configv1alpha2.MeshConfig{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: MeshNamespace, Name: MeshConfigName}, bad); err != nil {
		r.Record("read the MeshConfig", false, err.Error())
		return
	}
	bad.Spec.Traffic.OutboundIPRangeExclusionList = append(bad.Spec.Traffic.OutboundIPRangeExclusionList, "10.0.0.0/33")
	err := s.c.Update(ctx, bad)
	r.Say("first, a typo: adding 10.0.0.0/33 to outboundIPRangeExclusionList")
	switch {
	case err == nil:
		r.Record("the apiserver refuses the invalid CIDR", false, "the update was accepted")
	case apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err):
		r.Record("the apiserver refuses the invalid CIDR", strings.Contains(err.Error(), "10.0.0.0/33"), err.Error())
	default:
		r.Record("the apiserver refuses the invalid CIDR", false, "unexpected error: "+err.Error())
	}

	patch := []byte(ExclusionChange)
	mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Namespace: MeshNamespace, Name: MeshConfigName}}
	r.Say("then the real change: exclude 192.0.2.0/24 and outbound port 6379 as well")
	fmt.Fprintf(r.Out, "\n    $ kubectl patch meshconfig %s -n %s --type=merge -p %s\n", MeshConfigName, MeshNamespace, shellQuote(string(patch)))
	if err := s.c.Patch(ctx, mc, client.RawPatch(types.MergePatchType, patch)); err != nil {
		r.Record("patch the MeshConfig", false, err.Error())
		return
	}
	r.Say("pods keep the rules they were admitted with, so both checkout pods now run outdated exclusions")

	r.Expect(ctx, "both checkout pods report ExclusionsInSync False (Drifted), naming 192.0.2.0/24 and 6379",
		s.podsCheck(client.MatchingLabels{"app": "checkout"}, 2, Drifted("192.0.2.0/24", "6379")))
	r.Expect(ctx, "the MeshConfig's status counts 2 drifted pods",
		s.meshConfigCheck(configv1alpha2.PodSummary{Meshed: 2, Drifted: 2}))
	r.Expect(ctx, "the MeshConfig stays Ready (its change was accepted); PodsInSync says Drifted",
		s.meshConfigReadyWhileDrifted)
	r.Expect(ctx, "the Egress reports that port 6379 now bypasses its sidecar", s.egressShadowed)

	s.sh.Kubectl(ctx, "get", "pods", "-n", AppNamespace, "-o", "custom-columns="+PodColumns)
	s.sh.Kubectl(ctx, "get", "meshconfig", "-A")
	if len(s.pods) > 0 {
		s.sh.Kubectl(ctx, "get", "pod", s.pods[0], "-n", AppNamespace, "-o",
			`jsonpath={.status.conditions[?(@.type=="`+conditions.PodExclusionsInSync+`")].message}{"\n"}`)
		s.diagnose(ctx, s.pods[0])
	}
	s.sh.Kubectl(ctx, "get", "egress", "redis-cache", "-n", AppNamespace, "-o", `jsonpath={range .status.findings[*]}{.severity} {.code}: {.message}{"\n"}{end}`)
}

func (s *scenario) stepRecover(ctx context.Context) {
	r := s.r
	r.Step("a replaced pod is back in sync; a pod whose init container fails is reported")
	if len(s.pods) == 0 {
		r.Record("replace a checkout pod", false, "no checkout pod was created")
		return
	}
	old := s.pods[0]
	r.Say("replacing %s the way its ReplicaSet would after `kubectl rollout restart`: delete it, create a successor", old)
	fmt.Fprintf(r.Out, "\n    $ kubectl delete pod %s -n %s\n", old, AppNamespace)
	if err := s.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: old, Namespace: AppNamespace}},
		client.GracePeriodSeconds(1)); err != nil {
		r.Record("delete pod "+old, false, err.Error())
		return
	}
	r.Expect(ctx, "pod "+old+" is gone", func(ctx context.Context) (bool, string, error) {
		err := s.c.Get(ctx, client.ObjectKey{Namespace: AppNamespace, Name: old}, &corev1.Pod{})
		if apierrors.IsNotFound(err) {
			return true, "deleted", nil
		}
		return false, "still present (kwok removes it once its grace period ends)", err
	})
	fresh := s.checkout().pod(podSuffixes[len(s.pods)])
	if !s.createPod(ctx, fresh) {
		return
	}
	r.Expect(ctx, "the new pod "+fresh.Name+" is injected with today's exclusions: ExclusionsInSync True",
		s.podsCheck(client.MatchingFields{"metadata.name": fresh.Name}, 1, InSync))
	if len(s.pods) > 1 {
		r.Expect(ctx, "the other old pod "+s.pods[1]+" still reports Drifted",
			s.podsCheck(client.MatchingFields{"metadata.name": s.pods[1]}, 1, Drifted("6379")))
	}
	r.Expect(ctx, "the MeshConfig's status counts 1 pod in sync and 1 drifted",
		s.meshConfigCheck(configv1alpha2.PodSummary{Meshed: 2, InSync: 1, Drifted: 1}))

	pay := s.apps["payments"]
	r.Say("deploying payments with one replica whose %s init container exits with code 1", redirect.InitContainerName)
	r.Say("(kwok plays the kubelet: the pod is annotated %s=%s for the demo's own kwok Stage)", FailInitAnnotation, redirect.InitContainerName)
	if !s.deploy(ctx, pay, 1) {
		return
	}
	r.Expect(ctx, "the payments pod reports RedirectionApplied False (InitContainerFailed) with exit code 1",
		s.podsCheck(client.MatchingLabels{"app": pay.name}, 1, InitFailed(1)))
	r.Expect(ctx, "the MeshConfig's status counts the failed pod",
		s.meshConfigCheck(configv1alpha2.PodSummary{Meshed: 3, InSync: 1, Drifted: 1, Failed: 1}))

	s.sh.Kubectl(ctx, "get", "pods", "-n", AppNamespace)
	s.sh.Kubectl(ctx, "get", "pods", "-n", AppNamespace, "-o", "custom-columns="+PodColumns)
	s.sh.Kubectl(ctx, "get", "meshconfig", "-A")
	s.sh.Kubectl(ctx, "get", "pods", "-n", AppNamespace, "-l", "app="+pay.name, "-o",
		`jsonpath={range .items[*]}{.status.conditions[?(@.type=="`+conditions.PodRedirectionApplied+`")].message}{"\n"}{end}`)
}

// podSuffixes are the random-looking suffixes of the pods the demo creates, fixed so that every
// run (and the README) shows the same names.
var podSuffixes = []string{"x7k2p", "m4q9t", "r8w3n", "c5v6b"}

// deploy creates a Deployment and its ReplicaSet as records (nothing reconciles them here), then
// the ReplicaSet's pods, bound to the kwok node.
func (s *scenario) deploy(ctx context.Context, a *app, replicas int32) bool {
	labels := map[string]string{"app": a.name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: AppNamespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: a.pod("").Spec},
		},
	}
	if !s.create(ctx, d, "Deployment "+a.name) {
		return false
	}
	rsLabels := map[string]string{"app": a.name, "pod-template-hash": a.hash}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: a.rsName(), Namespace: AppNamespace, Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: rsLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: rsLabels}, Spec: a.pod("").Spec},
		},
	}
	if !s.create(ctx, rs, "ReplicaSet "+rs.Name) {
		return false
	}
	a.rsUID = rs.UID
	ok := true
	for i := int32(0); i < replicas; i++ {
		p := a.pod(podSuffixes[i])
		if a.name == "payments" {
			p.Annotations = map[string]string{FailInitAnnotation: redirect.InitContainerName, kwokCompletedWeight: "0"}
		}
		ok = s.createPod(ctx, p) && ok
	}
	return ok
}

// createPod creates a pod and says what the injector did to it, from the admitted object.
func (s *scenario) createPod(ctx context.Context, p *corev1.Pod) bool {
	if !s.create(ctx, p, "pod "+p.Name) {
		return false
	}
	if p.Labels["app"] == "checkout" {
		s.pods = append(s.pods, p.Name)
	}
	var inits, containers []string
	for _, c := range p.Spec.InitContainers {
		inits = append(inits, c.Name)
	}
	for _, c := range p.Spec.Containers {
		containers = append(containers, c.Name)
	}
	s.r.Say("created pod %s on %s; admitted with init containers %v and containers %v", p.Name, NodeName, inits, containers)
	return true
}

// podsCheck lists the pods of the app namespace matching opts and applies verdict to each.
func (s *scenario) podsCheck(opts client.ListOption, want int, verdict Verdict) Check {
	return func(ctx context.Context) (bool, string, error) {
		pods := &corev1.PodList{}
		if err := s.c.List(ctx, pods, client.InNamespace(AppNamespace), opts); err != nil {
			return false, "", err
		}
		live := slices.DeleteFunc(pods.Items, func(p corev1.Pod) bool { return p.DeletionTimestamp != nil })
		ok, detail := Every(live, want, verdict)
		return ok, detail, nil
	}
}

func (s *scenario) meshConfigCheck(want configv1alpha2.PodSummary) Check {
	return func(ctx context.Context) (bool, string, error) {
		mc := &configv1alpha2.MeshConfig{}
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: MeshNamespace, Name: MeshConfigName}, mc); err != nil {
			return false, "", err
		}
		ok, detail := MeshConfigCounts(mc, want)
		return ok, detail, nil
	}
}

func (s *scenario) meshConfigReadyWhileDrifted(ctx context.Context) (bool, string, error) {
	mc := &configv1alpha2.MeshConfig{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: MeshNamespace, Name: MeshConfigName}, mc); err != nil {
		return false, "", err
	}
	ok, detail := ReadyWhileDrifted(mc)
	return ok, detail, nil
}

func (s *scenario) policiesReady(ctx context.Context) (bool, string, error) {
	e := &policyv1alpha1.Egress{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: AppNamespace, Name: "redis-cache"}, e); err != nil {
		return false, "", err
	}
	ib := &policyv1alpha1.IngressBackend{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: AppNamespace, Name: "checkout"}, ib); err != nil {
		return false, "", err
	}
	eOK, eDetail := ReadyCondition(e.Status.Conditions, e.Generation)
	iOK, iDetail := ReadyCondition(ib.Status.Conditions, ib.Generation)
	return eOK && iOK, "Egress redis-cache: " + eDetail + "; IngressBackend checkout: " + iDetail, nil
}

func (s *scenario) egressShadowed(ctx context.Context) (bool, string, error) {
	e := &policyv1alpha1.Egress{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: AppNamespace, Name: "redis-cache"}, e); err != nil {
		return false, "", err
	}
	ok, detail := HasFinding(e.Status.Findings, conditions.FindingDestinationShadowed, "6379")
	return ok, detail, nil
}

// diagnose runs the CLI's pod diagnosis when this build of the CLI has it.
func (s *scenario) diagnose(ctx context.Context, pod string) {
	if !s.sh.Has(ctx, "bin/meshkeeper", "diagnose", "pod", "--help") {
		fmt.Fprintf(s.r.Out, "\n    (bin/meshkeeper has no `diagnose pod` command in this build; the condition message above is what it would explain)\n")
		return
	}
	s.sh.Command(ctx, "bin/meshkeeper", "diagnose", "pod", pod, "-n", AppNamespace)
	s.r.Say("(diagnose exits 1 because the pod drifted; its operator check can only warn, since the demo runs")
	s.r.Say(" the manager as a local process rather than as a Deployment in meshkeeper-system)")
}

func service(ns, name string, port, target int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: port, TargetPort: intstr.FromInt32(target),
				Protocol: corev1.ProtocolTCP}},
		},
	}
}

func egress() *policyv1alpha1.Egress {
	return &policyv1alpha1.Egress{
		ObjectMeta: metav1.ObjectMeta{Name: "redis-cache", Namespace: AppNamespace},
		Spec: policyv1alpha1.EgressSpec{
			Sources:     []policyv1alpha1.EgressSourceSpec{{Kind: "ServiceAccount", Name: "checkout", Namespace: AppNamespace}},
			IPAddresses: []string{"203.0.113.10/32"},
			Ports:       []policyv1alpha1.PortSpec{{Number: 6379, Protocol: "tcp"}},
		},
	}
}

func ingressBackend() *policyv1alpha1.IngressBackend {
	return &policyv1alpha1.IngressBackend{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout", Namespace: AppNamespace},
		Spec: policyv1alpha1.IngressBackendSpec{
			Backends: []policyv1alpha1.BackendSpec{{Name: "checkout", Port: policyv1alpha1.BackendPortSpec{Number: 8080, Protocol: "http"}}},
			Sources:  []policyv1alpha1.IngressSourceSpec{{Kind: "Service", Name: "ingress-nginx-controller", Namespace: "ingress-nginx"}},
		},
	}
}
