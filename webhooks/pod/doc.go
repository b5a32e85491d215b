// Package pod is the sidecar injector's admission handler. It gathers the pod, its namespace and
// the MeshConfig from the manager's cache, asks internal/injection what the pod gains and answers
// with a JSON patch of exactly those additions; it decides nothing itself.
package pod
