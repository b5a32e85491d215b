package pod

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/internal/injection"
)

// patchMemoLimit bounds the memo: pods of one MeshConfig version rarely carry more than a few
// distinct sets of exclusion annotations; past the bound the memo starts over.
const patchMemoLimit = 256

// patchMemo keeps the encoded patch of each injection.PatchKey for one version of the MeshConfig
// object and one set of injection options. Replicas of a workload, and most pods of a mesh, share
// a key, so rendering the rules and encoding both containers happens once per key rather than
// once per admission; the first admission after any MeshConfig write (new resourceVersion) starts
// a new memo. Errors are never kept: a pod that fails is computed again.
type patchMemo struct {
	mu      sync.Mutex
	version memoVersion
	patches map[string][]byte
}

// memoVersion is everything outside the pod that a patch depends on.
type memoVersion struct {
	uid             types.UID
	resourceVersion string
	options         injection.Options
}

// get returns the patch memoised for key under version. A MeshConfig without a resourceVersion
// (never stored, as in unit tests) is never memoised.
func (m *patchMemo) get(v memoVersion, key string) ([]byte, bool) {
	if v.resourceVersion == "" {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.version != v {
		return nil, false
	}
	p, ok := m.patches[key]
	return p, ok
}

func (m *patchMemo) put(v memoVersion, key string, patch []byte) {
	if v.resourceVersion == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.version != v || len(m.patches) >= patchMemoLimit {
		m.version, m.patches = v, make(map[string][]byte)
	}
	m.patches[key] = patch
}
