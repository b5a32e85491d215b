package redirect

import (
	"sigs.k8s.io/yaml"
)

// parseYAML is Parse with a YAML reader, as package manifest provides it: the core's tests read
// the same manifests users pass to the CLI, and this package cannot import manifest.
func parseYAML(data []byte) (*Parsed, error) {
	return ParseWith(data, func(doc []byte, v any) error { return yaml.Unmarshal(doc, v) })
}
