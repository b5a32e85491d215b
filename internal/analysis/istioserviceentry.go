package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// IstioNetworkingGroup is the API group of ServiceEntry. The versions meshkeeper reads are
// listed newest first; they share the fields read here.
const IstioNetworkingGroup = "networking.istio.io"

// IstioNetworkingVersions are the served versions of ServiceEntry, newest first.
var IstioNetworkingVersions = []string{"v1", "v1beta1", "v1alpha3"}

// ServiceEntry is the part of an Istio ServiceEntry the outbound model reads. It is read from
// unstructured objects, so that meshkeeper needs no Istio client library and works whichever
// version the cluster serves.
type ServiceEntry struct {
	Namespace, Name string
	Hosts           []string
	// Addresses are the entry's addresses (a plain IP is a /32 or /128).
	Addresses []netip.Prefix
	Ports     []ServiceEntryPort
	// Resolution is NONE, STATIC, DNS or DNS_ROUND_ROBIN (NONE when unset).
	Resolution string
	// Location is MESH_EXTERNAL or MESH_INTERNAL (MESH_EXTERNAL when unset).
	Location string
}

// ServiceEntryPort is one port of a ServiceEntry and the protocol Istio assumes for it.
type ServiceEntryPort struct {
	Number   int32
	Name     string
	Protocol IstioProtocol
}

func (e *ServiceEntry) key() types.NamespacedName {
	return types.NamespacedName{Namespace: e.Namespace, Name: e.Name}
}

func (e *ServiceEntry) object() string { return Object("ServiceEntry", e.Namespace, e.Name) }

// serviceEntrySpec mirrors the fields read from spec.
type serviceEntrySpec struct {
	Hosts     []string `json:"hosts"`
	Addresses []string `json:"addresses"`
	Ports     []struct {
		Number   int64  `json:"number"`
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
	} `json:"ports"`
	Resolution string `json:"resolution"`
	Location   string `json:"location"`
}

// ServiceEntryOf reads a ServiceEntry from an unstructured object (as the dynamic client
// returns it). Errors name the field: a kind or group that is not ServiceEntry's, an address
// that is neither an IP nor a CIDR, a port number outside 1-65535, an unknown resolution or
// location.
func ServiceEntryOf(u *unstructured.Unstructured) (ServiceEntry, error) {
	e := ServiceEntry{Namespace: u.GetNamespace(), Name: u.GetName()}
	gvk := u.GroupVersionKind()
	if gvk.Kind != "ServiceEntry" || gvk.Group != IstioNetworkingGroup {
		return e, fmt.Errorf("%s %s/%s is not a %s ServiceEntry", orKind(gvk.Kind), e.Namespace, e.Name, IstioNetworkingGroup)
	}
	where := fmt.Sprintf("ServiceEntry %s/%s", e.Namespace, e.Name)
	raw, ok := u.Object["spec"]
	if !ok || raw == nil {
		return e, fmt.Errorf("%s has no spec", where)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return e, fmt.Errorf("%s: spec: %w", where, err)
	}
	var spec serviceEntrySpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return e, fmt.Errorf("%s: spec: %w", where, err)
	}
	e.Hosts = spec.Hosts
	for i, a := range spec.Addresses {
		p, err := redirect.ParsePrefix(strings.TrimSpace(a))
		if ip, ipErr := netip.ParseAddr(strings.TrimSpace(a)); ipErr == nil {
			p, err = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()), nil
		}
		if err != nil {
			return e, fmt.Errorf("%s: spec.addresses[%d] %q is not an IP address or CIDR", where, i, a)
		}
		e.Addresses = append(e.Addresses, p)
	}
	for i, p := range spec.Ports {
		if p.Number < 1 || p.Number > 65535 {
			return e, fmt.Errorf("%s: spec.ports[%d].number %d is not a port (1-65535)", where, i, p.Number)
		}
		proto := IstioAuto
		if p.Protocol != "" {
			var known bool
			if proto, known = parseIstioProtocol(p.Protocol); !known {
				// Istio accepts the entry and detects the protocol from the traffic.
				proto = IstioAuto
			}
		}
		e.Ports = append(e.Ports, ServiceEntryPort{Number: int32(p.Number), Name: p.Name, Protocol: proto})
	}
	switch e.Resolution = spec.Resolution; e.Resolution {
	case "":
		e.Resolution = "NONE"
	case "NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN":
	default:
		return e, fmt.Errorf("%s: spec.resolution %q is not NONE, STATIC, DNS or DNS_ROUND_ROBIN", where, spec.Resolution)
	}
	switch e.Location = spec.Location; e.Location {
	case "":
		e.Location = "MESH_EXTERNAL"
	case "MESH_EXTERNAL", "MESH_INTERNAL":
	default:
		return e, fmt.Errorf("%s: spec.location %q is not MESH_EXTERNAL or MESH_INTERNAL", where, spec.Location)
	}
	return e, nil
}

func orKind(k string) string {
	if k == "" {
		return "object without kind"
	}
	return k
}

// ParseServiceEntry reads one ServiceEntry from YAML or JSON.
func ParseServiceEntry(data []byte) (ServiceEntry, error) {
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return ServiceEntry{}, fmt.Errorf("not a YAML or JSON object: %w", err)
	}
	if obj == nil {
		return ServiceEntry{}, errors.New("empty document")
	}
	return ServiceEntryOf(&unstructured.Unstructured{Object: obj})
}
