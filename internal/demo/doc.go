// Package demo plays meshkeeper's end-to-end scenario on a control plane it brings up on the
// local machine: a real kube-apiserver and etcd (envtest), kwok standing in for the kubelet of one
// fake node, and the operator binary itself, talking to the apiserver exactly as it would in a
// cluster. It exists so that a person without a cluster can watch pods get injected, drift when
// the MeshConfig changes, and come back in sync when they are replaced, and so that CI can prove
// the same story end to end. Decisions (did a step show what it should?) are pure functions over
// fetched objects; everything that starts processes or talks to the apiserver stays thin.
package demo
