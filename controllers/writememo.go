package controllers

import (
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/internal/drift"
)

// writeMemo remembers, per pod, the conditions last written and the resourceVersion of the pod
// the write was computed from. The cache shows our own write only after its watch event arrives;
// a reconcile in between would otherwise see the old conditions and write the same verdict
// again (and emit its events again). Entries go away as soon as the cache moves past them.
type writeMemo struct {
	mu sync.Mutex
	m  map[types.NamespacedName]memoEntry
}

type memoEntry struct {
	basedOn string
	conds   []corev1.PodCondition
}

func newWriteMemo() *writeMemo { return &writeMemo{m: map[types.NamespacedName]memoEntry{}} }

// alreadyWritten reports whether conds were written from the very version of the pod the cache
// still holds. Any other answer drops the entry: the cache has moved on, so it is the truth again.
func (w *writeMemo) alreadyWritten(key types.NamespacedName, rv string, conds []corev1.PodCondition) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[key]
	if !ok {
		return false
	}
	if e.basedOn == rv && slices.EqualFunc(e.conds, drift.OwnedConditions(conds), sameVerdict) {
		return true
	}
	delete(w.m, key)
	return false
}

func (w *writeMemo) record(key types.NamespacedName, basedOn string, conds []corev1.PodCondition) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m[key] = memoEntry{basedOn: basedOn, conds: drift.OwnedConditions(conds)}
}

func (w *writeMemo) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}

func sameVerdict(a, b corev1.PodCondition) bool {
	return a.Type == b.Type && a.Status == b.Status && a.Reason == b.Reason && a.Message == b.Message
}
