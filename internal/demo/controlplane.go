package demo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshkeeper/meshkeeper/internal/testenv"
)

// ControlPlane is a running kube-apiserver and etcd with meshkeeper's CRDs and admission webhooks
// installed; the webhooks point at localhost, where the manager will serve them.
type ControlPlane struct {
	Config *rest.Config
	Client client.Client
	// Kubeconfig is the admin kubeconfig file for kubectl, kwok and the manager.
	Kubeconfig string
	// WebhookPort and WebhookCertDir are where the apiserver expects the webhook server and
	// the certificate it trusts for it.
	WebhookPort    int
	WebhookCertDir string

	env  *envtest.Environment
	logs []*os.File
}

// StartControlPlane boots the control plane from the binaries in assets, with CRDs from
// config/crd/bases and webhooks from config/webhook/manifests.yaml under root; dir receives the
// kubeconfig and the logs of kube-apiserver and etcd.
func StartControlPlane(root, assets, dir string) (*ControlPlane, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cp := &ControlPlane{}
	apiLog, err := cp.openLog(filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	etcdLog, err := cp.openLog(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, errors.Join(err, cp.closeLogs())
	}
	cp.env = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                testenv.NewScheme(),
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			Paths: []string{filepath.Join(root, "config", "webhook", "manifests.yaml")},
		},
	}
	cp.env.ControlPlane.APIServer = &envtest.APIServer{Out: apiLog, Err: apiLog}
	cp.env.ControlPlane.Etcd = &envtest.Etcd{Out: etcdLog, Err: etcdLog}
	cfg, err := cp.env.Start()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("starting kube-apiserver and etcd from %s (logs in %s): %w", assets, dir, err), cp.closeLogs())
	}
	cp.Config = cfg
	cp.WebhookPort = cp.env.WebhookInstallOptions.LocalServingPort
	cp.WebhookCertDir = cp.env.WebhookInstallOptions.LocalServingCertDir
	if cp.Client, err = client.New(cfg, client.Options{Scheme: cp.env.Scheme}); err != nil {
		return nil, errors.Join(fmt.Errorf("creating a client: %w", err), cp.Stop())
	}
	data, err := Kubeconfig(cfg, "meshkeeper-demo")
	if err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := WriteKubeconfig(cp.Kubeconfig, data); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return cp, nil
}

func (cp *ControlPlane) openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	cp.logs = append(cp.logs, f)
	return f, nil
}

func (cp *ControlPlane) closeLogs() error {
	var errs []error
	for _, f := range cp.logs {
		errs = append(errs, f.Close())
	}
	cp.logs = nil
	return errors.Join(errs...)
}

// Stop shuts down kube-apiserver and etcd and removes their data directories. The kubeconfig
// stays behind but points at nothing.
func (cp *ControlPlane) Stop() error {
	var errs []error
	if cp.env != nil {
		errs = append(errs, cp.env.Stop())
	}
	errs = append(errs, cp.closeLogs())
	return errors.Join(errs...)
}
