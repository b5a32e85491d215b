package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/diagnose"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// analyzeReport is the JSON/YAML shape of `analyze`.
type analyzeReport struct {
	Scope      string          `json:"scope"`
	Mode       string          `json:"mode"`
	MeshConfig string          `json:"meshConfig"`
	Summary    map[string]int  `json:"summary"`
	Findings   []reportFinding `json:"findings"`
	Notes      []string        `json:"notes,omitempty"`
}

// reportFinding is a finding with its ready-to-run fixes, when it has some.
type reportFinding struct {
	conditions.Finding `json:",inline"`
	Fixes              []string `json:"fixes,omitempty"`
}

func newAnalyzeCommand(streams genericiooptions.IOStreams) *cobra.Command {
	cf := genericclioptions.NewConfigFlags(true)
	var (
		mesh        meshFlags
		all         bool
		meshConfig  string
		pods, files []string
		svcCIDRs    []string
		podCIDRs    []string
		out         = string(outputTable)
		failOn      string
	)
	cmd := &cobra.Command{
		Use:   "analyze [-n NAMESPACE | -A]",
		Short: "Report every problem of the mesh with a stable code",
		Long: `Report every problem in a namespace (-n, default the kubeconfig's namespace) or in the whole
cluster (-A): pods whose sidecar is missing or not ready, failed or missing init containers,
rules that drifted from the MeshConfig, shadowed Egress policies, port collisions, IngressBackend
mistakes and dangerous MeshConfig exclusions. Every code is documented in docs/findings.md.

Offline, with --objects FILE (and --pod FILE, --meshconfig FILE), nothing is read from the
cluster and every object given is analysed.`,
		Example: `  kubectl meshkeeper analyze -A
  kubectl meshkeeper analyze -n shop -o json --fail-on warning
  meshkeeper analyze --meshconfig meshconfig.yaml --objects mesh.yaml`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o := output(out)
			if err := o.validate(); err != nil {
				return err
			}
			min, err := parseSeverity(failOn)
			if err != nil {
				return err
			}
			in, rep, err := gatherCluster(c.Context(), streams, cf, mesh, all, meshConfig, pods, files)
			if err != nil {
				return err
			}
			if len(svcCIDRs) > 0 || len(podCIDRs) > 0 {
				cr, err := redirect.ParseClusterRanges(svcCIDRs, podCIDRs)
				if err != nil {
					return usageError("--service-cidr/--pod-cidr: %v", err)
				}
				in.Cluster = cr
			}
			findings := diagnose.Analyze(in)
			rep.Summary = map[string]int{string(conditions.SeverityError): 0, string(conditions.SeverityWarning): 0, string(conditions.SeverityInfo): 0}
			rep.Findings = []reportFinding{}
			reached := 0
			for _, f := range findings {
				rep.Summary[string(f.Severity)]++
				rep.Findings = append(rep.Findings, reportFinding{Finding: conditions.Finding{Code: f.Code, Severity: f.Severity, Message: f.Message, Objects: f.Objects}, Fixes: f.Fixes})
				if diagnose.SeverityAtLeast(f.Severity, min) {
					reached++
				}
			}
			if o == outputTable {
				writeFindingsTable(streams.Out, rep)
			} else if err := writeData(streams.Out, o, rep); err != nil {
				return err
			}
			if reached > 0 {
				return &exitError{code: exitProblems, err: fmt.Errorf("%d findings at or above severity %s in %s", reached, min, rep.Scope)}
			}
			return nil
		},
	}
	cf.AddFlags(cmd.Flags())
	mesh.add(cmd.Flags())
	f := cmd.Flags()
	f.BoolVarP(&all, "all-namespaces", "A", false, "analyze every namespace")
	f.StringVar(&meshConfig, "meshconfig", "", "read the MeshConfig from this file instead of the cluster")
	f.StringArrayVar(&pods, "pod", nil, "offline: a pod YAML/JSON file to analyze (repeatable)")
	f.StringArrayVar(&files, "objects", nil, "offline: Namespaces, Pods, Services, ServiceAccounts, Egresses, IngressBackends (YAML/JSON, several documents or a List; repeatable)")
	f.StringSliceVar(&svcCIDRs, "service-cidr", nil, "the cluster's Service CIDRs, when ServiceCIDR objects cannot be read (and offline)")
	f.StringSliceVar(&podCIDRs, "pod-cidr", nil, "the cluster's Pod CIDRs, when nodes cannot be read (and offline)")
	f.StringVarP(&out, "output", "o", out, "output format: table, json or yaml")
	f.StringVar(&failOn, "fail-on", "error", "exit 1 when a finding reaches this severity: info, warning or error")
	return withUsageErrors(cmd)
}

