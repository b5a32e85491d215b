package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
)

// objectSet is what offline mode reads from --objects files: the kinds the analyses look at.
type objectSet struct {
	Namespaces      []corev1.Namespace
	Pods            []corev1.Pod
	Services        []corev1.Service
	ServiceAccounts []types.NamespacedName
	Egresses        []policyv1alpha1.Egress
	IngressBackends []policyv1alpha1.IngressBackend
	MeshConfigs     []configv1alpha2.MeshConfig
	// MeshConfigFiles names the file each of MeshConfigs was read from.
	MeshConfigFiles []string
	// Istio's objects: ServiceEntries, EndpointSlices (headless Services' addresses) and
	// ConfigMaps (the istio mesh configuration).
	ServiceEntries []analysis.ServiceEntry
	EndpointSlices []discoveryv1.EndpointSlice
	ConfigMaps     []corev1.ConfigMap
	// file is the file being read.
	file string
}

// readObjects reads YAML (several documents) or JSON files, including v1 Lists. Unknown kinds
// are an error naming the file and document, never silently dropped.
func readObjects(streams genericiooptions.IOStreams, files []string) (*objectSet, error) {
	set := &objectSet{}
	for _, file := range files {
		data, name, err := readInput(streams, file)
		if err != nil {
			return nil, usageError("--objects: %v", err)
		}
		set.file = name
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for doc := 1; ; doc++ {
			raw, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, usageError("--objects %s: document %d: %v", name, doc, err)
			}
			if len(bytes.TrimSpace(raw)) == 0 {
				continue
			}
			if err := set.add(raw); err != nil {
				return nil, usageError("--objects %s: document %d: %v", name, doc, err)
			}
		}
	}
	return set, nil
}

func (s *objectSet) add(raw []byte) error {
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := yaml.Unmarshal(raw, &head); err != nil {
		return err
	}
	if head.Kind == "" {
		return nil // an empty document or a comment
	}
	into := func(v any) error { return yaml.Unmarshal(raw, v) }
	switch head.Kind {
	case "List", "NamespaceList", "PodList", "ServiceList", "ServiceAccountList", "EgressList", "IngressBackendList", "MeshConfigList",
		"ServiceEntryList", "EndpointSliceList", "ConfigMapList":
		for _, item := range head.Items {
			if err := s.add(item); err != nil {
				return err
			}
		}
		return nil
	case "Namespace":
		var o corev1.Namespace
		err := into(&o)
		s.Namespaces = append(s.Namespaces, o)
		return err
	case "Pod":
		var o corev1.Pod
		err := into(&o)
		s.Pods = append(s.Pods, o)
		return err
	case "Service":
		var o corev1.Service
		err := into(&o)
		s.Services = append(s.Services, o)
		return err
	case "ServiceAccount":
		var o corev1.ServiceAccount
		err := into(&o)
		s.ServiceAccounts = append(s.ServiceAccounts, types.NamespacedName{Namespace: o.Namespace, Name: o.Name})
		return err
	case "Egress":
		var o policyv1alpha1.Egress
		err := into(&o)
		s.Egresses = append(s.Egresses, o)
		return err
	case "IngressBackend":
		var o policyv1alpha1.IngressBackend
		err := into(&o)
		s.IngressBackends = append(s.IngressBackends, o)
		return err
	case "MeshConfig":
		var o configv1alpha2.MeshConfig
		err := into(&o)
		s.MeshConfigs = append(s.MeshConfigs, o)
		s.MeshConfigFiles = append(s.MeshConfigFiles, s.file)
		return err
	case "ServiceEntry":
		e, err := analysis.ParseServiceEntry(raw)
		s.ServiceEntries = append(s.ServiceEntries, e)
		return err
	case "EndpointSlice":
		var o discoveryv1.EndpointSlice
		err := into(&o)
		s.EndpointSlices = append(s.EndpointSlices, o)
		return err
	case "ConfigMap":
		var o corev1.ConfigMap
		err := into(&o)
		s.ConfigMaps = append(s.ConfigMaps, o)
		return err
	}
	return fmt.Errorf("kind %q (apiVersion %q) is not one of Namespace, Pod, Service, ServiceAccount, Egress, IngressBackend, MeshConfig, ServiceEntry, EndpointSlice, ConfigMap or a List of them", head.Kind, head.APIVersion)
}
