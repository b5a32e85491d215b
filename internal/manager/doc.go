// Package manager wires the operator for its two modes, audit (the default: judges, never
// mutates a pod) and inject, after looking at the cluster once: which MeshConfig to serve and
// whether the CRDs in place (meshkeeper's or OSM's) can store a status. cmd/manager and the
// tests start it the same way.
package manager
