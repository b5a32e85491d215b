package controllers

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
)

// TestRecountJudgesOnlyWhatChanged runs the MeshConfig controller's recount against the API
// server, step by step, and checks after each step both how many pods it judged afresh and that
// its counts equal those of a recount without any memory.
func TestRecountJudgesOnlyWhatChanged(t *testing.T) {
	w := newWorld(t, "recountmemo", func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundPortExclusionList = []int32{5432}
	})
	for _, suffix := range []string{"a", "b", "c"} {
		w.create(w.injected(w.appPod("shop", suffix)), initExited(0, "Completed"))
	}
	opts := DriftOptions{MeshConfig: w.mc, Selection: injection.SelectOptions{MeshName: w.mesh}}
	r := &MeshConfigReconciler{Client: env.Client, Options: opts}
	step := func(name string, wantJudged int) drift.Summary {
		t.Helper()
		mc := w.meshConfig()
		got, err := r.summarize(ctx, mc)
		must(t, err)
		if r.lastJudged != wantJudged {
			t.Errorf("%s: judged %d pods afresh, want %d", name, r.lastJudged, wantJudged)
		}
		want, err := (&MeshConfigReconciler{Client: env.Client, Options: opts}).summarize(ctx, mc)
		must(t, err)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: recount with memory %+v, without %+v", name, got, want)
		}
		return got
	}

	if s := step("first recount", 3); s.Meshed != 3 || s.InSync != 3 {
		t.Fatalf("first recount: %+v, want 3 meshed pods in sync", s.Counts)
	}
	step("nothing changed", 0)

	pod := w.pod("shop-5f7d8c-a")
	before := pod.DeepCopy()
	pod.Labels["touched"] = "yes"
	must(t, env.Client.Patch(ctx, pod, client.MergeFrom(before)))
	step("one pod changed", 1)
	step("nothing changed again", 0)

	ns := &corev1.Namespace{}
	must(t, env.Client.Get(ctx, types.NamespacedName{Name: w.app}, ns))
	nsBefore := ns.DeepCopy()
	ns.Annotations["example.com/touched"] = "yes"
	must(t, env.Client.Patch(ctx, ns, client.MergeFrom(nsBefore)))
	step("namespace changed", 3)

	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundPortExclusionList = append(s.Traffic.OutboundPortExclusionList, 6379)
	})
	if s := step("MeshConfig spec changed", 3); s.Drifted != 3 {
		t.Errorf("after the MeshConfig change: %+v, want 3 drifted pods", s.Counts)
	}
	step("nothing changed after the MeshConfig change", 0)

	must(t, env.Client.Delete(ctx, w.pod("shop-5f7d8c-b")))
	if s := step("one pod deleted", 0); s.Meshed != 2 {
		t.Errorf("after a deletion: %+v, want 2 meshed pods", s.Counts)
	}
	if n := len(r.recount.verdicts); n != 2 {
		t.Errorf("memo holds %d verdicts after a deletion, want 2", n)
	}
}

// TestRecountReadsTheInformerIndex checks that the production cache (CacheOptions) exposes the
// pod index the recount reads without copying, and that reading it counts what a List counts.
func TestRecountReadsTheInformerIndex(t *testing.T) {
	w := newWorld(t, "recountindex", nil)
	for _, suffix := range []string{"a", "b"} {
		w.create(w.injected(w.appPod("shop", suffix)), initExited(0, "Completed"))
	}
	opts := DriftOptions{MeshConfig: w.mc, Selection: injection.SelectOptions{MeshName: w.mesh}}
	copts := CacheOptions(opts)
	copts.Scheme = env.Scheme
	c, err := cache.New(env.Config, copts)
	must(t, err)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pods, err := indexedPods(cctx, c)
	must(t, err)
	if pods == nil {
		t.Fatal("the pod informer does not expose its index: recounts would copy every pod")
	}
	go func() { _ = c.Start(cctx) }()
	if !c.WaitForCacheSync(cctx) {
		t.Fatal("cache did not sync")
	}
	indexed := &MeshConfigReconciler{Client: env.Client, Options: opts, cachedPods: pods}
	listed := &MeshConfigReconciler{Client: env.Client, Options: opts}
	eventually(t, 30*time.Second, func() error {
		mc := w.meshConfig()
		got, err := indexed.summarize(ctx, mc)
		if err != nil {
			return err
		}
		want, err := listed.summarize(ctx, mc)
		if err != nil {
			return err
		}
		if got.Meshed != 2 || !reflect.DeepEqual(got, want) {
			return fmt.Errorf("from the index %+v, listed %+v", got.Counts, want.Counts)
		}
		return nil
	})
}

func TestVerdictCodeRoundTrips(t *testing.T) {
	for _, v := range drift.PodVerdicts {
		got, meshed := verdictOfCode(verdictCode(v, true))
		if got != v || !meshed {
			t.Errorf("%s came back as %q meshed=%v", v, got, meshed)
		}
	}
	if _, meshed := verdictOfCode(verdictCode(drift.VerdictInSync, false)); meshed {
		t.Error("a pod that is not meshed came back meshed")
	}
}
