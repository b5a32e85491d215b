package injection

import (
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/redirect/podspec"
	envoybootstrap "github.com/meshkeeper/meshkeeper/internal/sidecar"
)

// Annotations stamped on every injected pod. They record what the init container was rendered
// from, so drift can be detected by comparing a digest instead of re-parsing the rules of every
// pod, and so an operator reading a pod can tell which MeshConfig it was admitted against.
const (
	// AnnotationExclusionsDigest is redirect.Config.Digest() of the effective configuration.
	AnnotationExclusionsDigest = "meshkeeper.io/exclusions-digest"
	// AnnotationMeshConfigGeneration is metadata.generation of the MeshConfig used.
	AnnotationMeshConfigGeneration = "meshkeeper.io/meshconfig-generation"
	// AnnotationMeshConfig is the MeshConfig used, as namespace/name.
	AnnotationMeshConfig = "meshkeeper.io/meshconfig"
	// AnnotationInjectedBy is the version of the injector that admitted the pod.
	AnnotationInjectedBy = "meshkeeper.io/injected-by"
)

// Names and ports of the Envoy sidecar. The ports are OSM's so that dashboards, probes and
// network policies written for OSM keep matching.
const (
	SidecarName = "envoy"

	EnvoyAdminPortName    = "proxy-admin"
	EnvoyOutboundPortName = "proxy-outbound"
	EnvoyInboundPortName  = "proxy-inbound"
	EnvoyMetricsPortName  = "proxy-metrics"

	// EnvoyBootstrapVolume and EnvoyBootstrapPath hold the bootstrap configuration when
	// Options.BootstrapSecret names one.
	EnvoyBootstrapVolume = "envoy-bootstrap-config-volume"
	EnvoyBootstrapDir    = "/etc/envoy"
	EnvoyBootstrapPath   = EnvoyBootstrapDir + "/bootstrap.yaml"

	// DefaultEnvoyLogLevel is OSM's default when MeshConfig leaves spec.sidecar.logLevel empty.
	DefaultEnvoyLogLevel = "error"
)

// Options carry what the webhook knows beyond the pod and the MeshConfig spec.
type Options struct {
	// MeshConfig identifies the MeshConfig the spec was read from.
	MeshConfig types.NamespacedName
	// MeshConfigGeneration is that object's metadata.generation.
	MeshConfigGeneration int64
	// Version is the injector's version, stamped as AnnotationInjectedBy.
	Version string
	// DefaultEnvoyImage applies when MeshConfig names no Envoy image.
	DefaultEnvoyImage string
	// DefaultInitImage is the image of meshkeeper's own init program. It is used even when
	// MeshConfig names spec.sidecar.initContainerImage: OSM manifests carry OSM's init image,
	// which has no meshkeeper-init binary, so honouring it would fail every new pod at start.
	// UseMeshConfigInitImage lets an operator who builds their own image opt back in.
	DefaultInitImage       string
	UseMeshConfigInitImage bool
	// BootstrapSecret, when set, is mounted into the sidecar as its bootstrap configuration.
	// When empty, Envoy starts with the inline bootstrap of internal/sidecar: admin on
	// localhost and listeners on the redirection ports that pass every connection through to
	// its original destination (docs/sidecar.md).
	BootstrapSecret string
}

// Errors the caller may want to tell apart.
var (
	// ErrConflict means the pod already holds a container with one of our names but is not a
	// complete injection of ours: injecting would produce a duplicate name or half a mesh.
	ErrConflict = errors.New("pod conflicts with the injected containers")
)

// Injected reports whether pod already carries both the redirection init container and the
// sidecar, i.e. whether a new injection would change nothing.
func Injected(pod *corev1.Pod) bool {
	return hasContainer(pod.Spec.InitContainers, redirect.InitContainerName) && hasContainer(pod.Spec.Containers, SidecarName)
}

func hasContainer(cs []corev1.Container, name string) bool {
	for i := range cs {
		if cs[i].Name == name {
			return true
		}
	}
	return false
}

// Additions is everything an injection adds to a pod. Injection only ever appends containers and
// a volume and sets annotations; it never removes or rewrites what the pod already holds. Keeping
// the additions apart from the pod lets the admission webhook answer with a patch of exactly these
// items instead of diffing two whole pods, and Inject applies the very same value, so the patch
// and the injected pod cannot disagree.
type Additions struct {
	// InitContainers are appended to spec.initContainers, in order.
	InitContainers []corev1.Container
	// Containers are appended to spec.containers, in order.
	Containers []corev1.Container
	// Volumes are appended to spec.volumes, in order.
	Volumes []corev1.Volume
	// Annotations are set in metadata.annotations, replacing a value the pod may already hold
	// under the same key.
	Annotations map[string]string
}

// Empty reports whether nothing is added, as for a pod that is already injected.
func (a *Additions) Empty() bool {
	return len(a.InitContainers) == 0 && len(a.Containers) == 0 && len(a.Volumes) == 0 && len(a.Annotations) == 0
}

// ApplyTo adds a to pod in place. Callers that must keep the submitted pod apply to a copy.
func (a *Additions) ApplyTo(pod *corev1.Pod) {
	pod.Spec.InitContainers = append(pod.Spec.InitContainers, a.InitContainers...)
	pod.Spec.Containers = append(pod.Spec.Containers, a.Containers...)
	pod.Spec.Volumes = append(pod.Spec.Volumes, a.Volumes...)
	if len(a.Annotations) == 0 {
		return
	}
	if pod.Annotations == nil {
		pod.Annotations = make(map[string]string, len(a.Annotations))
	}
	for k, v := range a.Annotations {
		pod.Annotations[k] = v
	}
}

