package analysis

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// OutboundTrafficPolicy is Istio's mesh-wide rule for outbound connections no listener of the
// sidecar claims.
type OutboundTrafficPolicy string

const (
	// AllowAny sends them to PassthroughCluster: on to the original destination. Istio's
	// default.
	AllowAny OutboundTrafficPolicy = "ALLOW_ANY"
	// RegistryOnly sends them to BlackHoleCluster: the proxy accepts and closes them.
	RegistryOnly OutboundTrafficPolicy = "REGISTRY_ONLY"
)

// Istio's mesh configuration lives in a ConfigMap of the control plane's namespace, as YAML
// under one key. A revision's control plane reads istio-<revision>.
const (
	IstioMeshConfigMap = "istio"
	IstioMeshKey       = "mesh"
)

// IstioMesh is what the Istio analyses need from the mesh configuration.
type IstioMesh struct {
	// Ref names the ConfigMap, for messages.
	Ref types.NamespacedName
	// Found is false when the ConfigMap was not read; the defaults then apply.
	Found bool
	// OutboundPolicy is outboundTrafficPolicy.mode, AllowAny when unset.
	OutboundPolicy OutboundTrafficPolicy
}

func (m IstioMesh) String() string {
	if !m.Found {
		return "Istio's default mesh configuration"
	}
	return fmt.Sprintf("ConfigMap %s/%s", m.Ref.Namespace, m.Ref.Name)
}

func (m IstioMesh) policy() OutboundTrafficPolicy {
	if m.OutboundPolicy == "" {
		return AllowAny
	}
	return m.OutboundPolicy
}

// istioMeshDoc is the part of Istio's MeshConfig meshkeeper reads; everything else is ignored.
type istioMeshDoc struct {
	OutboundTrafficPolicy *struct {
		Mode *string `json:"mode"`
	} `json:"outboundTrafficPolicy"`
}

// ParseIstioMeshConfig reads outboundTrafficPolicy.mode from the YAML of an Istio mesh
// configuration (the `mesh` key of the istio ConfigMap). An absent policy or mode is ALLOW_ANY,
// as in Istio; a mode other than ALLOW_ANY or REGISTRY_ONLY, or YAML that is not a mapping, is
// an error naming the field.
func ParseIstioMeshConfig(data string) (OutboundTrafficPolicy, error) {
	var doc istioMeshDoc
	if err := yaml.Unmarshal([]byte(data), &doc); err != nil {
		return "", fmt.Errorf("mesh configuration is not valid YAML for Istio's MeshConfig: %w", err)
	}
	if doc.OutboundTrafficPolicy == nil || doc.OutboundTrafficPolicy.Mode == nil || *doc.OutboundTrafficPolicy.Mode == "" {
		return AllowAny, nil
	}
	switch m := OutboundTrafficPolicy(*doc.OutboundTrafficPolicy.Mode); m {
	case AllowAny, RegistryOnly:
		return m, nil
	default:
		return "", fmt.Errorf("outboundTrafficPolicy.mode %q is not ALLOW_ANY or REGISTRY_ONLY", *doc.OutboundTrafficPolicy.Mode)
	}
}

// IstioMeshOf reads the mesh configuration from the istio ConfigMap; nil means it was not
// found, and Istio's defaults apply. An error names the ConfigMap and key.
func IstioMeshOf(cm *corev1.ConfigMap) (IstioMesh, error) {
	if cm == nil {
		return IstioMesh{OutboundPolicy: AllowAny}, nil
	}
	m := IstioMesh{Ref: types.NamespacedName{Namespace: cm.Namespace, Name: cm.Name}, Found: true, OutboundPolicy: AllowAny}
	data, ok := cm.Data[IstioMeshKey]
	if !ok {
		return m, nil
	}
	p, err := ParseIstioMeshConfig(data)
	if err != nil {
		return m, fmt.Errorf("ConfigMap %s/%s key %s: %w", cm.Namespace, cm.Name, IstioMeshKey, err)
	}
	m.OutboundPolicy = p
	return m, nil
}
