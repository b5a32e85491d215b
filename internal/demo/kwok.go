package demo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// kwok manages only the nodes carrying this annotation, so it never touches anything else.
const (
	KwokNodeAnnotation = "kwok.x-k8s.io/node"
	KwokNodeValue      = "fake"
)

// StageDirs are the kwok module's stage sets the demo uses: nodes become Ready at once, and pods
// go through init containers, Running and deletion as the kubelet would report them.
var StageDirs = []string{
	filepath.Join("kustomize", "stage", "node", "fast"),
	filepath.Join("kustomize", "stage", "pod", "general"),
}

// kustomization is the part of a kustomization.yaml that lists the stage files, in order.
type kustomization struct {
	Resources []string `json:"resources"`
}

// StageFiles returns the files a stage directory's kustomization.yaml lists, as paths under dir.
func StageFiles(dir string) ([]string, error) {
	path := filepath.Join(dir, "kustomization.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading kwok stages: %w", err)
	}
	var k kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(k.Resources) == 0 {
		return nil, fmt.Errorf("%s: resources is empty", path)
	}
	files := make([]string, 0, len(k.Resources))
	for _, r := range k.Resources {
		if r == "" || filepath.IsAbs(r) || strings.Contains(r, "..") || !strings.HasSuffix(r, ".yaml") {
			return nil, fmt.Errorf("%s: resources entry %q is not a YAML file next to it", path, r)
		}
		files = append(files, filepath.Join(dir, r))
	}
	return files, nil
}

// JoinYAML concatenates YAML documents into one multi-document stream, separated by "---".
// Leading separators and surrounding blank lines of each input are dropped so that no empty
// document appears; an input that is blank is an error, since a stage file is never empty.
func JoinYAML(docs ...[]byte) ([]byte, error) {
	var b bytes.Buffer
	for i, d := range docs {
		d = bytes.TrimSpace(d)
		d = bytes.TrimSpace(bytes.TrimPrefix(d, []byte("---")))
		if len(d) == 0 {
			return nil, fmt.Errorf("document %d is empty", i)
		}
		if b.Len() > 0 {
			b.WriteString("---\n")
		}
		b.Write(d)
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return nil, errors.New("no documents")
	}
	return b.Bytes(), nil
}

// KwokStages reads the stage sets of the kwok module in moduleDir, then the extra stage files,
// and returns them as one stream for kwok's --config.
func KwokStages(moduleDir string, extra ...string) ([]byte, error) {
	var files []string
	for _, d := range StageDirs {
		fs, err := StageFiles(filepath.Join(moduleDir, d))
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	files = append(files, extra...)
	docs := make([][]byte, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading kwok stage: %w", err)
		}
		docs = append(docs, data)
	}
	out, err := JoinYAML(docs...)
	if err != nil {
		return nil, fmt.Errorf("joining kwok stages: %w", err)
	}
	return out, nil
}

// KwokArgs is kwok's command line: it manages only nodes annotated as fake, takes its stages
// from stagesPath, and opens no port of its own (no --server-address).
func KwokArgs(bin, kubeconfig, stagesPath string) []string {
	return []string{
		bin,
		"--kubeconfig=" + kubeconfig,
		"--config=" + stagesPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=" + KwokNodeValue,
	}
}

// FakeNode is the node kwok pretends to run; pods are bound to it by spec.nodeName because
// envtest has no scheduler.
func FakeNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{KwokNodeAnnotation: KwokNodeValue},
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("32"),
				corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("32"),
				corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
		},
	}
}
