package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/redirect/manifest"
)

func newRulesCommand(streams genericiooptions.IOStreams) *cobra.Command {
	cmd := newGroup("rules", "Parse, explain and render pod traffic-redirection rules", 1,
		newRulesParseCommand(streams), newRulesExplainCommand(streams), newRulesRenderCommand(streams))
	// The rules commands keep their own codes (2 means a difference), so their usage errors
	// stay plain errors.
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	return cmd
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("unsupported output %q: use text or json", o)
	}
	return nil
}

// parseFile reads and parses FILE, turning a parse error into FILE:LINE:COL: message.
func parseFile(streams genericiooptions.IOStreams, file string) (*redirect.Parsed, error) {
	data, name, err := readInput(streams, file)
	if err != nil {
		return nil, err
	}
	p, err := manifest.Parse(data)
	if err != nil {
		var pe *redirect.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: %s", name, pe.Line, pe.Column, pe.Msg)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// parsedJSON is the stable JSON shape of `rules parse`. Lists are sorted and never null.
type parsedJSON struct {
	Format                     redirect.Format `json:"format"`
	Container                  string          `json:"container,omitempty"`
	OutboundIPRangeExclusions  []string        `json:"outboundIPRangeExclusions"`
	OutboundIPRangeInclusions  []string        `json:"outboundIPRangeInclusions"`
	OutboundPortExclusions     []uint16        `json:"outboundPortExclusions"`
	InboundPortExclusions      []uint16        `json:"inboundPortExclusions"`
	NetworkInterfaceExclusions []string        `json:"networkInterfaceExclusions"`
	ProxyUID                   *int64          `json:"proxyUID"`
	PodIPEnv                   string          `json:"podIPEnv,omitempty"`
	// What only Istio expresses; absent for the other formats.
	OutboundPortInclusions []uint16  `json:"outboundPortInclusions,omitempty"`
	InboundPortInclusions  []uint16  `json:"inboundPortInclusions,omitempty"`
	RerouteInterfaces      []string  `json:"rerouteInterfaces,omitempty"`
	ProxyGID               int64     `json:"proxyGID,omitempty"`
	OutboundCapture        string    `json:"outboundCapture,omitempty"`
	InboundCapture         string    `json:"inboundCapture,omitempty"`
	InboundInterception    string    `json:"inboundInterception,omitempty"`
	Rules                  rulesJSON `json:"rules"`
}

type rulesJSON struct {
	IPv4 []string `json:"ipv4"`
	IPv6 []string `json:"ipv6"`
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func ruleLines(rs *redirect.Ruleset) []string {
	out := []string{}
	if rs == nil {
		return out
	}
	for _, c := range rs.Chains {
		for i := range c.Rules {
			out = append(out, c.Rules[i].String())
		}
	}
	return out
}

func toParsedJSON(p *redirect.Parsed) parsedJSON {
	ex := p.Exclusions()
	j := parsedJSON{
		Format:                     p.Format,
		Container:                  p.Container,
		OutboundIPRangeExclusions:  prefixStrings(ex.OutboundIPRanges),
		OutboundIPRangeInclusions:  prefixStrings(ex.OutboundIPRangeInclusions),
		OutboundPortExclusions:     orEmpty(ex.OutboundPorts),
		InboundPortExclusions:      orEmpty(ex.InboundPorts),
		NetworkInterfaceExclusions: orEmpty(ex.Interfaces),
		PodIPEnv:                   p.PodIPEnv,
		Rules:                      rulesJSON{IPv4: ruleLines(p.IPv4), IPv6: ruleLines(p.IPv6)},
	}
	if ex.ProxyUID != redirect.NoProxyUID {
		uid := ex.ProxyUID
		j.ProxyUID = &uid
	}
	if p.Declared != nil {
		j.OutboundPortInclusions, j.InboundPortInclusions, j.RerouteInterfaces = ex.OutboundPortInclusions, ex.InboundPortInclusions, ex.RerouteInterfaces
		j.ProxyGID = ex.ProxyGID
		j.OutboundCapture, j.InboundCapture = ex.OutboundCapture.String(), ex.InboundCapture.String()
		j.InboundInterception = ex.InboundInterception.String()
	}
	return j
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func listText[T any](s []T) string {
	if len(s) == 0 {
		return "(none)"
	}
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ", ")
}

func writeParsedText(w io.Writer, j parsedJSON) {
	fmt.Fprintf(w, "Format:                        %s\n", j.Format)
	if j.Container != "" {
		fmt.Fprintf(w, "Container:                     %s\n", j.Container)
	}
	fmt.Fprintf(w, "Outbound IP range exclusions:  %s\n", listText(j.OutboundIPRangeExclusions))
	fmt.Fprintf(w, "Outbound IP range inclusions:  %s\n", listText(j.OutboundIPRangeInclusions))
	fmt.Fprintf(w, "Outbound port exclusions:      %s\n", listText(j.OutboundPortExclusions))
	fmt.Fprintf(w, "Inbound port exclusions:       %s\n", listText(j.InboundPortExclusions))
	fmt.Fprintf(w, "Interface exclusions:          %s\n", listText(j.NetworkInterfaceExclusions))
	uid := "(none)"
	if j.ProxyUID != nil {
		uid = strconv.FormatInt(*j.ProxyUID, 10)
	}
	fmt.Fprintf(w, "Proxy UID:                     %s\n", uid)
	if j.InboundInterception != "" {
		fmt.Fprintf(w, "Proxy GID:                     %s\n", redirect.GIDText(j.ProxyGID))
		fmt.Fprintf(w, "Outbound capture:              %s (only ports: %s)\n", j.OutboundCapture, listText(j.OutboundPortInclusions))
		fmt.Fprintf(w, "Inbound capture:               %s (only ports: %s), by %s\n", j.InboundCapture, listText(j.InboundPortInclusions), j.InboundInterception)
		fmt.Fprintf(w, "Rerouted interfaces:           %s\n", listText(j.RerouteInterfaces))
	}
	if j.PodIPEnv != "" {
		fmt.Fprintf(w, "Pod IP from env:               %s\n", j.PodIPEnv)
	}
	for _, fam := range []struct {
		name  string
		lines []string
	}{{"IPv4", j.Rules.IPv4}, {"IPv6", j.Rules.IPv6}} {
		if len(fam.lines) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s nat rules (evaluation order):\n", fam.name)
		for _, l := range fam.lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

func newRulesParseCommand(streams genericiooptions.IOStreams) *cobra.Command {
	output := "text"
	cmd := &cobra.Command{
		Use:   "parse FILE",
		Short: "Read redirection rules and print the exclusions they implement",
		Long: `Read the redirection rules of a pod and print the exclusions they implement.

FILE (or - for standard input) may be a pod, workload or list as YAML or JSON, kubectl
describe pod output, a single container, the init container's args, an OSM init script (v0.x iptables chains or v1.x
iptables-restore here-documents, with or without /bin/sh -c), iptables-save output or
iptables -t nat -S output (OSM's chains, or Istio's ISTIO_* and older istio_* chains).

Istio pods are read too: a pod, workload or istioctl kube-inject output carrying istio-init
(its istio-iptables arguments, in the istio-iptables subcommand form or the older bare-flag
form) or istio-validation (istio-cni: the pod's traffic.sidecar.istio.io annotations), or the
istio-iptables arguments pasted as one command line. Their rules are rendered the way
istio-iptables writes them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			p, err := parseFile(streams, args[0])
			if err != nil {
				return err
			}
			j := toParsedJSON(p)
			if output == "json" {
				return writeJSON(streams.Out, j)
			}
			writeParsedText(streams.Out, j)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", output, "output format: text or json")
	return cmd
}

type explainJSON struct {
	redirect.Verdict
	Family      string             `json:"family"`
	Direction   redirect.Direction `json:"direction"`
	Destination string             `json:"destination"`
}

func newRulesExplainCommand(streams genericiooptions.IOStreams) *cobra.Command {
	var (
		output, to, outIface, inIface string
		uid                           uint32
		inbound                       bool
	)
	output = "text"
	cmd := &cobra.Command{
		Use:   "explain FILE --to IP:PORT",
		Short: "Walk the nat chains for one connection and say whether it reaches the proxy",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			dst, err := netip.ParseAddrPort(to)
			if err != nil {
				return fmt.Errorf("--to %q: expected IP:PORT (IPv6 as [addr]:port)", to)
			}
			p, err := parseFile(streams, args[0])
			if err != nil {
				return err
			}
			rs := p.IPv4
			if dst.Addr().Is6() && !dst.Addr().Is4In6() {
				rs = p.IPv6
			}
			dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
			if rs == nil {
				fam := "IPv4"
				if dst.Addr().Is6() {
					fam = "IPv6"
				}
				return fmt.Errorf("%s has no %s rules", args[0], fam)
			}
			pkt := redirect.Packet{Direction: redirect.DirectionOutbound, UID: uid, Dst: dst, OutInterface: outIface, InInterface: inIface}
			if inbound {
				pkt.Direction = redirect.DirectionInbound
			}
			v := redirect.Explain(rs, pkt)
			if output == "json" {
				return writeJSON(streams.Out, explainJSON{Verdict: v, Family: rs.Family.String(), Direction: pkt.Direction, Destination: dst.String()})
			}
			fmt.Fprintf(streams.Out, "%s %s connection to %s: %s\n", rs.Family, pkt.Direction, dst, v)
			for _, s := range v.Trace {
				mark := "   "
				if s.Matched {
					mark = "-> "
				}
				if s.Index == 0 {
					fmt.Fprintf(streams.Out, "%s%s: %s\n", mark, s.Chain, s.Rule)
					continue
				}
				fmt.Fprintf(streams.Out, "%s%s #%d: %s\n", mark, s.Chain, s.Index, s.Rule)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "destination IP:PORT of the connection (required)")
	f.Uint32Var(&uid, "uid", 0, "UID owning the sending socket (outbound; the proxy runs as 1500)")
	f.BoolVar(&inbound, "inbound", false, "explain a connection arriving at the pod instead of leaving it")
	f.StringVar(&outIface, "out-interface", "", "outgoing interface (default lo for loopback destinations, else eth0)")
	f.StringVar(&inIface, "in-interface", "", "incoming interface for --inbound (default eth0)")
	f.StringVarP(&output, "output", "o", output, "output format: text or json")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func newRulesRenderCommand(streams genericiooptions.IOStreams) *cobra.Command {
	var (
		meshConfigFile, podFile, image string
		serviceCIDRs, podCIDRs         []string
	)
	cmd := &cobra.Command{
		Use:   "render --meshconfig FILE [--pod FILE]",
		Short: "Print the init container meshkeeper would inject for a pod",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			mc, err := readMeshConfig(streams, meshConfigFile)
			if err != nil {
				return err
			}
			pod := &corev1.Pod{}
			if podFile != "" {
				if pod, err = readPod(streams, podFile); err != nil {
					return err
				}
			}
			cluster, err := redirect.ParseClusterRanges(serviceCIDRs, podCIDRs)
			if err != nil {
				return err
			}
			cfg, errs := redirect.Effective(injection.MeshSettings(&mc.Spec), pod.Annotations)
			if len(errs) > 0 {
				var b strings.Builder
				b.WriteString("invalid redirection settings:")
				for _, e := range errs {
					b.WriteString("\n  ")
					b.WriteString(e.Error())
				}
				return errors.New(b.String())
			}
			for _, w := range redirect.Warnings(cfg, cluster) {
				fmt.Fprintf(streams.ErrOut, "warning: %s: %s %s: %s\n", w.Code, w.Field, w.Value, w.Message)
			}
			pod.Spec.InitContainers = removeContainer(pod.Spec.InitContainers, redirect.InitContainerName)
			out, err := injection.Inject(pod, &mc.Spec, injection.Options{DefaultInitImage: image, DefaultEnvoyImage: "envoy"})
			if err != nil {
				return err
			}
			for _, c := range out.Spec.InitContainers {
				if c.Name == redirect.InitContainerName {
					data, err := yaml.Marshal(c)
					if err != nil {
						return err
					}
					_, err = streams.Out.Write(data)
					return err
				}
			}
			return fmt.Errorf("the pod already carries a sidecar; nothing would be injected")
		},
	}
	f := cmd.Flags()
	f.StringVar(&meshConfigFile, "meshconfig", "", "MeshConfig YAML or JSON (config.openservicemesh.io v1alpha1 or v1alpha2; required)")
	f.StringVar(&podFile, "pod", "", "pod YAML or JSON whose annotations extend the exclusions")
	f.StringVar(&image, "image", "meshkeeper-init:latest", "init image to inject, as the operator's --init-image (the MeshConfig's initContainerImage is ignored, as by the operator)")
	f.StringSliceVar(&serviceCIDRs, "service-cidr", nil, "cluster Service CIDR, for warnings (repeatable)")
	f.StringSliceVar(&podCIDRs, "pod-cidr", nil, "cluster Pod CIDR, for warnings (repeatable)")
	_ = cmd.MarkFlagRequired("meshconfig")
	return cmd
}

func removeContainer(cs []corev1.Container, name string) []corev1.Container {
	out := cs[:0:0]
	for _, c := range cs {
		if c.Name != name {
			out = append(out, c)
		}
	}
	return out
}

func readMeshConfig(streams genericiooptions.IOStreams, file string) (*configv1alpha2.MeshConfig, error) {
	data, name, err := readInput(streams, file)
	if err != nil {
		return nil, err
	}
	var mc configv1alpha2.MeshConfig
	if err := yaml.Unmarshal(data, &mc); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if mc.Kind != "MeshConfig" || (mc.APIVersion != "config.openservicemesh.io/v1alpha2" && mc.APIVersion != "config.openservicemesh.io/v1alpha1") {
		return nil, fmt.Errorf("%s: expected kind MeshConfig in config.openservicemesh.io/v1alpha1 or v1alpha2, got %q %q", name, mc.APIVersion, mc.Kind)
	}
	return &mc, nil
}

func readPod(streams genericiooptions.IOStreams, file string) (*corev1.Pod, error) {
	data, name, err := readInput(streams, file)
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if pod.Kind != "Pod" {
		return nil, fmt.Errorf("%s: expected kind Pod, got %q", name, pod.Kind)
	}
	return &pod, nil
}