// Inject returns a copy of pod with the redirection init container, the Envoy sidecar and the
// provenance annotations added: Compute's additions applied to a deep copy. The input pod is
// never modified. A pod that already carries both containers is returned unchanged, so a second
// admission pass yields an empty patch. Invalid exclusion annotations or MeshConfig values fail
// the whole injection; nothing is half-added.
func Inject(pod *corev1.Pod, spec *configv1alpha2.MeshConfigSpec, opts Options) (*corev1.Pod, error) {
	add, err := Compute(pod, spec, opts)
	if err != nil {
		return nil, err
	}
	out := pod.DeepCopy()
	add.ApplyTo(out)
	return out, nil
}

// Compute works out what injecting pod adds, without copying or modifying the pod. For a pod that
// already carries both containers the additions are empty. Errors are Inject's.
func Compute(pod *corev1.Pod, spec *configv1alpha2.MeshConfigSpec, opts Options) (*Additions, error) {
	if pod == nil || spec == nil {
		return nil, fmt.Errorf("inject: pod and MeshConfig are required")
	}
	if Injected(pod) {
		return &Additions{}, nil
	}
	if err := Conflict(pod); err != nil {
		return nil, err
	}

	cfg, errs := redirect.Effective(MeshSettings(spec), pod.Annotations)
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	plan := redirect.Render(cfg)

	initImage := opts.DefaultInitImage
	if opts.UseMeshConfigInitImage || initImage == "" {
		initImage = firstNonEmpty(spec.Sidecar.InitContainerImage, initImage)
	}
	envoyImage := firstNonEmpty(spec.Sidecar.EnvoyImage, opts.DefaultEnvoyImage)
	var errList field.ErrorList
	if initImage == "" {
		errList = append(errList, field.Required(field.NewPath("spec", "sidecar", "initContainerImage"), "no init container image is configured"))
	}
	if envoyImage == "" {
		errList = append(errList, field.Required(field.NewPath("spec", "sidecar", "envoyImage"), "no Envoy image is configured"))
	}
	if len(errList) > 0 {
		return nil, errList.ToAggregate()
	}

	add := &Additions{
		InitContainers: []corev1.Container{podspec.InitContainer(plan, initImage, spec.Sidecar.EnablePrivilegedInitContainer)},
		Containers:     []corev1.Container{sidecar(&spec.Sidecar, envoyImage, opts)},
		Annotations: map[string]string{
			AnnotationExclusionsDigest:     cfg.Digest(),
			AnnotationMeshConfigGeneration: strconv.FormatInt(opts.MeshConfigGeneration, 10),
			AnnotationMeshConfig:           opts.MeshConfig.String(),
			AnnotationInjectedBy:           firstNonEmpty(opts.Version, "unknown"),
		},
	}
	if opts.BootstrapSecret != "" {
		add.Volumes = []corev1.Volume{{
			Name: EnvoyBootstrapVolume,
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: opts.BootstrapSecret,
			}},
		}}
	}
	return add, nil
}

// Conflict reports a pod that holds a container with one of the injected names without being a
// complete injection of ours (ErrConflict); nil for any other pod, injected or not.
func Conflict(pod *corev1.Pod) error {
	if Injected(pod) {
		return nil
	}
	if hasContainer(pod.Spec.InitContainers, redirect.InitContainerName) || hasContainer(pod.Spec.Containers, redirect.InitContainerName) {
		return fmt.Errorf("%w: a container named %q already exists", ErrConflict, redirect.InitContainerName)
	}
	if hasContainer(pod.Spec.Containers, SidecarName) || hasContainer(pod.Spec.InitContainers, SidecarName) {
		return fmt.Errorf("%w: a container named %q already exists", ErrConflict, SidecarName)
	}
	return nil
}

func sidecar(sc *configv1alpha2.SidecarSpec, image string, opts Options) corev1.Container {
	level := firstNonEmpty(sc.LogLevel, DefaultEnvoyLogLevel)
	args := []string{"--log-level", level}
	var mounts []corev1.VolumeMount
	if opts.BootstrapSecret != "" {
		args = append(args, "--config-path", EnvoyBootstrapPath)
		mounts = []corev1.VolumeMount{{Name: EnvoyBootstrapVolume, MountPath: EnvoyBootstrapDir, ReadOnly: true}}
	} else {
		// Without a bootstrap Secret, the listeners the redirection rules send traffic to must
		// exist from the start, or the pod has no network.
		args = append(args, "--config-yaml", envoybootstrap.DefaultBootstrap())
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	port := func(name string, p uint16) corev1.ContainerPort {
		return corev1.ContainerPort{Name: name, ContainerPort: int32(p), Protocol: corev1.ProtocolTCP}
	}
	return corev1.Container{
		Name:    SidecarName,
		Image:   image,
		Command: []string{"envoy"},
		Args:    args,
		Ports: []corev1.ContainerPort{
			port(EnvoyAdminPortName, redirect.AdminPort),
			port(EnvoyOutboundPortName, redirect.OutboundListenerPort),
			port(EnvoyInboundPortName, redirect.InboundListenerPort),
			port(EnvoyMetricsPortName, redirect.MetricsPort),
		},
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			fieldEnv("POD_IP", "status.podIP"),
			fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
		},
		Resources:    *sc.Resources.DeepCopy(),
		VolumeMounts: mounts,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To(int64(redirect.ProxyUID)),
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
