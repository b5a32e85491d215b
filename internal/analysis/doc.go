// Package analysis finds the mistakes in Egress, IngressBackend and MeshConfig objects that no
// schema can catch because they only show up next to other objects: a mesh Service whose port
// swallows traffic meant for an external database, an exclusion that makes a policy moot, a
// backend port that OSM semantics never match. Everything here is a pure function of gathered
// input, so controllers, the admission path and the CLI reach the same verdict.
package analysis
