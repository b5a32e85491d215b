package podspec

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/redirect/manifest"
)

func render(t *testing.T, s redirect.MeshSettings) (redirect.Config, redirect.Plan) {
	t.Helper()
	cfg, errs := redirect.Effective(s, nil)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	return cfg, redirect.Render(cfg)
}

func TestInitContainer(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		podIP bool
	}{{"Localhost", false}, {"PodIP", true}} {
		t.Run(tc.mode, func(t *testing.T) {
			_, plan := render(t, redirect.MeshSettings{LocalProxyMode: tc.mode, OutboundPortExclusionList: []int{6379}})
			c := InitContainer(plan, "example.com/meshkeeper-init:v1", false)
			core := redirect.InitContainer(plan)
			if c.Name != redirect.InitContainerName || c.Image != "example.com/meshkeeper-init:v1" ||
				!slices.Equal(c.Command, core.Command) || !slices.Equal(c.Args, core.Args) {
				t.Errorf("container %s %s %q %q, want the engine's name and argv", c.Name, c.Image, c.Command, c.Args)
			}
			if sc := c.SecurityContext; sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) ||
				!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || sc.Privileged == nil || *sc.Privileged ||
				sc.RunAsUser == nil || *sc.RunAsUser != 0 {
				t.Errorf("security context %+v, want root with NET_ADMIN and NET_RAW only, unprivileged", sc)
			}
			if p := InitContainer(plan, "img", true).SecurityContext.Privileged; p == nil || !*p {
				t.Errorf("privileged opt-in not honoured: %v", p)
			}
			if !tc.podIP {
				if len(c.Env) != 0 {
					t.Errorf("env %+v without PodIP mode", c.Env)
				}
				return
			}
			if len(c.Env) != 1 || c.Env[0].Name != redirect.PodIPEnvVar || c.Env[0].ValueFrom == nil ||
				c.Env[0].ValueFrom.FieldRef == nil || c.Env[0].ValueFrom.FieldRef.FieldPath != "status.podIP" {
				t.Errorf("env %+v, want %s from status.podIP", c.Env, redirect.PodIPEnvVar)
			}
		})
	}
}

// The container the injector adds must read back to the exclusions it was rendered from, both
// straight from the pod object (the drift controller) and from the pod's manifest (the CLI).
func TestRoundTrip(t *testing.T) {
	cfg, plan := render(t, redirect.MeshSettings{
		OutboundIPRangeExclusionList:  []string{"169.254.169.254/32", "fd00:ec2::254/128"},
		OutboundPortExclusionList:     []int{6379, 7070},
		InboundPortExclusionList:      []int{9090},
		NetworkInterfaceExclusionList: []string{"net1"},
		LocalProxyMode:                "PodIP",
	})
	c := InitContainer(plan, "img", false)
	p, err := ParseContainer(&c)
	if err != nil {
		t.Fatal(err)
	}
	if d := redirect.Diff(cfg.Exclusions(), p.Exclusions()); !d.Empty() || p.Container != c.Name || p.PodIPEnv != redirect.PodIPEnvVar {
		t.Errorf("container: %s, from %q, pod IP env %q", d, p.Container, p.PodIPEnv)
	}

	// A full pod: fields the engine does not read (resources, probes, ports) must not disturb it.
	pod := corev1.Pod{
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{c},
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "app:v1",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("250m"),
				}},
			}},
		},
	}
	pod.APIVersion, pod.Kind, pod.Name = "v1", "Pod", "web-1"
	data, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	p, err = manifest.Parse(data)
	if err != nil {
		t.Fatalf("Parse(pod): %v\n%s", err, data)
	}
	if d := redirect.Diff(cfg.Exclusions(), p.Exclusions()); !d.Empty() || p.Format != redirect.FormatMeshkeeper {
		t.Errorf("pod manifest: format %s, %s", p.Format, d)
	}
}

func TestParseContainerErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    corev1.Container
		want string
	}{
		{"empty", corev1.Container{Name: "x"}, `container "x" has no command or args`},
		{"no verb", corev1.Container{Name: redirect.InitContainerName, Command: []string{redirect.InitCommand}}, "without arguments"},
		{"other program", corev1.Container{Name: "x", Command: []string{"/app"}}, "does not run meshkeeper-init"},
		{"bad rules", corev1.Container{Name: redirect.InitContainerName, Command: []string{redirect.InitCommand}, Args: []string{"apply", "--ipv4-rules", "*nat\n-A NOPE\nCOMMIT\n"}}, "args[2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseContainer(&tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