func parseSeverity(v string) (conditions.Severity, error) {
	switch strings.ToLower(v) {
	case "info":
		return conditions.SeverityInfo, nil
	case "warning", "warn":
		return conditions.SeverityWarning, nil
	case "error", "":
		return conditions.SeverityError, nil
	}
	return "", usageError("--fail-on %q: use info, warning or error", v)
}

func writeFindingsTable(w io.Writer, rep analyzeReport) {
	p := paletteFor(w)
	fmt.Fprintf(w, "Analyzed %s (%s, MeshConfig %s)\n\n", rep.Scope, rep.Mode, rep.MeshConfig)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w)
	}
	if len(rep.Findings) == 0 {
		fmt.Fprintln(w, "No findings.")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "SEVERITY\tCODE\tOBJECT\tMESSAGE")
	for _, f := range rep.Findings {
		obj := ""
		if len(f.Objects) > 0 {
			obj = f.Objects[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.paint(string(f.Severity), 7), f.Code, obj, oneLine(f.Message))
	}
	_ = tw.Flush()
	for _, f := range rep.Findings {
		for i, fix := range f.Fixes {
			if i == 0 {
				fmt.Fprintf(w, "\nFixes for %s %s (any one of them):\n", f.Code, f.Objects[0])
			}
			fmt.Fprintf(w, "\n  %s\n", strings.ReplaceAll(fix, "\n", "\n  "))
		}
	}
	fmt.Fprintf(w, "\n%d errors, %d warnings, %d info\n", rep.Summary[string(conditions.SeverityError)], rep.Summary[string(conditions.SeverityWarning)], rep.Summary[string(conditions.SeverityInfo)])
}

