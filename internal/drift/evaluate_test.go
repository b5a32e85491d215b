package drift

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
)

type verdict struct {
	Type   corev1.PodConditionType
	Status corev1.ConditionStatus
	Reason string
}

func verdicts(cs []corev1.PodCondition) []verdict {
	out := make([]verdict, len(cs))
	for i, c := range cs {
		out[i] = verdict{c.Type, c.Status, c.Reason}
	}
	return out
}

func TestEvaluateChain(t *testing.T) {
	seed := fixture(t, "seed001-basic.sh")
	osm := func() *podtest.PodBuilder {
		return makePod("bookbuyer-7d9f8c-x").Deployment("bookbuyer", "7d9f8c").Sidecar().OSMInit(seed)
	}
	const (
		T = corev1.ConditionTrue
		F = corev1.ConditionFalse
		U = corev1.ConditionUnknown
	)
	tests := []struct {
		name string
		pod  *corev1.Pod
		mc   int64
		cidr []string
		want []verdict
	}{
		{"healthy OSM pod", osm().InitDone().Obj(), 1, nil, []verdict{
			{conditions.PodSidecarInjected, T, conditions.Injected},
			{conditions.PodRedirectionApplied, T, conditions.Applied},
			{conditions.PodExclusionsInSync, T, conditions.InSync}}},
		{"drifted OSM pod", osm().InitDone().Obj(), 2, []string{"1.1.1.1/32"}, []verdict{
			{conditions.PodSidecarInjected, T, conditions.Injected},
			{conditions.PodRedirectionApplied, T, conditions.Applied},
			{conditions.PodExclusionsInSync, F, conditions.Drifted}}},
		{"sidecar missing stops the chain", makePod("p").Obj(), 1, nil, []verdict{
			{conditions.PodSidecarInjected, F, conditions.SidecarMissing}}},
		{"pending init container leaves exclusions unknown", osm().Obj(), 2, []string{"1.1.1.1/32"}, []verdict{
			{conditions.PodSidecarInjected, T, conditions.Injected},
			{conditions.PodRedirectionApplied, U, conditions.InitContainerPending},
			{conditions.PodExclusionsInSync, U, conditions.InitContainerPending}}},
		{"init container running again leaves drift judged", osm().InitStatus(corev1.ContainerStatus{
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, RestartCount: 1,
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}).Obj(),
			2, []string{"1.1.1.1/32"}, []verdict{
				{conditions.PodSidecarInjected, T, conditions.Injected},
				{conditions.PodRedirectionApplied, U, conditions.InitContainerPending},
				{conditions.PodExclusionsInSync, F, conditions.Drifted}}},
		{"failed init container does not hide drift", osm().InitState(corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}).Obj(), 2, []string{"1.1.1.1/32"}, []verdict{
			{conditions.PodSidecarInjected, T, conditions.Injected},
			{conditions.PodRedirectionApplied, F, conditions.InitContainerFailed},
			{conditions.PodExclusionsInSync, F, conditions.Drifted}}},
		{"invalid MeshConfig", osm().InitDone().Obj(), 3, []string{"999.1.1.1/32"}, []verdict{
			{conditions.PodSidecarInjected, T, conditions.Injected},
			{conditions.PodRedirectionApplied, T, conditions.Applied},
			{conditions.PodExclusionsInSync, U, conditions.InvalidSpec}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(gather(tt.pod, meshConfig(tt.mc, ipExclusions(tt.cidr...))))
			gv := verdicts(got)
			if len(gv) != len(tt.want) {
				t.Fatalf("got %v, want %v", gv, tt.want)
			}
			for i := range gv {
				if gv[i] != tt.want[i] {
					t.Errorf("condition %d: got %v, want %v", i, gv[i], tt.want[i])
				}
			}
			for _, c := range got {
				if !conditions.Allowed(string(c.Type), string(c.Status), c.Reason) {
					t.Errorf("%s=%s reason %s is not in the condition vocabulary", c.Type, c.Status, c.Reason)
				}
				if c.Message == "" || !c.LastTransitionTime.Time.Equal(testNow) {
					t.Errorf("%s: message %q, lastTransitionTime %v", c.Type, c.Message, c.LastTransitionTime)
				}
			}
		})
	}
}

