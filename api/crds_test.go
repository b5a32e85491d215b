package api_test

import (
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha1 "github.com/meshkeeper/meshkeeper/api/config/v1alpha1"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

var (
	validSamples   = mustLoad("config/samples")
	invalidSamples = mustLoad("config/samples/invalid")
)

func mustLoad(dir string) []sample {
	s, err := loadSamples(dir)
	if err != nil {
		panic(err)
	}
	return s
}

// getLike reads back the object u names, in u's own group/version.
func getLike(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(u.GroupVersionKind())
	return got, k8s.Get(ctx, client.ObjectKeyFromObject(u), got)
}

func deleteLike(u *unstructured.Unstructured) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(u.GroupVersionKind())
	obj.SetNamespace(u.GetNamespace())
	obj.SetName(u.GetName())
	Expect(client.IgnoreNotFound(k8s.Delete(ctx, obj))).To(Succeed())
}

var _ = Describe("config/samples", func() {
	It("has an example of every kind and version", func() {
		seen := map[schema.GroupVersionKind]bool{}
		for _, s := range validSamples {
			for _, u := range s.objs {
				seen[u.GroupVersionKind()] = true
			}
		}
		Expect(seen).To(HaveKey(configv1alpha2.GroupVersion.WithKind("MeshConfig")))
		Expect(seen).To(HaveKey(configv1alpha1.GroupVersion.WithKind("MeshConfig")))
		Expect(seen).To(HaveKey(policyv1alpha1.GroupVersion.WithKind("Egress")))
		Expect(seen).To(HaveKey(policyv1alpha1.GroupVersion.WithKind("IngressBackend")))
	})

	for _, s := range validSamples {
		It("applies "+s.path+" with server-side apply and reads every field back", func() {
			for _, u := range s.objs {
				ensureNamespace(u.GetNamespace())
				DeferCleanup(deleteLike, u)
				Expect(apply(u)).To(Succeed(), "applying %s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
				if u.GroupVersionKind() == configv1alpha1.GroupVersion.WithKind("MeshConfig") {
					Expect(strings.Join(warnings.all(), "\n")).To(ContainSubstring("v1alpha1 MeshConfig is deprecated"))
				}

				got, err := getLike(u)
				Expect(err).NotTo(HaveOccurred())
				Expect(contained(u.Object["spec"], got.Object["spec"], "spec")).To(Succeed())
				og, found, err := unstructured.NestedInt64(got.Object, "status", "observedGeneration")
				Expect(err).NotTo(HaveOccurred())
				Expect(found).To(BeTrue(), "status.observedGeneration is not defaulted")
				Expect(og).To(Equal(conditions.ObservedGenerationUnset))
			}
		})
	}
})

var _ = Describe("config/samples/invalid", func() {
	It("has samples to reject", func() {
		Expect(len(invalidSamples)).To(BeNumerically(">=", 20))
	})

	for _, s := range invalidSamples {
		It("rejects "+s.path, func() {
			Expect(s.expect).NotTo(BeEmpty(), "missing '# expect:' header")
			Expect(s.field).NotTo(BeEmpty(), "missing '# field:' header")
			Expect(s.objs).To(HaveLen(1), "one rejection per file")
			u := s.objs[0]
			ensureNamespace(u.GetNamespace())
			DeferCleanup(deleteLike, u)

			err := apply(u)
			Expect(err).To(HaveOccurred())
			GinkgoWriter.Printf("%s: %v\n", s.path, err)
			Expect(err.Error()).To(ContainSubstring(s.expect))
			Expect(err.Error()).To(ContainSubstring(s.field))

			_, err = getLike(u)
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the rejected object exists: %v", err)
		})
	}
})

var _ = Describe("status defaults", func() {
	const ns = "status-defaults"
	BeforeEach(func() { ensureNamespace(ns) })

	minimal := func() []client.Object {
		return []client.Object{
			&configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "v1alpha2", Namespace: ns}},
			&configv1alpha1.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1", Namespace: ns}},
			&policyv1alpha1.Egress{
				ObjectMeta: metav1.ObjectMeta{Name: "egress", Namespace: ns},
				Spec: policyv1alpha1.EgressSpec{
					Sources: []policyv1alpha1.EgressSourceSpec{{Kind: policyv1alpha1.KindServiceAccount, Name: "curl", Namespace: ns}},
					Ports:   []policyv1alpha1.PortSpec{{Number: 443, Protocol: policyv1alpha1.ProtocolHTTPS}},
				},
			},
			&policyv1alpha1.IngressBackend{
				ObjectMeta: metav1.ObjectMeta{Name: "ingressbackend", Namespace: ns},
				Spec: policyv1alpha1.IngressBackendSpec{
					Backends: []policyv1alpha1.BackendSpec{{Name: "web", Port: policyv1alpha1.BackendPortSpec{Number: 8080, Protocol: policyv1alpha1.ProtocolHTTP}}},
					Sources:  []policyv1alpha1.IngressSourceSpec{{Kind: policyv1alpha1.KindIPRange, Name: "10.0.0.0/8"}},
				},
			},
		}
	}

	observedGeneration := func(obj client.Object) int64 {
		switch o := obj.(type) {
		case *configv1alpha2.MeshConfig:
			return o.Status.ObservedGeneration
		case *configv1alpha1.MeshConfig:
			return o.Status.ObservedGeneration
		case *policyv1alpha1.Egress:
			return o.Status.ObservedGeneration
		case *policyv1alpha1.IngressBackend:
			return o.Status.ObservedGeneration
		}
		Fail("unexpected type")
		return 0
	}

	fresh := func(obj client.Object) client.Object {
		gvk, err := apiutil.GVKForObject(obj, env.Scheme)
		Expect(err).NotTo(HaveOccurred())
		ro, err := env.Scheme.New(gvk)
		Expect(err).NotTo(HaveOccurred())
		return ro.(client.Object)
	}

	It("reads observedGeneration -1 on every kind nobody has reconciled", func() {
		for _, obj := range minimal() {
			Expect(k8s.Create(ctx, obj)).To(Succeed())
			DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, obj))).To(Succeed()) })

			got := fresh(obj)
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
			Expect(observedGeneration(got)).To(Equal(int64(-1)), "%T", got)
		}
	})

	It("keeps the observedGeneration a controller writes and keys conditions by type", func() {
		mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "written", Namespace: ns}}
		Expect(k8s.Create(ctx, mc)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, mc))).To(Succeed()) })

		now := metav1.Now()
		ready := metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: conditions.Succeeded,
			Message: "ok", LastTransitionTime: now, ObservedGeneration: mc.Generation}
		mc.Status.ObservedGeneration = mc.Generation
		mc.Status.Conditions = []metav1.Condition{ready}
		mc.Status.Pods = configv1alpha2.PodSummary{Meshed: 3, InSync: 2, Drifted: 1}
		mc.Status.DriftedPods = []string{"shop/cart-7d9f"}
		Expect(k8s.Status().Update(ctx, mc)).To(Succeed())

		got := &configv1alpha2.MeshConfig{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(mc), got)).To(Succeed())
		Expect(got.Status.ObservedGeneration).To(Equal(int64(1)))
		Expect(got.Status.Pods.Drifted).To(Equal(int32(1)))
		raw := &unstructured.Unstructured{}
		raw.SetGroupVersionKind(configv1alpha2.GroupVersion.WithKind("MeshConfig"))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(mc), raw)).To(Succeed())
		failed, found, err := unstructured.NestedInt64(raw.Object, "status", "pods", "failed")
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(BeTrue(), "a zero count is written out for the printer columns")
		Expect(failed).To(BeZero())

		dup := ready
		dup.Status = metav1.ConditionFalse
		dup.Reason = conditions.Drifted
		got.Status.Conditions = append(got.Status.Conditions, dup)
		err = k8s.Status().Update(ctx, got)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("status.conditions[1]: Duplicate value"))
	})

	It("bounds driftedPods at 20 entries", func() {
		mc := &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "bounded", Namespace: ns}}
		Expect(k8s.Create(ctx, mc)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, mc))).To(Succeed()) })
		for i := 0; i <= configv1alpha2.MaxDriftedPods; i++ {
			mc.Status.DriftedPods = append(mc.Status.DriftedPods, "shop/pod-"+strings.Repeat("x", i+1))
		}
		err := k8s.Status().Update(ctx, mc)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("status.driftedPods: Too many: 21: must have at most 20 items"))
	})
})

