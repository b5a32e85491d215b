package manager

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteCertFiles(t *testing.T) {
	dir := t.TempDir()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			return "(none)"
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	steps := []struct {
		name      string
		data      map[string][]byte
		wantWrote bool
		wantKey   string
		wantCert  string
	}{
		{"an empty Secret writes nothing", nil, false, "(none)", "(none)"},
		{"a key without certificate writes nothing", map[string][]byte{"tls.key": []byte("k1")}, false, "(none)", "(none)"},
		{"both write both", map[string][]byte{"tls.key": []byte("k1"), "tls.crt": []byte("c1"), "ca.crt": []byte("ca")}, true, "k1", "c1"},
		{"the same bytes write nothing", map[string][]byte{"tls.key": []byte("k1"), "tls.crt": []byte("c1")}, false, "k1", "c1"},
		{"a rotation replaces both", map[string][]byte{"tls.key": []byte("k2"), "tls.crt": []byte("c2")}, true, "k2", "c2"},
	}
	for _, s := range steps {
		wrote, err := writeCertFiles(dir, s.data)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if wrote != s.wantWrote || read("tls.key") != s.wantKey || read("tls.crt") != s.wantCert {
			t.Errorf("%s: wrote %v, key %q, cert %q; want %v, %q, %q", s.name, wrote, read("tls.key"), read("tls.crt"), s.wantWrote, s.wantKey, s.wantCert)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("the cert dir holds %d entries, want tls.key and tls.crt only (no temporary files left)", len(entries))
	}
	for _, e := range entries {
		if info, err := e.Info(); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (err %v), want 0600", e.Name(), info.Mode().Perm(), err)
		}
	}
}

// TestWriteCertFilesKeyFirst: the certificate is what readers look for, so a key that cannot be
// written leaves the certificate unwritten too, and the error is returned.
func TestWriteCertFilesKeyFirst(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tls.key"), 0o700); err != nil {
		t.Fatal(err)
	}
	wrote, err := writeCertFiles(dir, map[string][]byte{"tls.key": []byte("k"), "tls.crt": []byte("c")})
	if err == nil || wrote {
		t.Errorf("wrote %v, err %v; want an error and nothing written", wrote, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tls.crt")); err == nil {
		t.Error("tls.crt was written although tls.key could not be")
	}
	if _, err := writeCertFiles(filepath.Join(dir, "missing"), map[string][]byte{"tls.key": []byte("k"), "tls.crt": []byte("c")}); err == nil {
		t.Error("no error writing into a directory that does not exist")
	}
}

func TestAwaitCertFiles(t *testing.T) {
	dir := t.TempDir()
	ready := make(chan struct{})
	go awaitCertFiles(context.Background(), dir, 10*time.Millisecond, ready)
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("tls.crt")
	select {
	case <-ready:
		t.Fatal("ready with the certificate but no key")
	case <-time.After(100 * time.Millisecond):
	}
	write("tls.key")
	<-ready // the test's own deadline ends a wait that never finishes

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	never := make(chan struct{})
	go func() { awaitCertFiles(ctx, t.TempDir(), 10*time.Millisecond, never); close(done) }()
	cancel()
	<-done
	select {
	case <-never:
		t.Error("ready closed for an empty dir after the context ended")
	default:
	}
}

// TestWriteCertFilesOverAProjectedSecret: with an older manifest the cert dir is the kubelet's
// projection of the Secret (files are links into a ..data directory it swaps). Once the
// projection holds the Secret's bytes, certFiles finds nothing to write, so it neither logs an
// error nor touches the kubelet's links; only bytes that differ are written.
func TestWriteCertFilesOverAProjectedSecret(t *testing.T) {
	dir := t.TempDir()
	version := filepath.Join(dir, "..2026_12_07_14_00_00.000000001")
	if err := os.Mkdir(version, 0o755); err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{"tls.key": []byte("k1"), "tls.crt": []byte("c1")}
	for name, b := range data {
		if err := os.WriteFile(filepath.Join(version, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(version), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range data {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	wrote, err := writeCertFiles(dir, data)
	if wrote || err != nil {
		t.Fatalf("projection already current: wrote %v, err %v; want nothing written and no error", wrote, err)
	}
	for name := range data {
		if fi, err := os.Lstat(filepath.Join(dir, name)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer the kubelet's link (mode %v, err %v)", name, fi.Mode(), err)
		}
	}
}
