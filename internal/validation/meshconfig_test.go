package validation

import (
	"fmt"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func meshConfig(mut func(*configv1alpha2.MeshConfigSpec)) *configv1alpha2.MeshConfig {
	mc := &configv1alpha2.MeshConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "osm-mesh-config", Namespace: "osm-system"},
		Spec: configv1alpha2.MeshConfigSpec{
			Sidecar: configv1alpha2.SidecarSpec{
				LogLevel:              "error",
				TLSMinProtocolVersion: configv1alpha2.TLSVersion12,
				TLSMaxProtocolVersion: configv1alpha2.TLSVersion13,
				ConfigResyncInterval:  "0s",
			},
			Traffic: configv1alpha2.TrafficSpec{
				OutboundIPRangeExclusionList: []string{"169.254.169.254/32"},
				OutboundPortExclusionList:    []int32{5432},
			},
			Certificate: configv1alpha2.CertificateSpec{ServiceCertValidityDuration: "24h", CertKeyBitSize: 2048},
		},
	}
	if mut != nil {
		mut(&mc.Spec)
	}
	return mc
}

func TestMeshConfig(t *testing.T) {
	cluster := redirect.ClusterRanges{
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
		PodCIDRs:     []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
	}
	ports := func(n int) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(1000 + i)
		}
		return out
	}
	tests := []struct {
		name string
		mut  func(*configv1alpha2.MeshConfigSpec)
		want expect
	}{
		{"defaults", nil, expect{}},
		{"empty spec", func(s *configv1alpha2.MeshConfigSpec) { *s = configv1alpha2.MeshConfigSpec{} }, expect{}},
		{"IPv6 exclusion", func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.OutboundIPRangeExclusionList = []string{"fd00:ec2::254/128"}
		}, expect{}},
		{"OSM's init image is not injected", func(s *configv1alpha2.MeshConfigSpec) {
			s.Sidecar.InitContainerImage = "openservicemesh/init:v1.2.4"
		}, expect{warns: []string{"spec.sidecar.initContainerImage", "--init-image"}}},
		{"more than 15 ports render in chunks", func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundPortExclusionList = ports(40) }, expect{}},

		{"out-of-range octet", func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.OutboundIPRangeExclusionList = []string{"999.1.1.1/32"}
		},
			expect{errs: []string{"spec.traffic.outboundIPRangeExclusionList[0]", "999.1.1.1/32"}}},
		{"shell in a CIDR", func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.OutboundIPRangeInclusionList = []string{"$(curl evil)10.0.0.0/8"}
		}, expect{errs: []string{"spec.traffic.outboundIPRangeInclusionList[0]"}}},
		{"shell in an interface", func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.NetworkInterfaceExclusionList = []string{"eth0;reboot"}
		},
			expect{errs: []string{"spec.traffic.networkInterfaceExclusionList[0]", "eth0;reboot"}}},
		{"port 0", func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.InboundPortExclusionList = []int32{0} },
			expect{errs: []string{"spec.traffic.inboundPortExclusionList[0]"}}},
		{"too many ports", func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.OutboundPortExclusionList = ports(redirect.MaxPorts + 1)
		},
			expect{errs: []string{"spec.traffic.outboundPortExclusionList", "Too many"}}},
		{"unknown log level", func(s *configv1alpha2.MeshConfigSpec) { s.Sidecar.LogLevel = "verbose" },
			expect{errs: []string{"spec.sidecar.logLevel", `"verbose"`}}},
		{"unknown TLS version", func(s *configv1alpha2.MeshConfigSpec) { s.Sidecar.TLSMaxProtocolVersion = "TLSv1_4" },
			expect{errs: []string{"spec.sidecar.tlsMaxProtocolVersion", `"TLSv1_4"`}}},
		{"more ranges than the API allows", func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.OutboundIPRangeExclusionList = nil
			for i := range configv1alpha2.MaxIPRanges + 1 {
				s.Traffic.OutboundIPRangeExclusionList = append(s.Traffic.OutboundIPRangeExclusionList, fmt.Sprintf("192.0.%d.0/24", i))
			}
		}, expect{errs: []string{"spec.traffic.outboundIPRangeExclusionList", "Too many"}}},
		{"TLS range inverted", func(s *configv1alpha2.MeshConfigSpec) {
			s.Sidecar.TLSMinProtocolVersion, s.Sidecar.TLSMaxProtocolVersion = configv1alpha2.TLSVersion13, configv1alpha2.TLSVersion12
		}, expect{errs: []string{"spec.sidecar.tlsMinProtocolVersion", "TLSv1_2"}}},
		{"TLS_AUTO is comparable to nothing", func(s *configv1alpha2.MeshConfigSpec) {
			s.Sidecar.TLSMinProtocolVersion = configv1alpha2.TLSVersionAuto
		}, expect{}},
		{"bad resync interval", func(s *configv1alpha2.MeshConfigSpec) { s.Sidecar.ConfigResyncInterval = "5 minutes" },
			expect{errs: []string{"spec.sidecar.configResyncInterval", "5 minutes"}}},
		{"ext authz without address", func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.InboundExternalAuthorization = configv1alpha2.ExternalAuthzSpec{Enable: true, Port: 9191}
		}, expect{errs: []string{"spec.traffic.inboundExternalAuthorization.address"}}},
		{"ext authz failing open warns", func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.InboundExternalAuthorization = configv1alpha2.ExternalAuthzSpec{Enable: true, Address: "authz.system", Port: 9191, Timeout: "1s", FailureModeAllow: true}
		}, expect{warns: []string{"failureModeAllow"}}},
		{"tracing without address", func(s *configv1alpha2.MeshConfigSpec) { s.Observability.Tracing.Enable = true },
			expect{errs: []string{"spec.observability.tracing.address"}}},
		{"zero cert validity", func(s *configv1alpha2.MeshConfigSpec) { s.Certificate.ServiceCertValidityDuration = "0s" },
			expect{errs: []string{"spec.certificate.serviceCertValidityDuration", "greater than zero"}}},
		{"short RSA key", func(s *configv1alpha2.MeshConfigSpec) { s.Certificate.CertKeyBitSize = 1024 },
			expect{errs: []string{"spec.certificate.certKeyBitSize"}}},
		{"ingress gateway without secret", func(s *configv1alpha2.MeshConfigSpec) {
			s.Certificate.IngressGateway = &configv1alpha2.IngressGatewayCertSpec{SubjectAltNames: []string{"gw.osm-system.cluster.local"}, ValidityDuration: "24h"}
		}, expect{errs: []string{"spec.certificate.ingressGateway.secret.name"}}},

		{"exclusion of everything warns", func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundIPRangeExclusionList = []string{"0.0.0.0/0"} },
			expect{warns: []string{"spec.traffic.outboundIPRangeExclusionList", redirect.WarnCaptureDisabled}}},
		{"exclusion of ::/0 warns", func(s *configv1alpha2.MeshConfigSpec) { s.Traffic.OutboundIPRangeExclusionList = []string{"::/0"} },
			expect{warns: []string{redirect.WarnCaptureDisabled}}},
		{"exclusion covering the Service CIDR warns", func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.OutboundIPRangeExclusionList = []string{"10.0.0.0/8"}
		},
			expect{warns: []string{redirect.WarnExclusionOverlapsServiceCIDR, redirect.WarnExclusionOverlapsPodCIDR, "10.96.0.0/12"}}},
		{"inclusion list warns", func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.OutboundIPRangeInclusionList = []string{"10.96.0.0/12"}
		},
			expect{warns: []string{"spec.traffic.outboundIPRangeInclusionList", redirect.WarnInclusionListBypass}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc := meshConfig(tt.mut)
			tt.want.check(t, MeshConfig(mc, cluster))
		})
	}
}