var _ = Describe("MeshConfig versions", func() {
	const ns = "versions"
	BeforeEach(func() { ensureNamespace(ns) })

	It("reads a v1alpha1 object as v1alpha2", func() {
		old := &configv1alpha1.MeshConfig{
			ObjectMeta: metav1.ObjectMeta{Name: "from-v1alpha1", Namespace: ns},
			Spec: configv1alpha1.MeshConfigSpec{
				Sidecar: configv1alpha1.SidecarSpec{LogLevel: "info", EnvoyImage: "envoy:v1.18.3"},
				Traffic: configv1alpha1.TrafficSpec{
					EnableEgress:                 true,
					UseHTTPSIngress:              true,
					OutboundIPRangeExclusionList: []string{"169.254.169.254/32"},
					OutboundPortExclusionList:    []int32{6379},
				},
				FeatureFlags: configv1alpha1.FeatureFlags{EnableMulticlusterMode: true},
			},
		}
		Expect(k8s.Create(ctx, old)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, old))).To(Succeed()) })

		got := &configv1alpha2.MeshConfig{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(old), got)).To(Succeed())
		Expect(got.Spec.Sidecar.LogLevel).To(Equal("info"))
		Expect(got.Spec.Sidecar.EnvoyImage).To(Equal("envoy:v1.18.3"))
		Expect(got.Spec.Traffic.EnableEgress).To(BeTrue())
		Expect(got.Spec.Traffic.UseHTTPSIngress).To(BeTrue())
		Expect(got.Spec.Traffic.OutboundIPRangeExclusionList).To(Equal([]string{"169.254.169.254/32"}))
		Expect(got.Spec.Traffic.OutboundPortExclusionList).To(Equal([]int32{6379}))
		Expect(got.Spec.FeatureFlags.EnableMulticlusterMode).To(BeTrue())
		// v1alpha2's schema defaults apply to objects written through v1alpha1.
		Expect(got.Spec.Sidecar.LocalProxyMode).To(Equal(configv1alpha2.LocalProxyModeLocalhost))
		Expect(got.Status.ObservedGeneration).To(Equal(int64(-1)))
	})

	It("reads a v1alpha2 object as v1alpha1 and keeps v1alpha2's fields in storage", func() {
		cur := &configv1alpha2.MeshConfig{
			ObjectMeta: metav1.ObjectMeta{Name: "from-v1alpha2", Namespace: ns},
			Spec: configv1alpha2.MeshConfigSpec{
				Sidecar: configv1alpha2.SidecarSpec{LogLevel: "debug", LocalProxyMode: configv1alpha2.LocalProxyModePodIP},
				Traffic: configv1alpha2.TrafficSpec{
					InboundPortExclusionList:      []int32{9100},
					OutboundIPRangeInclusionList:  []string{"10.0.0.0/8"},
					NetworkInterfaceExclusionList: []string{"eth1"},
				},
			},
		}
		Expect(k8s.Create(ctx, cur)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, cur))).To(Succeed()) })

		old := &configv1alpha1.MeshConfig{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(cur), old)).To(Succeed())
		Expect(old.Spec.Sidecar.LogLevel).To(Equal("debug"))
		Expect(old.Spec.Traffic.InboundPortExclusionList).To(Equal([]int32{9100}))

		again := &configv1alpha2.MeshConfig{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(cur), again)).To(Succeed())
		Expect(again.Spec.Sidecar.LocalProxyMode).To(Equal(configv1alpha2.LocalProxyModePodIP))
		Expect(again.Spec.Traffic.OutboundIPRangeInclusionList).To(Equal([]string{"10.0.0.0/8"}))
		Expect(again.Spec.Traffic.NetworkInterfaceExclusionList).To(Equal([]string{"eth1"}))
	})
	// With conversion None (OSM's choice) a v1alpha1 read drops the fields only v1alpha2 has, and
	// a read-modify-write through v1alpha1 erases them. Writers must use v1alpha2; this spec pins
	// the behaviour so that adding a conversion webhook is a deliberate change.
	It("loses v1alpha2-only fields when a v1alpha1 client updates the object", func() {
		cur := &configv1alpha2.MeshConfig{
			ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1-update", Namespace: ns},
			Spec:       configv1alpha2.MeshConfigSpec{Sidecar: configv1alpha2.SidecarSpec{LocalProxyMode: configv1alpha2.LocalProxyModePodIP}},
		}
		Expect(k8s.Create(ctx, cur)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, cur))).To(Succeed()) })

		old := &unstructured.Unstructured{}
		old.SetGroupVersionKind(configv1alpha1.GroupVersion.WithKind("MeshConfig"))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(cur), old)).To(Succeed())
		_, found, _ := unstructured.NestedString(old.Object, "spec", "sidecar", "localProxyMode")
		Expect(found).To(BeFalse())
		Expect(k8s.Update(ctx, old)).To(Succeed())

		got := &configv1alpha2.MeshConfig{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(cur), got)).To(Succeed())
		Expect(got.Spec.Sidecar.LocalProxyMode).To(Equal(configv1alpha2.LocalProxyModeLocalhost), "reset to the schema default")
	})
})

