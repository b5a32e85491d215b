package manifest

import (
	"sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Parse reads redirection rules from any input redirect.Parse reads, and from YAML manifests.
func Parse(data []byte) (*redirect.Parsed, error) {
	return redirect.ParseWith(data, yamlUnmarshal)
}

// yamlUnmarshal adapts sigs.k8s.io/yaml, whose options argument redirect.Unmarshal does not have.
func yamlUnmarshal(data []byte, v any) error { return yaml.Unmarshal(data, v) }