// gatherCluster collects what Analyze looks at, from files or from the cluster.
func gatherCluster(ctx context.Context, streams genericiooptions.IOStreams, cf *genericclioptions.ConfigFlags, mesh meshFlags, all bool, meshConfigFile string, podFiles, objectFiles []string) (diagnose.ClusterInput, analyzeReport, error) {
	in := diagnose.ClusterInput{
		MeshConfigRef: types.NamespacedName{Namespace: mesh.meshNamespace, Name: mesh.meshConfigName},
		Selection:     injection.SelectOptions{MeshName: mesh.meshName, OperatorNamespace: mesh.operatorNamespace},
		Now:           time.Now(),
	}
	rep := analyzeReport{}
	if meshConfigFile != "" {
		mc, err := readMeshConfig(streams, meshConfigFile)
		if err != nil {
			return in, rep, usageError("--meshconfig: %v", err)
		}
		in.MeshConfig, in.MeshConfigSource = mc, meshConfigFile
		in.MeshConfigRef = types.NamespacedName{Namespace: mc.Namespace, Name: mc.Name}
	}
	rep.MeshConfig = in.MeshConfigRef.String()

	if len(podFiles) > 0 || len(objectFiles) > 0 {
		set, err := readObjects(streams, objectFiles)
		if err != nil {
			return in, rep, err
		}
		for _, f := range podFiles {
			pod, err := readPod(streams, f)
			if err != nil {
				return in, rep, usageError("--pod: %v", err)
			}
			set.Pods = append(set.Pods, *pod)
		}
		if in.MeshConfig == nil {
			for i := range set.MeshConfigs {
				if mc := &set.MeshConfigs[i]; mc.Namespace == in.MeshConfigRef.Namespace && mc.Name == in.MeshConfigRef.Name {
					in.MeshConfig, in.MeshConfigSource = mc, set.MeshConfigFiles[i]
				}
			}
		}
		in.Namespaces, in.Services, in.ServiceAccounts = set.Namespaces, set.Services, set.ServiceAccounts
		in.Pods, in.Egresses, in.IngressBackends = set.Pods, set.Egresses, set.IngressBackends
		in.ServiceEntries, in.IstioNamespace = set.ServiceEntries, mesh.istioNamespace
		for i := range set.ConfigMaps {
			cm := &set.ConfigMaps[i]
			if cm.Namespace != mesh.istioNamespace {
				continue
			}
			if _, ok := istio.RevisionOfConfigMap(cm.Name); ok {
				in.IstioInjectors = append(in.IstioInjectors, *cm)
			} else if cm.Name == analysis.IstioMeshConfigMap {
				in.IstioMeshConfig = cm
			}
		}
		if len(in.IstioInjectors) == 0 {
			in.IstioInjectorsUnknown = "offline mode: pass Istio's injector ConfigMaps in --objects to judge Istio pods' exclusions"
		}
		rep.Scope, rep.Mode = "the given objects", "offline"
		return in, rep, nil
	}

	k, err := connect(cf)
	if err != nil {
		return in, rep, err
	}
	rep.Mode = "cluster"
	scope := []client.ListOption{client.InNamespace(k.namespace)}
	nsArg := k.namespace
	rep.Scope = "namespace " + k.namespace
	if all {
		scope, nsArg, rep.Scope = nil, "", "all namespaces"
	}
	if in.MeshConfig == nil {
		mc := &configv1alpha2.MeshConfig{}
		switch err := k.client.Get(ctx, in.MeshConfigRef, mc); {
		case err == nil:
			in.MeshConfig = mc
		case apierrors.IsNotFound(err) || isNoMatch(err):
		default:
			return in, rep, apiError(err, k.host, "get", "meshconfigs.config.openservicemesh.io", in.MeshConfigRef.Namespace)
		}
	}
	// Objects in scope: a refusal here is fatal, since the report would silently miss them.
	var pods corev1.PodList
	if err := k.client.List(ctx, &pods, scope...); err != nil {
		return in, rep, apiError(err, k.host, "list", "pods", nsArg)
	}
	in.Pods = pods.Items
	var egs policyv1alpha1.EgressList
	if err := k.client.List(ctx, &egs, scope...); err != nil && !isNoMatch(err) {
		return in, rep, apiError(err, k.host, "list", "egresses.policy.openservicemesh.io", nsArg)
	}
	in.Egresses = egs.Items
	var ibs policyv1alpha1.IngressBackendList
	if err := k.client.List(ctx, &ibs, scope...); err != nil && !isNoMatch(err) {
		return in, rep, apiError(err, k.host, "list", "ingressbackends.policy.openservicemesh.io", nsArg)
	}
	in.IngressBackends = ibs.Items

	// Mesh-wide context: read cluster-wide, falling back to the namespace with a note.
	var nss corev1.NamespaceList
	if err := k.client.List(ctx, &nss); err != nil {
		rep.Notes = append(rep.Notes, soft(err, "list", "namespaces")+"; only namespace "+k.namespace+" is known")
		ns := corev1.Namespace{}
		if err := k.client.Get(ctx, types.NamespacedName{Name: k.namespace}, &ns); err == nil {
			nss.Items = []corev1.Namespace{ns}
		}
	}
	in.Namespaces = nss.Items
	var svcs corev1.ServiceList
	if err := k.client.List(ctx, &svcs); err != nil {
		rep.Notes = append(rep.Notes, soft(err, "list", "services")+" in all namespaces; port collisions are checked against namespace "+k.namespace+" only")
		if err := k.client.List(ctx, &svcs, client.InNamespace(k.namespace)); err != nil {
			return in, rep, apiError(err, k.host, "list", "services", k.namespace)
		}
	}
	in.Services = svcs.Items
	var sas corev1.ServiceAccountList
	if err := k.client.List(ctx, &sas); err != nil {
		rep.Notes = append(rep.Notes, soft(err, "list", "serviceaccounts")+" in all namespaces")
		_ = k.client.List(ctx, &sas, client.InNamespace(k.namespace))
	}
	for _, sa := range sas.Items {
		in.ServiceAccounts = append(in.ServiceAccounts, types.NamespacedName{Namespace: sa.Namespace, Name: sa.Name})
	}
	in.Cluster = clusterRangesOf(ctx, k)
	rep.Notes = append(rep.Notes, gatherIstio(ctx, k, mesh.istioNamespace, &in)...)
	return in, rep, nil
}

