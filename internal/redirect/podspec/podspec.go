package podspec

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// InitContainer is the container the injector adds for a plan, security context included, so
// that every pod built from it (the injector's, and those of tests) is the same. iptables needs
// NET_ADMIN and NET_RAW as root; every other capability is dropped. privileged is the mesh-wide
// opt-in (spec.sidecar.enablePrivilegedInitContainer) for nodes whose iptables backend needs it.
func InitContainer(p redirect.Plan, image string, privileged bool) corev1.Container {
	rc := redirect.InitContainer(p)
	c := corev1.Container{
		Name:    rc.Name,
		Image:   image,
		Command: rc.Command,
		Args:    rc.Args,
		// meshkeeper-init prints its failure reason as its last line; with this policy the
		// kubelet keeps it as the termination message, which the drift controller quotes in
		// RedirectionApplied, so the reason reaches the pod's conditions without reading logs.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
			RunAsUser:    ptr.To[int64](0),
			RunAsNonRoot: ptr.To(false),
			Privileged:   ptr.To(privileged),
		},
	}
	if p.NeedsPodIP {
		c.Env = []corev1.EnvVar{{
			Name:      redirect.PodIPEnvVar,
			ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}},
		}}
	}
	return c
}

// ParseContainer reads the rules of a pod's init container: ours or OSM's (see
// redirect.ParseContainer), or Istio's istio-init, whose arguments are rendered into the rules
// istio-iptables writes. Only the name and argv are read, and they are not copied.
func ParseContainer(c *corev1.Container) (*redirect.Parsed, error) {
	if s, ok, err := istio.ContainerSettings(c.Name, c.Command, c.Args); ok {
		if err != nil {
			return nil, err
		}
		return istio.Parsed(s, c.Name)
	}
	return redirect.ParseContainer(redirect.Container{Name: c.Name, Command: c.Command, Args: c.Args})
}
