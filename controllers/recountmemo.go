package controllers

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
)

// recountMemo keeps the verdict each pod version got in the last recount of the served
// MeshConfig. A verdict depends only on the pod, its namespace's metadata and the MeshConfig's
// spec (drift.Gather), so while the MeshConfig's generation and the namespace's resourceVersion
// stand, a pod whose resourceVersion did not change keeps its verdict. Recounts come every few
// seconds while pods change; without the memo each judged every pod again, about a tenth of one
// core at 20,000 pods during a rollout, for pods most of which had not changed.
//
// Keys are resourceVersions as numbers: the API server gives every write of any object a new one,
// so a version names one pod's one state. Values are one byte per pod (verdictCode). A pod whose
// resourceVersion is not a decimal number is judged every time. The memo is rebuilt by every
// recount from the pods it saw, so deleted pods leave it. Only the MeshConfig controller's
// single worker for the served key uses it.
type recountMemo struct {
	meshConfig types.UID
	generation int64
	namespaces map[string]string // name -> resourceVersion the verdicts were judged with
	verdicts   map[uint64]uint8
}

// recountPass is one recount's use of the memo: the previous memo to read, the next to fill.
type recountPass struct {
	prev, next *recountMemo
	judged     int // pods judged afresh, for tests
}

func newRecountPass(prev *recountMemo, mc *configv1alpha2.MeshConfig) *recountPass {
	if prev != nil && (prev.meshConfig != mc.UID || prev.generation != mc.Generation) {
		prev = nil
	}
	size := 0
	if prev != nil {
		size = len(prev.verdicts)
	}
	return &recountPass{prev: prev, next: &recountMemo{
		meshConfig: mc.UID, generation: mc.Generation,
		namespaces: map[string]string{}, verdicts: make(map[uint64]uint8, size),
	}}
}

// verdict returns the pod's verdict, from the memo when the pod's version was judged with this
// namespace version, otherwise from judge.
func (p *recountPass) verdict(ns *corev1.Namespace, pod *corev1.Pod, judge func() []corev1.PodCondition) (drift.PodVerdict, bool) {
	p.next.namespaces[ns.Name] = ns.ResourceVersion
	rv, err := strconv.ParseUint(pod.ResourceVersion, 10, 64)
	if err != nil {
		p.judged++
		return drift.PodVerdictOf(judge())
	}
	if p.prev != nil && p.prev.namespaces[ns.Name] == ns.ResourceVersion {
		if code, ok := p.prev.verdicts[rv]; ok {
			p.next.verdicts[rv] = code
			return verdictOfCode(code)
		}
	}
	p.judged++
	v, meshed := drift.PodVerdictOf(judge())
	p.next.verdicts[rv] = verdictCode(v, meshed)
	return v, meshed
}

// verdictCode packs a verdict into a byte: 0 for a pod that is not meshed, otherwise one more
// than the verdict's index in drift.PodVerdicts.
func verdictCode(v drift.PodVerdict, meshed bool) uint8 {
	if !meshed {
		return 0
	}
	for i, known := range drift.PodVerdicts {
		if known == v {
			return uint8(i + 1)
		}
	}
	return 0 // not reached: PodVerdictOf returns only listed verdicts for meshed pods
}

func verdictOfCode(c uint8) (drift.PodVerdict, bool) {
	if c == 0 || int(c) > len(drift.PodVerdicts) {
		return "", false
	}
	return drift.PodVerdicts[c-1], true
}
