// Package pod is the sidecar injector's admission handler. It gathers the pod, its namespace and
// the MeshConfig from the manager's cache, asks internal/injection for the mesh-ready pod and
// answers with the JSON patch between the two; it decides nothing itself.
package pod
