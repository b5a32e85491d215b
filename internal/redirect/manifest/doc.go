// Package manifest reads redirection rules out of Kubernetes manifests written in YAML: a pod, a
// workload, a list, a bare container or its args, as `kubectl get -o yaml` prints them or as they
// sit in a repository. It is the YAML reader of internal/redirect, kept apart so that the rule
// core, which the init container program links, carries no YAML library; every other format
// (JSON, iptables-save, OSM scripts, `kubectl describe`) is read by the core itself.
package manifest
