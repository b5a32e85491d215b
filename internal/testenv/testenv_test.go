package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "config", "crd", "bases")); err != nil {
		t.Errorf("RepoRoot() = %s, which has no config/crd/bases: %v", root, err)
	}
}

func TestAssetsRejectsADirectoryWithoutBinaries(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(AssetsEnv, dir)
	_, err := Assets("/nonexistent")
	if err == nil {
		t.Fatal("Assets accepted an empty directory")
	}
	for _, want := range []string{AssetsEnv, dir, "kube-apiserver"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestAssetsRejectsNonExecutableBinaries(t *testing.T) {
	dir := t.TempDir()
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if err := os.WriteFile(filepath.Join(dir, bin), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(AssetsEnv, dir)
	if _, err := Assets("/nonexistent"); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Fatalf("Assets() error = %v, want one saying a binary is not executable", err)
	}
}

func TestAssetsWithoutVariableOrScript(t *testing.T) {
	t.Setenv(AssetsEnv, "")
	_, err := Assets(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), AssetsEnv+" is unset") {
		t.Fatalf("Assets() error = %v, want one saying %s is unset", err, AssetsEnv)
	}
}
