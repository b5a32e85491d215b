// Package testenv starts a real kube-apiserver and etcd (envtest) with meshkeeper's CRDs
// installed, so every integration suite in the tree boots the control plane the same way and
// finds the locally built binaries without downloading anything.
package testenv