var _ = Describe("installed CRDs", func() {
	crd := func(name string) map[string]any {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apiextensions.k8s.io/v1")
		u.SetKind("CustomResourceDefinition")
		Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, u)).To(Succeed())
		return u.Object
	}
	str := func(obj map[string]any, path ...string) string {
		v, _, err := unstructured.NestedString(obj, path...)
		Expect(err).NotTo(HaveOccurred())
		return v
	}

	It("serves MeshConfig v1alpha2 (stored) and v1alpha1 (deprecated) with no conversion, like OSM", func() {
		obj := crd("meshconfigs.config.openservicemesh.io")
		Expect(str(obj, "spec", "conversion", "strategy")).To(Equal("None"))
		Expect(str(obj, "spec", "scope")).To(Equal("Namespaced"))
		short, _, _ := unstructured.NestedStringSlice(obj, "spec", "names", "shortNames")
		Expect(short).To(Equal([]string{"meshconfig"}))
		versions, _, _ := unstructured.NestedSlice(obj, "spec", "versions")
		Expect(versions).To(HaveLen(2))
		byName := map[string]map[string]any{}
		for _, v := range versions {
			m := v.(map[string]any)
			byName[m["name"].(string)] = m
			Expect(m["served"]).To(BeTrue())
			Expect(m).To(HaveKeyWithValue("subresources", HaveKey("status")))
		}
		Expect(byName["v1alpha2"]["storage"]).To(BeTrue())
		Expect(byName["v1alpha1"]["storage"]).To(BeFalse())
		Expect(byName["v1alpha1"]["deprecated"]).To(BeTrue())
		Expect(byName["v1alpha1"]["deprecationWarning"]).To(ContainSubstring("use config.openservicemesh.io/v1alpha2"))
	})

	It("serves Egress and IngressBackend in policy.openservicemesh.io/v1alpha1 with a status subresource", func() {
		for _, name := range []string{"egresses.policy.openservicemesh.io", "ingressbackends.policy.openservicemesh.io"} {
			obj := crd(name)
			Expect(str(obj, "spec", "scope")).To(Equal("Namespaced"))
			versions, _, _ := unstructured.NestedSlice(obj, "spec", "versions")
			Expect(versions).To(HaveLen(1))
			Expect(versions[0]).To(HaveKeyWithValue("name", "v1alpha1"))
			Expect(versions[0]).To(HaveKeyWithValue("subresources", HaveKey("status")))
		}
	})
})

