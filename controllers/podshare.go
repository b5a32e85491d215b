package controllers

import (
	"hash/maphash"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sharedMax bounds each table of shared values. Distinct values are about one per workload
// revision; when a table fills up it starts over, which only costs memory until the pods holding
// the old copies are replaced, never a wrong value. The tables hold their values strongly, so the
// bound is also what a table can keep alive after its pods are gone (a few MiB at most).
const sharedMax = 4096

var shareSeed = maphash.MakeSeed()

// sharedTable hands out one stored copy per distinct content. A hash collision between different
// contents is resolved by equal, so it can only cost a missed share.
type sharedTable[T any] struct {
	mu    sync.Mutex
	m     map[uint64]T
	equal func(a, b T) bool
}

func newSharedTable[T any](equal func(a, b T) bool) *sharedTable[T] {
	return &sharedTable[T]{m: make(map[uint64]T), equal: equal}
}

func (t *sharedTable[T]) share(h uint64, v T) T {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.m[h]; ok && t.equal(old, v) {
		return old
	}
	if len(t.m) >= sharedMax {
		clear(t.m)
	}
	t.m[h] = v
	return v
}

var (
	sharedMaps       = newSharedTable(maps.Equal[map[string]string])
	sharedContainers = newSharedTable(func(a, b []corev1.Container) bool {
		return slices.EqualFunc(a, b, func(x, y corev1.Container) bool {
			return x.Name == y.Name && x.Image == y.Image && slices.Equal(x.Command, y.Command) && slices.Equal(x.Args, y.Args) &&
				runAsUser(x) == runAsUser(y)
		})
	})
	sharedOwners     = newSharedTable(func(a, b []metav1.OwnerReference) bool { return reflect.DeepEqual(a, b) })
	sharedStatuses   = newSharedTable(func(a, b []corev1.ContainerStatus) bool { return reflect.DeepEqual(a, b) })
	sharedConditions = newSharedTable(func(a, b []corev1.PodCondition) bool { return slices.EqualFunc(a, b, sameCondition) })
)

// sameCondition compares every field, timestamps included, so that a shared list is exactly
// what each pod's own would have been.
func sameCondition(a, b corev1.PodCondition) bool {
	return a.Type == b.Type && a.Status == b.Status && a.Reason == b.Reason && a.Message == b.Message &&
		a.ObservedGeneration == b.ObservedGeneration &&
		a.LastProbeTime.Equal(&b.LastProbeTime) && a.LastTransitionTime.Equal(&b.LastTransitionTime)
}

// shareConditions shares a pod's list of our conditions with the pods that have an equal one.
// The transition times are part of it: replicas judged within the same second share a list.
func shareConditions(cs []corev1.PodCondition) []corev1.PodCondition {
	var h maphash.Hash
	h.SetSeed(shareSeed)
	for _, c := range cs {
		h.WriteString(string(c.Type))
		h.WriteByte(0)
		h.WriteString(string(c.Status))
		h.WriteByte(0)
		h.WriteString(c.Reason)
		h.WriteByte(0)
		h.WriteString(c.Message)
		h.WriteByte(0)
		h.WriteString(strconv.FormatInt(c.LastTransitionTime.UnixNano(), 36))
		h.WriteByte(1)
	}
	return sharedConditions.share(h.Sum64(), cs)
}

func shareMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	// Order-independent: the sum of per-entry hashes.
	var sum uint64
	for k, v := range m {
		var h maphash.Hash
		h.SetSeed(shareSeed)
		h.WriteString(k)
		h.WriteByte(0)
		h.WriteString(v)
		sum += h.Sum64()
	}
	return sharedMaps.share(sum, m)
}

func shareContainers(cs []corev1.Container) []corev1.Container {
	var h maphash.Hash
	h.SetSeed(shareSeed)
	for _, c := range cs {
		h.WriteString(c.Name)
		h.WriteByte(0)
		h.WriteString(c.Image)
		h.WriteByte(0)
		for _, part := range [2][]string{c.Command, c.Args} {
			for _, s := range part {
				h.WriteString(s)
				h.WriteByte(0)
			}
			h.WriteByte(1)
		}
		h.WriteString(strconv.FormatInt(runAsUser(c), 10))
		h.WriteByte(2)
	}
	return sharedContainers.share(h.Sum64(), cs)
}

// runAsUser is the UID TrimPod kept (-1 when none), so that sharing never merges two
// containers whose proxies run as different users.
func runAsUser(c corev1.Container) int64 {
	if c.SecurityContext == nil || c.SecurityContext.RunAsUser == nil {
		return -1
	}
	return *c.SecurityContext.RunAsUser
}

func shareOwners(refs []metav1.OwnerReference) []metav1.OwnerReference {
	if len(refs) == 0 {
		return nil
	}
	out := make([]metav1.OwnerReference, len(refs))
	var h maphash.Hash
	h.SetSeed(shareSeed)
	for i, r := range refs {
		r.APIVersion, r.Kind = intern(r.APIVersion), intern(r.Kind)
		out[i] = r
		h.WriteString(r.Kind)
		h.WriteByte(0)
		h.WriteString(r.Name)
		h.WriteByte(0)
		h.WriteString(string(r.UID))
		h.WriteByte(1)
	}
	return sharedOwners.share(h.Sum64(), out)
}

func shareStatuses(st []corev1.ContainerStatus) []corev1.ContainerStatus {
	var h maphash.Hash
	h.SetSeed(shareSeed)
	for _, s := range st {
		h.WriteString(s.Name)
		for _, state := range [2]corev1.ContainerState{s.State, s.LastTerminationState} {
			switch {
			case state.Terminated != nil:
				h.WriteByte('t')
				h.WriteString(state.Terminated.Reason)
				h.WriteByte(byte(state.Terminated.ExitCode))
			case state.Waiting != nil:
				h.WriteByte('w')
				h.WriteString(state.Waiting.Reason)
			case state.Running != nil:
				h.WriteByte('r')
			}
		}
		h.WriteByte(byte(s.RestartCount))
	}
	return sharedStatuses.share(h.Sum64(), st)
}

// trimState keeps what the redirection check reads: exit code, signal, reason and message, not
// timestamps or container IDs, which differ on every pod and would defeat sharing.
func trimState(s corev1.ContainerState) corev1.ContainerState {
	var out corev1.ContainerState
	if t := s.Terminated; t != nil {
		out.Terminated = &corev1.ContainerStateTerminated{ExitCode: t.ExitCode, Signal: t.Signal,
			Reason: intern(t.Reason), Message: intern(t.Message)}
	}
	if w := s.Waiting; w != nil {
		out.Waiting = &corev1.ContainerStateWaiting{Reason: intern(w.Reason), Message: intern(w.Message)}
	}
	if s.Running != nil {
		out.Running = &corev1.ContainerStateRunning{}
	}
	return out
}
