package drift

import (
	"hash/maphash"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/redirect/podspec"
)

// readRules is what the exclusions check needs from an init container.
type readRules struct {
	exclusions redirect.Exclusions
	err        error
}

func parseRules(c *corev1.Container) readRules {
	if r, ok := istioArgsOf(c); ok {
		return r
	}
	parsed, err := podspec.ParseContainer(c)
	if err != nil {
		return readRules{err: err}
	}
	return readRules{exclusions: parsed.Exclusions()}
}

// RuleCache remembers what init containers' rules mean, keyed by their exact command and
// arguments. Every replica of a workload carries the same rules, so a mesh of thousands of pods
// has only as many distinct rule sets as it has workload revisions; parsing each once keeps the
// re-evaluation of every pod after a MeshConfig change cheap. A cache never changes a verdict:
// a hit is only taken when the command and arguments are equal. The zero value is not usable;
// a nil *RuleCache parses every time.
type RuleCache struct {
	mu      sync.Mutex
	seed    maphash.Seed
	max     int
	entries map[uint64]ruleEntry
}

type ruleEntry struct {
	command, args []string
	rules         readRules
}

// NewRuleCache holds up to max rule sets; when full it starts over, which costs one parse per
// rule set still in use.
func NewRuleCache(max int) *RuleCache {
	return &RuleCache{seed: maphash.MakeSeed(), max: max, entries: make(map[uint64]ruleEntry)}
}

func (rc *RuleCache) read(c *corev1.Container) readRules {
	if rc == nil {
		return parseRules(c)
	}
	var h maphash.Hash
	h.SetSeed(rc.seed)
	for _, part := range [2][]string{c.Command, c.Args} {
		for _, s := range part {
			h.WriteString(s)
			h.WriteByte(0)
		}
		h.WriteByte(1)
	}
	key := h.Sum64()
	rc.mu.Lock()
	e, ok := rc.entries[key]
	rc.mu.Unlock()
	if ok && slices.Equal(e.command, c.Command) && slices.Equal(e.args, c.Args) {
		return e.rules
	}
	r := parseRules(c)
	rc.mu.Lock()
	if len(rc.entries) >= rc.max {
		clear(rc.entries)
	}
	rc.entries[key] = ruleEntry{command: slices.Clone(c.Command), args: slices.Clone(c.Args), rules: r}
	rc.mu.Unlock()
	return r
}

// Len is the number of rule sets held.
func (rc *RuleCache) Len() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.entries)
}
