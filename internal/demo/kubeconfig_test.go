package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func adminConfig() *rest.Config {
	return &rest.Config{
		Host: "https://127.0.0.1:6443",
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   []byte("ca-bytes"),
			CertData: []byte("cert-bytes"),
			KeyData:  []byte("key-bytes"),
		},
	}
}

func TestKubeconfigRoundTrip(t *testing.T) {
	data, err := Kubeconfig(adminConfig(), "meshkeeper-demo")
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load(data)
	if err != nil {
		t.Fatalf("the written kubeconfig does not load: %v\n%s", err, data)
	}
	if kc.CurrentContext != "meshkeeper-demo" {
		t.Errorf("current context %q, want meshkeeper-demo", kc.CurrentContext)
	}
	cl := kc.Clusters["meshkeeper-demo"]
	if cl == nil || cl.Server != "https://127.0.0.1:6443" || string(cl.CertificateAuthorityData) != "ca-bytes" {
		t.Errorf("cluster = %+v", cl)
	}
	u := kc.AuthInfos["meshkeeper-demo"]
	if u == nil || string(u.ClientCertificateData) != "cert-bytes" || string(u.ClientKeyData) != "key-bytes" {
		t.Errorf("user = %+v", u)
	}
	// What clients build from the file reaches the same server with the same credentials.
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || string(cfg.KeyData) != "key-bytes" {
		t.Errorf("rest config from the file: host %q key %q", cfg.Host, cfg.KeyData)
	}
}

func TestKubeconfigRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*rest.Config)
		cname  string
		want   string
	}{
		{"empty name", func(*rest.Config) {}, "", "empty cluster name"},
		{"no host", func(c *rest.Config) { c.Host = "" }, "x", "empty host"},
		{"no CA", func(c *rest.Config) { c.CAData = nil }, "x", "no CA data"},
		{"cert without key", func(c *rest.Config) { c.KeyData = nil }, "x", "without its key"},
		{"no credentials", func(c *rest.Config) { c.CertData, c.KeyData = nil, nil }, "x", "no credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := adminConfig()
			tt.mutate(cfg)
			_, err := Kubeconfig(cfg, tt.cname)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := Kubeconfig(nil, "x"); err == nil {
		t.Fatal("nil config accepted")
	}
}

func TestWriteKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", ".demo", "kubeconfig")
	if err := WriteKubeconfig(path, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := WriteKubeconfig(path, []byte("second")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "second" {
		t.Errorf("content %q, want the second write", got)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600: the file holds an admin key", st.Mode().Perm())
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
