// Package injection decides whether a pod joins the mesh and, if it does, what the admitted pod
// looks like: the redirection init container, the Envoy sidecar and the annotations that record
// which MeshConfig produced them. It is pure so the admission webhook only decodes and encodes,
// and so the same answer can be recomputed by anything that needs to know what a pod should hold.
package injection
