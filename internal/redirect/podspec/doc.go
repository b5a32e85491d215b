// Package podspec joins the redirection engine to the Kubernetes pod API: it turns a plan into
// the init container the injector adds and reads rules back from a pod's containers. It is
// separate from internal/redirect so that the init container program, which runs as root in
// every meshed pod, carries no Kubernetes client types.
package podspec