func TestRelevant(t *testing.T) {
	plain := makePod("p").Obj()
	in := Gather(plain, metav1.ObjectMeta{Name: "bookbuyer"}, meshConfig(1), testSelection, testNow)
	if Relevant(in, Evaluate(in)) {
		t.Error("a pod outside the mesh without our conditions must be left alone")
	}
	labelled := makePod("p").Condition(corev1.PodCondition{Type: conditions.PodSidecarInjected, Status: corev1.ConditionFalse, Reason: conditions.SidecarMissing}).Obj()
	in = Gather(labelled, metav1.ObjectMeta{Name: "bookbuyer"}, meshConfig(1), testSelection, testNow)
	if !Relevant(in, Evaluate(in)) {
		t.Error("a pod that carries our conditions must keep them truthful after its namespace left the mesh")
	}
	in = gather(makePod("p").Obj(), meshConfig(1))
	if !Relevant(in, Evaluate(in)) {
		t.Error("a pod missing its sidecar is relevant")
	}
}

func TestSetPodConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(testNow)
	kubelet := []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: t0},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: t0},
	}
	inSync := corev1.PodCondition{Type: conditions.PodExclusionsInSync, Status: corev1.ConditionTrue, Reason: conditions.InSync, Message: "ok", LastTransitionTime: t0}
	existing := append(append([]corev1.PodCondition{}, kubelet...), inSync)

	t.Run("same verdict is no change", func(t *testing.T) {
		c := inSync
		c.LastTransitionTime = t1
		got, changed := SetPodConditions(existing, c)
		if changed || !got[2].LastTransitionTime.Equal(&t0) {
			t.Fatalf("changed=%v, lastTransitionTime=%v", changed, got[2].LastTransitionTime)
		}
	})
	t.Run("new message, same status keeps lastTransitionTime", func(t *testing.T) {
		c := inSync
		c.Message, c.LastTransitionTime = "still ok", t1
		got, changed := SetPodConditions(existing, c)
		if !changed || got[2].Message != "still ok" || !got[2].LastTransitionTime.Equal(&t0) {
			t.Fatalf("changed=%v, got %+v", changed, got[2])
		}
	})
	t.Run("status change moves lastTransitionTime", func(t *testing.T) {
		c := corev1.PodCondition{Type: conditions.PodExclusionsInSync, Status: corev1.ConditionFalse, Reason: conditions.Drifted, Message: "x", LastTransitionTime: t1}
		got, changed := SetPodConditions(existing, c)
		if !changed || got[2].Status != corev1.ConditionFalse || !got[2].LastTransitionTime.Equal(&t1) {
			t.Fatalf("changed=%v, got %+v", changed, got[2])
		}
	})
	t.Run("new type is appended", func(t *testing.T) {
		c := corev1.PodCondition{Type: conditions.PodSidecarInjected, Status: corev1.ConditionTrue, Reason: conditions.Injected, LastTransitionTime: t1}
		got, changed := SetPodConditions(existing, c)
		if !changed || len(got) != 4 || got[3].Type != conditions.PodSidecarInjected {
			t.Fatalf("changed=%v, got %+v", changed, got)
		}
	})
	t.Run("kubelet types are never touched", func(t *testing.T) {
		got, changed := SetPodConditions(existing,
			corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, Reason: "Forged"},
			corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse})
		if changed || got[0] != kubelet[0] || got[1] != kubelet[1] {
			t.Fatalf("changed=%v, got %+v", changed, got)
		}
	})
	t.Run("input is not modified", func(t *testing.T) {
		before := existing[2]
		SetPodConditions(existing, corev1.PodCondition{Type: conditions.PodExclusionsInSync, Status: corev1.ConditionFalse, Reason: conditions.Drifted})
		if existing[2] != before {
			t.Fatal("existing slice was modified")
		}
	})
}

