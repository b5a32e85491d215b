package demo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubeconfig renders a kubeconfig with one cluster, one user and one context, all called name,
// from a rest.Config that carries its credentials inline (as envtest's admin config does). Inline
// data keeps the file usable after the temporary directories of the control plane are gone from
// view, and lets the file be copied elsewhere.
func Kubeconfig(cfg *rest.Config, name string) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("kubeconfig: no rest config")
	}
	if name == "" {
		return nil, errors.New("kubeconfig: empty cluster name")
	}
	if cfg.Host == "" {
		return nil, errors.New("kubeconfig: rest config has an empty host")
	}
	if len(cfg.CAData) == 0 && !cfg.Insecure {
		return nil, fmt.Errorf("kubeconfig: rest config for %s has no CA data", cfg.Host)
	}
	hasCert := len(cfg.CertData) > 0 || len(cfg.KeyData) > 0
	if hasCert && (len(cfg.CertData) == 0 || len(cfg.KeyData) == 0) {
		return nil, fmt.Errorf("kubeconfig: rest config for %s has a client certificate without its key or a key without its certificate", cfg.Host)
	}
	if !hasCert && cfg.BearerToken == "" && cfg.Username == "" {
		return nil, fmt.Errorf("kubeconfig: rest config for %s carries no credentials (client certificate, token or basic auth)", cfg.Host)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
		InsecureSkipTLSVerify:    cfg.Insecure,
	}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
		Username:              cfg.Username,
		Password:              cfg.Password,
	}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	kc.CurrentContext = name
	return clientcmd.Write(*kc)
}

// WriteKubeconfig writes data to path readable by its owner only (it holds an admin key),
// creating the directory when needed and replacing a file left by an earlier run atomically.
func WriteKubeconfig(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kubeconfig-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
