// Package scheme is the one runtime scheme every meshkeeper client uses (the manager, the CLI,
// the tests): Kubernetes' built-in kinds, CustomResourceDefinitions (read to tell OSM's CRDs from
// meshkeeper's) and every served version of meshkeeper's kinds.
package scheme
