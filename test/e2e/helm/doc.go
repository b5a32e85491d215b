// Package helm holds the end-to-end test of the Helm chart charts/meshkeeper on the real
// one-node cluster of hack/cluster: `helm install` in audit mode (the images built by
// hack/imagebuild), the manager Ready and leading, the objects the release owns, then `helm
// uninstall` leaving none of them behind. Run it with `make e2e-helm` (after `make cluster-up`),
// which passes the pinned helm in HELM.
//
// The tests are behind the e2e build tag and read the cluster from KUBECONFIG.
package helm