// clusterRangesOf reads the Service CIDRs (ServiceCIDR objects) and the Pod CIDRs (nodes'
// spec.podCIDRs). Either may be unreadable; the MeshConfig analysis then says so.
func clusterRangesOf(ctx context.Context, k *kube) redirect.ClusterRanges {
	var svc, pod []string
	var cidrs networkingv1.ServiceCIDRList
	if err := k.client.List(ctx, &cidrs); err == nil {
		for _, c := range cidrs.Items {
			svc = append(svc, c.Spec.CIDRs...)
		}
	}
	var nodes corev1.NodeList
	if err := k.client.List(ctx, &nodes); err == nil {
		for _, n := range nodes.Items {
			pod = append(pod, n.Spec.PodCIDRs...)
		}
	}
	cr, _ := redirect.ParseClusterRanges(svc, pod)
	return cr
}

// gatherIstio reads what the Istio analyses need: the mesh configuration ConfigMap in the control
// plane's namespace and every ServiceEntry, through the unstructured client so that no Istio
// library is needed, from the newest served version. Neither is required: a cluster without
// Istio's CRDs or ConfigMap is analysed without them, and a refusal becomes a note.
func gatherIstio(ctx context.Context, k *kube, namespace string, in *diagnose.ClusterInput) []string {
	o := readIstioObjects(ctx, k, namespace)
	in.IstioMeshConfig, in.ServiceEntries, in.IstioNamespace = o.meshConfig, o.entries, namespace
	var cms corev1.ConfigMapList
	if err := k.client.List(ctx, &cms, client.InNamespace(namespace), client.HasLabels{istio.LabelRevision}); err != nil {
		in.IstioInjectorsUnknown = diagnose.Unknown(soft(err, "list", "configmaps -n "+namespace))
		return o.notes
	}
	for _, cm := range cms.Items {
		if _, ok := istio.RevisionOfConfigMap(cm.Name); ok {
			in.IstioInjectors = append(in.IstioInjectors, cm)
		}
	}
	return o.notes
}

// istioObjects are Istio's objects as read from the cluster.
type istioObjects struct {
	meshConfig *corev1.ConfigMap
	entries    []analysis.ServiceEntry
	notes      []string
}

func readIstioObjects(ctx context.Context, k *kube, namespace string) istioObjects {
	var o istioObjects
	cm := &corev1.ConfigMap{}
	switch err := k.client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: analysis.IstioMeshConfigMap}, cm); {
	case err == nil:
		o.meshConfig = cm
	case apierrors.IsNotFound(err):
	default:
		o.notes = append(o.notes, soft(err, "get", "configmaps")+" in "+namespace+"; Istio's outboundTrafficPolicy is assumed ALLOW_ANY")
	}
	for _, v := range analysis.IstioNetworkingVersions {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: analysis.IstioNetworkingGroup, Version: v, Kind: "ServiceEntryList"})
		err := k.client.List(ctx, list)
		if isNoMatch(err) {
			continue
		}
		if err != nil {
			o.notes = append(o.notes, soft(err, "list", "serviceentries."+analysis.IstioNetworkingGroup)+"; ServiceEntries are ignored")
			break
		}
		for i := range list.Items {
			e, err := analysis.ServiceEntryOf(&list.Items[i])
			if err != nil {
				o.notes = append(o.notes, err.Error()+"; this ServiceEntry is ignored")
				continue
			}
			o.entries = append(o.entries, e)
		}
		break
	}
	return o
}
