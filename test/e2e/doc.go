// Package e2e holds the end-to-end tests that run on the real one-node cluster of
// hack/cluster (make cluster-up, then make e2e), and the programs its images carry:
// standin (a stand-in for the Envoy sidecar, because no Envoy binary is reachable from the
// machines this runs on) and testapp (the application in the test pods).
//
// The tests are behind the e2e build tag and read the cluster from KUBECONFIG. They deploy the
// operator with the kustomize overlay named by E2E_OVERLAY: test/e2e/deploy/injector (inject
// mode, over config/injector) unless set, or test/e2e/deploy/audit (audit mode, over
// config/default). They look at pods the way a user's cluster runs them: the kubelet,
// containerd and runc start them, and the rules in a pod's network namespace are read from the
// host with nsenter.
package e2e
