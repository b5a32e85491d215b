package cli

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/diagnose"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func newExplainCommand(streams genericiooptions.IOStreams) *cobra.Command {
	return newGroup("explain", "Explain where a meshed pod's traffic goes", exitUsage, newExplainPodCommand(streams))
}

func newExplainPodCommand(streams genericiooptions.IOStreams) *cobra.Command {
	cf := genericclioptions.NewConfigFlags(true)
	var (
		mesh    meshFlags
		offline offlineFlags
		objects []string
		to      string
		uid     uint32
		inbound bool
		port    uint16
		from    string
		out     = string(outputTable)
	)
	cmd := &cobra.Command{
		Use:   "pod NAME -n NAMESPACE (--to IP:PORT [--uid N] | --inbound --port N [--from IP])",
		Short: "Follow one connection of a pod: bypass or sidecar, then which policy or Service takes it",
		Long: `Follow one outbound TCP connection of a pod. First the rules the pod actually runs (its parsed
init container, or --rules-file): does the connection leave directly, and because of which rule
and which setting? Then, when it reaches the sidecar: does a mesh Service's listener take it
(and is that a port collision that black-holes an external destination), does an Egress policy
allow it, or is it denied?

With --inbound --port N, follow a connection arriving at the pod's port N instead: does it reach
the sidecar's inbound listener (15003) or go straight to the application, because of which rule
and which setting (an inbound port exclusion in the MeshConfig or the pod's annotation)? And
which IngressBackend governs the port (a backend whose Service selects the pod and whose port is
the target port N)?

Exit code 1 means the connection is black-holed (taken by the listener of a mesh Service it was
not meant for, or denied), or, inbound, that it bypasses the sidecar on a port an IngressBackend
governs, so the policy is not enforced.`,
		Example: `  kubectl meshkeeper explain pod web-7d9f8c-x2x4q -n shop --to 10.0.0.6:7000
  kubectl meshkeeper explain pod web-7d9f8c-x2x4q -n shop --inbound --port 8080
  meshkeeper explain pod --pod pod.yaml --meshconfig meshconfig.yaml --objects mesh.yaml --to 1.1.1.1:443`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o := output(out)
			if err := o.validate(); err != nil {
				return err
			}
			var dst netip.AddrPort
			var src netip.Addr
			var err error
			switch {
			case inbound && to != "":
				return usageError("--to is for outbound connections; with --inbound give the pod's --port")
			case inbound && port == 0:
				return usageError("--inbound needs --port N, the pod's port the connection arrives at (1-65535)")
			case inbound && c.Flags().Changed("uid"):
				return usageError("--uid is for outbound connections: an arriving connection has no local socket owner")
			case inbound && from != "":
				if src, err = netip.ParseAddr(from); err != nil {
					return usageError("--from %q: expected an IP address", from)
				}
			case !inbound && (port != 0 || from != ""):
				return usageError("--port and --from describe an inbound connection: add --inbound")
			case !inbound && to == "":
				return usageError("required flag \"to\" not set: give --to IP:PORT, or --inbound --port N")
			case !inbound:
				if dst, err = netip.ParseAddrPort(to); err != nil {
					return usageError("--to %q: expected IP:PORT (IPv6 as [addr]:port)", to)
				}
			}
			in, err := gatherRoute(c.Context(), streams, cf, mesh, offline, objects, args)
			if err != nil {
				return err
			}
			var res diagnose.RouteResult
			if inbound {
				res, err = diagnose.RouteInbound(in, port, src)
			} else {
				res, err = diagnose.Route(in, dst, uid)
			}
			if err != nil {
				return &exitError{code: exitProblems, err: err}
			}
			if o == outputTable {
				writeRoute(streams.Out, res)
			} else if err := writeData(streams.Out, o, res); err != nil {
				return err
			}
			if res.Status == diagnose.StatusFail && inbound {
				return &exitError{code: exitProblems, err: fmt.Errorf("inbound connection to %s of %s bypasses the sidecar on a port an IngressBackend governs", res.Destination, res.Pod)}
			}
			if res.Status == diagnose.StatusFail {
				return &exitError{code: exitProblems, err: fmt.Errorf("connection from %s to %s is black-holed", res.Pod, res.Destination)}
			}
			return nil
		},
	}
	cf.AddFlags(cmd.Flags())
	mesh.add(cmd.Flags())
	offline.add(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&objects, "objects", nil, "offline: Services, Namespaces, Egress and IngressBackend policies (YAML/JSON, several documents or a List; repeatable)")
	f.StringVar(&to, "to", "", "destination IP:PORT of an outbound connection")
	f.Uint32Var(&uid, "uid", 0, "UID owning the sending socket (the proxy runs as 1500)")
	f.BoolVar(&inbound, "inbound", false, "follow a connection arriving at the pod's --port instead")
	f.Uint16Var(&port, "port", 0, "with --inbound: the pod's port the connection arrives at")
	f.StringVar(&from, "from", "", "with --inbound: the client's IP address (rules matching a source never match without it)")
	f.StringVarP(&out, "output", "o", out, "output format: table, json or yaml")
	return withUsageErrors(cmd)
}