var _ = Describe("kubectl apply --server-side", func() {
	var kubectl string
	BeforeEach(func() {
		var err error
		if kubectl, err = exec.LookPath("kubectl"); err != nil {
			// hack/envtest.sh links the machine's kubectl next to the control-plane binaries.
			if kubectl, err = exec.LookPath(filepath.Join(env.Assets, "kubectl")); err != nil {
				Skip("no kubectl on PATH or in " + env.Assets)
			}
		}
	})

	run := func(args ...string) (string, error) {
		args = append([]string{"--kubeconfig", env.Kubeconfig}, args...)
		out, err := exec.CommandContext(ctx, kubectl, args...).CombinedOutput()
		return string(out), err
	}

	It("applies config/samples with -k and prints the status columns", func() {
		objects := 0
		for _, s := range validSamples {
			for _, u := range s.objs {
				ensureNamespace(u.GetNamespace())
				deleteLike(u) // other specs may have left nothing, or their own copies
				DeferCleanup(deleteLike, u)
				objects++
			}
		}
		out, err := run("apply", "--server-side", "--field-manager=meshkeeper-samples", "-k", filepath.Join(repoRoot(), "config", "samples"))
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(strings.Count(out, "serverside-applied")).To(Equal(objects), out)
		Expect(out).To(ContainSubstring("v1alpha1 MeshConfig is deprecated"))

		for _, s := range validSamples {
			for _, u := range s.objs {
				got, err := getLike(u)
				Expect(err).NotTo(HaveOccurred())
				Expect(contained(u.Object["spec"], got.Object["spec"], "spec")).To(Succeed())
			}
		}

		out, err = run("get", "meshconfigs.config.openservicemesh.io", "-A")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(strings.Fields(strings.SplitN(out, "\n", 2)[0])).To(Equal([]string{"NAMESPACE", "NAME", "READY", "REASON", "IN-SYNC", "MESHED", "DRIFTED", "AGE"}))
		out, err = run("get", "ingressbackends.policy.openservicemesh.io", "-A")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(strings.Fields(strings.SplitN(out, "\n", 2)[0])).To(Equal([]string{"NAMESPACE", "NAME", "READY", "REASON", "STATUS", "AGE"}))
		out, err = run("get", "egresses.policy.openservicemesh.io", "-A")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(strings.Fields(strings.SplitN(out, "\n", 2)[0])).To(Equal([]string{"NAMESPACE", "NAME", "READY", "REASON", "AGE"}))
	})

	for _, s := range invalidSamples {
		It("rejects "+s.path, func() {
			u := s.objs[0]
			ensureNamespace(u.GetNamespace())
			DeferCleanup(deleteLike, u)
			out, err := run("apply", "--server-side", "--field-manager=meshkeeper-samples", "-f", filepath.Join(repoRoot(), s.path))
			Expect(err).To(HaveOccurred(), out)
			Expect(out).To(ContainSubstring(s.expect))
			Expect(out).To(ContainSubstring(s.field))
		})
	}
})