func TestTransitions(t *testing.T) {
	c := func(ty corev1.PodConditionType, s corev1.ConditionStatus, reason string) corev1.PodCondition {
		return corev1.PodCondition{Type: ty, Status: s, Reason: reason, Message: reason + " message"}
	}
	inSync := c(conditions.PodExclusionsInSync, corev1.ConditionTrue, conditions.InSync)
	drifted := c(conditions.PodExclusionsInSync, corev1.ConditionFalse, conditions.Drifted)
	failed := c(conditions.PodRedirectionApplied, corev1.ConditionFalse, conditions.InitContainerFailed)
	missing := c(conditions.PodSidecarInjected, corev1.ConditionFalse, conditions.SidecarMissing)
	tests := []struct {
		name          string
		before, after []corev1.PodCondition
		want          []string
	}{
		{"first verdict in sync is silent", nil, []corev1.PodCondition{inSync}, nil},
		{"steady drift is silent", []corev1.PodCondition{drifted}, []corev1.PodCondition{drifted}, nil},
		{"in sync to drifted", []corev1.PodCondition{inSync}, []corev1.PodCondition{drifted}, []string{"Warning/Drifted"}},
		{"first verdict drifted", nil, []corev1.PodCondition{drifted}, []string{"Warning/Drifted"}},
		{"back in sync", []corev1.PodCondition{drifted}, []corev1.PodCondition{inSync}, []string{"Normal/InSync"}},
		{"init container failed", nil, []corev1.PodCondition{failed}, []string{"Warning/InitContainerFailed"}},
		{"sidecar missing", nil, []corev1.PodCondition{missing}, []string{"Warning/SidecarMissing"}},
		{"several at once, in type order", nil, []corev1.PodCondition{drifted, failed}, []string{"Warning/InitContainerFailed", "Warning/Drifted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range Transitions(tt.before, tt.after) {
				got = append(got, e.Type+"/"+e.Reason)
				if e.Message == "" {
					t.Error("event without a message")
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestSummary(t *testing.T) {
	seed := fixture(t, "seed001-basic.sh")
	mc := meshConfig(2, ipExclusions("1.1.1.1/32"))
	inSyncMC := meshConfig(1)
	var s Summary
	pods := []struct {
		pod  *corev1.Pod
		sync bool
	}{
		{makePod("a").Sidecar().OSMInit(seed).InitDone().Obj(), true},  // in sync under inSyncMC
		{makePod("c").Sidecar().OSMInit(seed).InitDone().Obj(), false}, // drifted under mc
		{makePod("b").Sidecar().OSMInit(seed).InitDone().Obj(), false}, // drifted under mc
		{makePod("d").Obj(), false},                                    // sidecar missing
		{makePod("e").Sidecar().OSMInit(seed).InitState(corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}).Obj(), true}, // init failed
		{makePod("f").Annotate("openservicemesh.io/sidecar-injection", "disabled").Obj(), false},                                                       // not meshed
		{makePod("g").Sidecar().OSMInit(fixture(t, "seed001-ranges-double-and.sh")).InitDone().Obj(), false},                                           // unreadable
		{makePod("h").Sidecar().OSMInit(seed).Obj(), false},                                                                                            // init container pending: other
	}
	for _, p := range pods {
		m := mc
		if p.sync {
			m = inSyncMC
		}
		in := gather(p.pod, m)
		s.Add(p.pod, Evaluate(in))
	}
	s.Cap(1)
	want := Counts{Meshed: 7, InSync: 1, Drifted: 2, InitFailed: 1, SidecarMissing: 1, Unreadable: 1}
	if s.Counts != want || len(s.DriftedPods) != 1 || s.DriftedPods[0] != "bookbuyer/b" {
		t.Fatalf("got %+v, want %+v and the drifted pods capped to bookbuyer/b", s, want)
	}
	if s.Failed() != 2 || s.Of(VerdictOther) != 1 {
		t.Errorf("failed %d, other %d: want 2 and 1", s.Failed(), s.Of(VerdictOther))
	}
	var sum int32
	for _, v := range PodVerdicts {
		sum += s.Of(v)
	}
	if sum != s.Meshed {
		t.Errorf("the verdicts add up to %d pods, %d are meshed", sum, s.Meshed)
	}
	// The per-namespace and per-workload counts (for the metrics) are not capped.
	if len(s.Namespaces) != 1 || *s.Namespaces["bookbuyer"] != want {
		t.Errorf("per namespace: %v", s.Namespaces)
	}
	var drifted int32
	for w, n := range s.DriftedByWorkload {
		if w.Namespace != "bookbuyer" {
			t.Errorf("drifted workload %+v in the wrong namespace", w)
		}
		drifted += n
	}
	if drifted != 2 {
		t.Errorf("drifted pods by workload add up to %d, want 2: %v", drifted, s.DriftedByWorkload)
	}
}

func TestRuleCacheNeverChangesAVerdict(t *testing.T) {
	cache := NewRuleCache(2)
	mcs := []int64{1, 2}
	pods := []*corev1.Pod{
		makePod("a").Sidecar().OSMInit(fixture(t, "seed001-ports.sh")).InitDone().Obj(),
		makePod("b").Sidecar().OSMInit(fixture(t, "seed001-ports.sh")).InitDone().Obj(),
		makePod("c").Sidecar().OSMInit(fixture(t, "seed001-ranges.sh")).InitDone().Obj(),
		makePod("d").Sidecar().OSMInit(fixture(t, "seed001-ranges-double-and.sh")).InitDone().Obj(),
		makePod("e").Sidecar().OSMInit(fixture(t, "osm-v12-heredoc.sh")).InitDone().Obj(),
	}
	for _, gen := range mcs {
		mc := meshConfig(gen, ipExclusions("1.1.1.1/32", "2.2.2.2/24"), outPorts(6379, 7070))
		if gen == 2 {
			mc = meshConfig(gen)
		}
		for _, pod := range pods {
			plain := gather(pod, mc)
			cached := gather(pod, mc)
			cached.Rules = cache
			want, got := Evaluate(plain), Evaluate(cached)
			if len(want) != len(got) {
				t.Fatalf("%s: %v vs %v", pod.Name, want, got)
			}
			for i := range want {
				if want[i] != got[i] {
					t.Errorf("%s generation %d: cached verdict %+v, parsed verdict %+v", pod.Name, gen, got[i], want[i])
				}
			}
		}
	}
	if n := cache.Len(); n > 2 {
		t.Errorf("cache holds %d rule sets, bound is 2", n)
	}
	one := NewRuleCache(8)
	for _, pod := range pods[:2] {
		in := gather(pod, meshConfig(1))
		in.Rules = one
		Evaluate(in)
	}
	if one.Len() != 1 {
		t.Errorf("two replicas with identical rules take %d entries, want 1", one.Len())
	}
}

func TestSummaryPodsInSync(t *testing.T) {
	seed := fixture(t, "seed001-basic.sh")
	mc := meshConfig(2, ipExclusions("1.1.1.1/32"))
	var s Summary
	for _, p := range []*corev1.Pod{
		makePod("web-7d9f8c-a").Deployment("web", "7d9f8c").Sidecar().OSMInit(seed).InitDone().Obj(),
		makePod("web-7d9f8c-b").Deployment("web", "7d9f8c").Sidecar().OSMInit(seed).InitDone().Obj(),
		makePod("bare").Sidecar().OSMInit(seed).InitDone().Obj(),
	} {
		s.Add(p, Evaluate(gather(p, mc)))
	}
	s.Cap(20)
	if len(s.Restarts) != 2 {
		t.Fatalf("restarts %q: one per workload, and one for the bare pod", s.Restarts)
	}
	status, reason, msg := s.PodsInSync(2)
	if status != metav1.ConditionFalse || reason != conditions.Drifted {
		t.Fatalf("PodsInSync %s/%s", status, reason)
	}
	for _, want := range []string{"3 of 3 meshed pods", "(generation 2)", "bookbuyer/bare, bookbuyer/web-7d9f8c-a, bookbuyer/web-7d9f8c-b",
		"kubectl rollout restart deployment/web -n bookbuyer", "kubectl delete pod bare -n bookbuyer", "meshkeeper.io/auto-restart=true"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}

	many := Summary{Counts: Counts{Meshed: 30, Drifted: 30}}
	for i := range 30 {
		many.DriftedPods = append(many.DriftedPods, fmt.Sprintf("ns/p%02d", i))
	}
	many.Cap(20)
	if _, _, msg := many.PodsInSync(1); !strings.Contains(msg, "ns/p04 and 25 more") || strings.Contains(msg, "ns/p05") {
		t.Errorf("message %q: names five pods and counts the rest", msg)
	}
	for _, c := range []struct {
		s          Summary
		status     metav1.ConditionStatus
		reason     string
		msgContent string
	}{
		{Summary{Counts: Counts{Meshed: 2, InSync: 2}}, metav1.ConditionTrue, conditions.InSync, "2 meshed pods, 2 in sync"},
		{Summary{Counts: Counts{Meshed: 2, InSync: 1}}, metav1.ConditionTrue, conditions.InSync, "2 meshed pods, 1 in sync, 1 not judged yet (see their"},
		{Summary{Counts: Counts{Meshed: 3, InSync: 1, Unreadable: 2}}, metav1.ConditionTrue, conditions.InSync, "3 meshed pods, 1 in sync, 2 with unreadable rules (see their"},
		{Summary{Counts: Counts{Meshed: 2, InSync: 1, SidecarMissing: 1}}, metav1.ConditionFalse, conditions.PodsFailed, "1 of 2 meshed pods lack their sidecar"},
		{Summary{Counts: Counts{Meshed: 2, InSync: 1, InitFailed: 1}}, metav1.ConditionFalse, conditions.PodsFailed, "1 of 2 meshed pods lack their sidecar or their redirection failed"},
	} {
		st, r, m := c.s.PodsInSync(1)
		if st != c.status || r != c.reason || !strings.Contains(m, c.msgContent) || !conditions.Allowed(conditions.PodsInSync, string(st), r) {
			t.Errorf("%+v: %s/%s %q", c.s, st, r, m)
		}
	}
}

// TestOwnedConditions: the one filter for "conditions of ours" keeps exactly the Chain's types,
// in their order, and leaves the kubelet's alone.
func TestOwnedConditions(t *testing.T) {
	conds := []corev1.PodCondition{
		{Type: corev1.PodReady}, {Type: conditions.PodExclusionsInSync}, {Type: "example.com/Other"},
		{Type: conditions.PodSidecarInjected}, {Type: corev1.PodInitialized}, {Type: conditions.PodRedirectionApplied},
	}
	got := OwnedConditions(conds)
	want := []corev1.PodConditionType{conditions.PodExclusionsInSync, conditions.PodSidecarInjected, conditions.PodRedirectionApplied}
	if len(got) != len(want) {
		t.Fatalf("OwnedConditions kept %d conditions, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Type != want[i] {
			t.Errorf("condition %d is %s, want %s", i, got[i].Type, want[i])
		}
	}
	if !HasOwnedCondition(conds) || HasOwnedCondition(conds[:1]) || HasOwnedCondition(nil) {
		t.Error("HasOwnedCondition disagrees with OwnedConditions")
	}
	if len(OwnedTypes) != len(Chain) {
		t.Errorf("OwnedTypes %v do not follow Chain", OwnedTypes)
	}
}

// A node restart as the kubelet reports it: the completed init container is created again in
// a new sandbox (waiting with no reason and one more restart, the kubelet's rendering of a
// created container), runs again and completes again (the two seen on the real node,
// docs/reliability.md case 6). Evaluated at each step, as the drift controller does, a pod in
// sync and a drifted pod keep their ExclusionsInSync verdict and its lastTransitionTime,
// RedirectionApplied never claims a failure, and no event is told.
func TestSandboxRecreatedKeepsVerdicts(t *testing.T) {
	mc := meshConfig(2, ipExclusions("1.1.1.1/32"))
	completed := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}
	steps := []corev1.ContainerStatus{
		{State: completed},
		{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}, RestartCount: 1, LastTerminationState: completed},
		{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, RestartCount: 1, LastTerminationState: completed},
		{State: completed, RestartCount: 1, LastTerminationState: completed},
	}
	for _, tt := range []struct {
		name string
		pod  *podtest.PodBuilder
		want corev1.ConditionStatus
	}{
		{"in sync", makePod("bookbuyer-7d9f8c-a").Deployment("bookbuyer", "7d9f8c").Sidecar().OurInit(effective(t, mc, nil), "2"), corev1.ConditionTrue},
		{"drifted", makePod("bookbuyer-7d9f8c-b").Deployment("bookbuyer", "7d9f8c").Sidecar().OSMInit(fixture(t, "seed001-basic.sh")), corev1.ConditionFalse},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var conds []corev1.PodCondition
			var since metav1.Time
			for i, st := range steps {
				in := gather(tt.pod.InitStatus(st).Obj(), mc)
				in.Now = testNow.Add(time.Duration(i) * time.Minute)
				updated, _ := SetPodConditions(conds, Evaluate(in)...)
				if i > 0 {
					for _, e := range Transitions(conds, updated) {
						t.Errorf("step %d: event %s/%s: %s", i, e.Type, e.Reason, e.Message)
					}
				}
				conds = updated
				sync := Find(conds, conditions.PodExclusionsInSync)
				if i == 0 {
					since = sync.LastTransitionTime
				}
				if sync.Status != tt.want || !sync.LastTransitionTime.Equal(&since) {
					t.Errorf("step %d: %s %s/%s since %s, want %s since %s", i, conditions.PodExclusionsInSync,
						sync.Status, sync.Reason, sync.LastTransitionTime, tt.want, since)
				}
				if redir := Find(conds, conditions.PodRedirectionApplied); redir.Status == corev1.ConditionFalse {
					t.Errorf("step %d: %s False/%s: %s", i, conditions.PodRedirectionApplied, redir.Reason, redir.Message)
				}
			}
			if redir := Find(conds, conditions.PodRedirectionApplied); redir.Status != corev1.ConditionTrue {
				t.Errorf("after the run: %s %s/%s", conditions.PodRedirectionApplied, redir.Status, redir.Reason)
			}
		})
	}
}