func writeRoute(w io.Writer, r diagnose.RouteResult) {
	p := paletteFor(w)
	tw := newTable(w)
	fmt.Fprintf(tw, "Pod:\t%s\n", r.Pod)
	if r.Direction == redirect.DirectionInbound {
		fmt.Fprintf(tw, "Inbound to:\t%s (from %s)\n", r.Destination, orText(r.Source, "any source"))
	} else {
		fmt.Fprintf(tw, "Destination:\t%s (UID %d)\n", r.Destination, r.UID)
	}
	fmt.Fprintf(tw, "Rules from:\t%s\n", r.RulesSource)
	fmt.Fprintf(tw, "Path:\t%s\n", r.Path)
	if r.Rule != "" {
		fmt.Fprintf(tw, "Deciding rule:\t%s\n", r.Rule)
	}
	if r.Setting != "" {
		fmt.Fprintf(tw, "Setting:\t%s\n", r.Setting)
	}
	if r.Outcome != "" {
		fmt.Fprintf(tw, "Outcome:\t%s\n", r.Outcome)
	}
	if r.Listener != "" {
		fmt.Fprintf(tw, "Listener:\t%s\n", r.Listener)
	}
	for _, e := range r.Egress {
		fmt.Fprintf(tw, "Egress:\t%s\n", e)
	}
	for _, c := range r.Collisions {
		fmt.Fprintf(tw, "Also on this port:\t%s\n", c)
	}
	for _, b := range r.IngressBackends {
		fmt.Fprintf(tw, "IngressBackend:\t%s\n", b)
	}
	fmt.Fprintf(tw, "Status:\t%s\n", strings.TrimRight(p.paint(string(r.Status), 0), " "))
	_ = tw.Flush()
	fmt.Fprintf(w, "\n%s\n", r.Summary)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(r.Trace) > 0 {
		fmt.Fprintln(w, "\nRule walk:")
		for _, s := range r.Trace {
			mark := "   "
			if s.Matched {
				mark = "-> "
			}
			if s.Index == 0 {
				fmt.Fprintf(w, "  %s%s: %s\n", mark, s.Chain, s.Rule)
				continue
			}
			fmt.Fprintf(w, "  %s%s #%d: %s\n", mark, s.Chain, s.Index, s.Rule)
		}
	}
}

