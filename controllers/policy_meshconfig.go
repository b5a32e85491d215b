package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// +kubebuilder:rbac:groups="",resources=services;namespaces,verbs=get;list;watch

// MeshConfigFindings gathers the mesh Services from the cache and returns the findings about
// mc's traffic settings for status.findings: exclusions over the Service or Pod CIDR or over
// mesh Services' ClusterIPs, 0.0.0.0/0, inclusion lists that miss mesh Services, excluded ports
// that mesh Services use. cluster may be empty when the CIDRs are unknown.
func MeshConfigFindings(ctx context.Context, c client.Reader, mc *configv1alpha2.MeshConfig, meshName string, cluster redirect.ClusterRanges) ([]conditions.Finding, error) {
	monitored, err := monitoredNamespaces(ctx, c, meshName)
	if err != nil {
		return nil, err
	}
	var services []corev1.Service
	for ns := range monitored {
		list := &corev1.ServiceList{}
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing Services of namespace %s: %w", ns, err)
		}
		services = append(services, list.Items...)
	}
	return analysis.ToAPI(analysis.AnalyzeMeshConfig(analysis.MeshConfigInput{
		MeshConfig: mc, Cluster: cluster, Services: services, Monitored: monitored})), nil
}
