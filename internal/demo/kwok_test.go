package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func TestJoinYAML(t *testing.T) {
	tests := []struct {
		name    string
		docs    []string
		want    string
		wantErr string
	}{
		{"two documents", []string{"kind: A\n", "kind: B"}, "kind: A\n---\nkind: B\n", ""},
		{"leading separators and blank lines dropped", []string{"---\nkind: A\n\n", "\n---\nkind: B\n"}, "kind: A\n---\nkind: B\n", ""},
		{"one document", []string{"kind: A"}, "kind: A\n", ""},
		{"blank document", []string{"kind: A", " \n---\n"}, "", "document 1 is empty"},
		{"nothing", nil, "", "no documents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := make([][]byte, len(tt.docs))
			for i, d := range tt.docs {
				docs[i] = []byte(d)
			}
			got, err := JoinYAML(docs...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("JoinYAML = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKwokStagesFollowsKustomizationOrder(t *testing.T) {
	mod := t.TempDir()
	node, pod := filepath.Join("kustomize", "stage", "node", "fast"), filepath.Join("kustomize", "stage", "pod", "general")
	writeFiles(t, mod, map[string]string{
		filepath.Join(node, "kustomization.yaml"):   "resources:\n- node-initialize.yaml\n",
		filepath.Join(node, "node-initialize.yaml"): "name: node-initialize\n",
		filepath.Join(pod, "kustomization.yaml"):    "resources:\n- pod-create.yaml\n- pod-ready.yaml\n",
		filepath.Join(pod, "pod-ready.yaml"):        "name: pod-ready\n",
		filepath.Join(pod, "pod-create.yaml"):       "name: pod-create\n",
		"extra.yaml":                                "---\nname: extra\n",
	})
	got, err := KwokStages(mod, filepath.Join(mod, "extra.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := "name: node-initialize\n---\nname: pod-create\n---\nname: pod-ready\n---\nname: extra\n"
	if string(got) != want {
		t.Fatalf("stages:\n%s\nwant:\n%s", got, want)
	}
}

func TestStageFilesRejects(t *testing.T) {
	tests := []struct {
		name, kustomization, want string
	}{
		{"escapes the directory", "resources:\n- ../../secret.yaml\n", "not a YAML file next to it"},
		{"not YAML", "resources:\n- stage.json\n", "not a YAML file next to it"},
		{"empty", "resources: []\n", "resources is empty"},
		{"malformed", "resources: [\n", "kustomization.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"kustomization.yaml": tt.kustomization})
			_, err := StageFiles(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one with %q", err, tt.want)
			}
		})
	}
	if _, err := StageFiles(t.TempDir()); err == nil {
		t.Fatal("a directory without kustomization.yaml was accepted")
	}
}

// The committed failure stage and the scenario must agree on the annotation that selects pods,
// or the demo's failing pod would silently complete like any other.
func TestFailureStageMatchesScenario(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "hack", "demo", "kwok-stage-init-failed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var stage struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			ResourceRef struct {
				Kind string `json:"kind"`
			} `json:"resourceRef"`
			Selector struct {
				MatchExpressions []struct {
					Key      string `json:"key"`
					Operator string `json:"operator"`
				} `json:"matchExpressions"`
			} `json:"selector"`
			Next struct {
				StatusTemplate string `json:"statusTemplate"`
			} `json:"next"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &stage); err != nil {
		t.Fatalf("stage does not parse: %v", err)
	}
	if stage.APIVersion != "kwok.x-k8s.io/v1alpha1" || stage.Kind != "Stage" || stage.Spec.ResourceRef.Kind != "Pod" {
		t.Fatalf("not a kwok pod Stage: %s %s for %s", stage.APIVersion, stage.Kind, stage.Spec.ResourceRef.Kind)
	}
	selects := false
	for _, e := range stage.Spec.Selector.MatchExpressions {
		if e.Key == `.metadata.annotations["`+FailInitAnnotation+`"]` && e.Operator == "Exists" {
			selects = true
		}
	}
	if !selects {
		t.Errorf("the stage does not select pods by %s", FailInitAnnotation)
	}
	if !strings.Contains(stage.Spec.Next.StatusTemplate, FailInitAnnotation) || !strings.Contains(stage.Spec.Next.StatusTemplate, "exitCode: 1") {
		t.Errorf("the status template does not fail the container named by %s with exit code 1", FailInitAnnotation)
	}
	if !strings.HasPrefix(kwokCompletedWeight, "pod-init-container-completed.") {
		t.Errorf("%s does not name kwok's init-container-completed stage", kwokCompletedWeight)
	}
}

func TestKwokArgs(t *testing.T) {
	args := strings.Join(KwokArgs("/bin/kwok", "/r/.demo/kubeconfig", "/r/.demo/stages.yaml"), " ")
	for _, want := range []string{"--kubeconfig=/r/.demo/kubeconfig", "--config=/r/.demo/stages.yaml",
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake"} {
		if !strings.Contains(args, want) {
			t.Errorf("kwok args %q lack %q", args, want)
		}
	}
	n := FakeNode(NodeName)
	if n.Annotations[KwokNodeAnnotation] != KwokNodeValue {
		t.Errorf("the fake node is not selected by kwok's annotation selector: %v", n.Annotations)
	}
}

func TestAppPod(t *testing.T) {
	a := &app{name: "checkout", hash: "7c9d8b6f5", image: "img", port: 8080, rsUID: "uid-1"}
	p := a.pod("x7k2p")
	if p.Name != "checkout-7c9d8b6f5-x7k2p" || p.Spec.NodeName != NodeName || p.Labels["pod-template-hash"] != "7c9d8b6f5" {
		t.Errorf("pod %s on %q labels %v", p.Name, p.Spec.NodeName, p.Labels)
	}
	ref := p.OwnerReferences
	if len(ref) != 1 || ref[0].Kind != "ReplicaSet" || ref[0].Name != "checkout-7c9d8b6f5" || ref[0].UID != "uid-1" || ref[0].Controller == nil || !*ref[0].Controller {
		t.Errorf("owner references %+v", ref)
	}
	for _, c := range p.Spec.InitContainers {
		if c.Name == redirect.InitContainerName {
			t.Errorf("the pod is created with the init container the injector adds")
		}
	}
}