// gatherRoute collects the pod, its MeshConfig and the mesh's Services, Namespaces and Egress
// policies, from files (--pod) or from the cluster.
func gatherRoute(ctx context.Context, streams genericiooptions.IOStreams, cf *genericclioptions.ConfigFlags, mesh meshFlags, off offlineFlags, objectFiles []string, args []string) (diagnose.RouteInput, error) {
	in := diagnose.RouteInput{
		MeshConfigRef: types.NamespacedName{Namespace: mesh.meshNamespace, Name: mesh.meshConfigName},
		Selection:     injection.SelectOptions{MeshName: mesh.meshName, OperatorNamespace: mesh.operatorNamespace},
	}
	if off.rulesFile != "" {
		p, _, perr, err := readRules(streams, off.rulesFile)
		if err != nil {
			return in, err
		}
		if perr != nil {
			return in, &exitError{code: exitUsage, err: fmt.Errorf("--rules-file: %v", perr)}
		}
		in.Rules, in.RulesSource = p, off.rulesFile
	}
	if off.meshConfig != "" {
		mc, err := readMeshConfig(streams, off.meshConfig)
		if err != nil {
			return in, usageError("--meshconfig: %v", err)
		}
		in.MeshConfig = mc
		in.MeshConfigRef = types.NamespacedName{Namespace: mc.Namespace, Name: mc.Name}
	}
	if off.pod != "" || len(objectFiles) > 0 {
		if off.pod == "" {
			return in, usageError("--objects is for offline mode: pass --pod FILE too")
		}
		if len(args) > 0 {
			return in, usageError("give either a pod NAME or --pod FILE, not both")
		}
		pod, err := readPod(streams, off.pod)
		if err != nil {
			return in, usageError("--pod: %v", err)
		}
		in.Pod = pod
		set, err := readObjects(streams, objectFiles)
		if err != nil {
			return in, err
		}
		in.Namespaces, in.Services, in.Egresses, in.IngressBackends = set.Namespaces, set.Services, set.Egresses, set.IngressBackends
		in.ServiceEntries, in.EndpointSlices = set.ServiceEntries, set.EndpointSlices
		for i := range set.ConfigMaps {
			if set.ConfigMaps[i].Name == analysis.IstioMeshConfigMap {
				if in.IstioMesh, err = analysis.IstioMeshOf(&set.ConfigMaps[i]); err != nil {
					return in, usageError("--objects: %v", err)
				}
			}
		}
		if len(objectFiles) == 0 {
			in.PolicyUnknown = "offline mode: pass --objects FILE with the mesh's Namespaces, Services, Egress and IngressBackend policies"
		}
		return in, nil
	}
	if len(args) == 0 {
		return in, usageError("missing pod NAME (or --pod FILE for offline mode)")
	}
	k, err := connect(cf)
	if err != nil {
		return in, err
	}
	pod := &corev1.Pod{}
	if err := k.client.Get(ctx, types.NamespacedName{Namespace: k.namespace, Name: args[0]}, pod); err != nil {
		return in, apiError(err, k.host, "get", "pods", k.namespace)
	}
	in.Pod = pod
	if in.MeshConfig == nil {
		mc := &configv1alpha2.MeshConfig{}
		switch err := k.client.Get(ctx, in.MeshConfigRef, mc); {
		case err == nil:
			in.MeshConfig = mc
		case apierrors.IsNotFound(err) || isNoMatch(err) || apierrors.IsForbidden(err):
			// Judged on the pod's annotations alone; the result says so.
		default:
			return in, apiError(err, k.host, "get", "meshconfigs.config.openservicemesh.io", in.MeshConfigRef.Namespace)
		}
	}
	var nss corev1.NamespaceList
	var svcs corev1.ServiceList
	var egs policyv1alpha1.EgressList
	if err := k.client.List(ctx, &nss); err != nil {
		in.PolicyUnknown = diagnose.Unknown(soft(err, "list", "namespaces"))
		return in, nil
	}
	if err := k.client.List(ctx, &svcs); err != nil {
		in.PolicyUnknown = diagnose.Unknown(soft(err, "list", "services"))
		return in, nil
	}
	if err := k.client.List(ctx, &egs); err != nil && !isNoMatch(err) {
		in.PolicyUnknown = diagnose.Unknown(soft(err, "list", "egresses.policy.openservicemesh.io"))
	}
	var ibs policyv1alpha1.IngressBackendList
	if err := k.client.List(ctx, &ibs, client.InNamespace(pod.Namespace)); err != nil && !isNoMatch(err) && in.PolicyUnknown == "" {
		in.PolicyUnknown = diagnose.Unknown(soft(err, "list", "ingressbackends.policy.openservicemesh.io -n "+pod.Namespace))
	}
	in.Namespaces, in.Services, in.Egresses, in.IngressBackends = nss.Items, svcs.Items, egs.Items, ibs.Items
	if istio.Injected(pod) {
		gatherIstioRoute(ctx, k, mesh.istioNamespace, &in)
	}
	return in, nil
}

// gatherIstioRoute adds what Istio's sidecar model needs: ServiceEntries, EndpointSlices and the
// mesh configuration. What cannot be read is said in a note, never guessed.
func gatherIstioRoute(ctx context.Context, k *kube, namespace string, in *diagnose.RouteInput) {
	o := readIstioObjects(ctx, k, namespace)
	in.ServiceEntries = o.entries
	var err error
	if in.IstioMesh, err = analysis.IstioMeshOf(o.meshConfig); err != nil && in.PolicyUnknown == "" {
		in.PolicyUnknown = diagnose.Unknown(err.Error())
	}
	var slices discoveryv1.EndpointSliceList
	if err := k.client.List(ctx, &slices); err != nil && in.PolicyUnknown == "" {
		in.PolicyUnknown = diagnose.Unknown(soft(err, "list", "endpointslices.discovery.k8s.io"))
	}
	in.EndpointSlices = slices.Items
	if len(o.notes) > 0 && in.PolicyUnknown == "" {
		in.PolicyUnknown = diagnose.Unknown(strings.Join(o.notes, "; "))
	}
}

func orText(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
