package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/diagnose"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/redirect/manifest"
)

// offlineFlags read objects from files instead of the cluster.
type offlineFlags struct {
	pod, meshConfig, rulesFile string
}

func (o *offlineFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.pod, "pod", "", "offline: read the pod from this YAML/JSON file instead of the cluster")
	f.StringVar(&o.meshConfig, "meshconfig", "", "read the MeshConfig from this file instead of the cluster")
	f.StringVar(&o.rulesFile, "rules-file", "", "judge these rules instead of the pod's init container: a container or pod spec, an OSM init script, iptables-save or iptables -S output")
}

// readRules reads --rules-file. A file that cannot be read is a usage error; rules that cannot
// be parsed are returned as parseErr, for the checks to report.
func readRules(streams genericiooptions.IOStreams, file string) (p *redirect.Parsed, name string, parseErr error, err error) {
	data, name, err := readInput(streams, file)
	if err != nil {
		return nil, name, nil, usageError("--rules-file: %v", err)
	}
	p, perr := manifest.Parse(data)
	if perr != nil {
		var pe *redirect.ParseError
		if errors.As(perr, &pe) {
			return nil, name, fmt.Errorf("%s:%d:%d: %s", name, pe.Line, pe.Column, pe.Msg), nil
		}
		return nil, name, fmt.Errorf("%s: %w", name, perr), nil
	}
	return p, name, nil, nil
}

func failOnFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "fail-on", "error", "exit 1 when a problem reaches this severity: info, warning or error")
}

// diagnoseReport is the JSON/YAML shape of `diagnose pod`.
type diagnoseReport struct {
	Pod        string `json:"pod"`
	Mode       string `json:"mode"`
	MeshConfig string `json:"meshConfig,omitempty"`
	// Injector is the Istio injector ConfigMap an Istio pod was judged against.
	Injector string             `json:"injector,omitempty"`
	Status   diagnose.Status    `json:"status"`
	Summary  diagnose.Summary   `json:"summary"`
	Checks   []diagnose.Check   `json:"checks"`
	Skipped  []skippedCheckJSON `json:"skipped"`
}

type skippedCheckJSON struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

func newDiagnoseCommand(streams genericiooptions.IOStreams) *cobra.Command {
	return newGroup("diagnose", "Run the troubleshooting runbooks as automated checks", exitUsage, newDiagnosePodCommand(streams))
}

func newDiagnosePodCommand(streams genericiooptions.IOStreams) *cobra.Command {
	cf := genericclioptions.NewConfigFlags(true)
	var (
		mesh    meshFlags
		offline offlineFlags
		objects []string
		out     = string(outputTable)
		failOn  string
	)
	cmd := &cobra.Command{
		Use:   "pod NAME [-n NAMESPACE] | pod --pod FILE [--meshconfig FILE] [--objects FILE]",
		Short: "Check every step of a meshed pod's traffic redirection",
		Long: `Check a meshed pod the way the troubleshooting guides do by hand: sidecar injected and ready,
init container exited 0 (with its last log line when it did not), exclusions from the MeshConfig
and the pod's annotations present in the rendered rules (naming each missing or unexpected value),
namespace label and annotation, MeshConfig present and valid, CRDs installed, webhooks configured
(service reference and CA bundle), operator running.

With --pod FILE nothing is read from the cluster: checks that need it are skipped, except the
namespace checks when --objects FILE holds the pod's Namespace.`,
		Example: `  kubectl meshkeeper diagnose pod bookbuyer-7d9f8c-x2x4q -n bookbuyer
  meshkeeper diagnose pod --pod pod.yaml --meshconfig meshconfig.yaml -o json
  meshkeeper diagnose pod --pod pod.yaml --objects namespace.yaml --objects meshconfig.yaml
  meshkeeper diagnose pod web-0 -n shop --rules-file iptables-save.txt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o := output(out)
			if err := o.validate(); err != nil {
				return err
			}
			min, err := parseFailOn(failOn)
			if err != nil {
				return err
			}
			in, mode, err := gatherPod(c.Context(), streams, cf, mesh, offline, objects, args)
			if err != nil {
				return err
			}
			checks := diagnose.DiagnosePod(in)
			rep := diagnoseReport{Pod: in.Pod.Namespace + "/" + in.Pod.Name, Mode: mode, MeshConfig: in.MeshConfigRef.String(),
				Status: diagnose.Worst(checks), Summary: diagnose.Summarize(checks), Checks: []diagnose.Check{}, Skipped: []skippedCheckJSON{}}
			if diagnose.IsIstio(in) {
				rep.MeshConfig = ""
				rep.Injector = in.IstioNamespace + "/" + istio.InjectorConfigMap(istio.Revision(in.Pod))
			}
			for _, ch := range checks {
				if ch.Status == diagnose.StatusSkip {
					rep.Skipped = append(rep.Skipped, skippedCheckJSON{Name: ch.Name, Reason: ch.Reason})
					continue
				}
				rep.Checks = append(rep.Checks, ch)
			}
			if o == outputTable {
				writeChecksTable(streams.Out, rep, checks)
			} else if err := writeData(streams.Out, o, rep); err != nil {
				return err
			}
			if n := countAtLeast(checks, min); n > 0 {
				return &exitError{code: exitProblems, err: fmt.Errorf("%d of %d checks of pod %s did not pass (fail-on %s)", n, len(checks), rep.Pod, failOn)}
			}
			return nil
		},
	}
	cf.AddFlags(cmd.Flags())
	mesh.add(cmd.Flags())
	offline.add(cmd)
	cmd.Flags().StringArrayVar(&objects, "objects", nil, "offline: the pod's Namespace (and the MeshConfig, unless --meshconfig is given) from YAML/JSON files, several documents or a List; repeatable")
	cmd.Flags().StringVarP(&out, "output", "o", out, "output format: table, json or yaml")
	failOnFlag(cmd, &failOn)
	return withUsageErrors(cmd)
}

// failLevel is the least severe check status --fail-on turns into exit code 1.
// parseFailOn reads --fail-on as analyze does; a check has no info level, so info and warning
// both fail on warnings.
func parseFailOn(v string) (diagnose.Status, error) {
	sev, err := parseSeverity(v)
	switch {
	case err != nil:
		return "", err
	case sev == conditions.SeverityError:
		return diagnose.StatusFail, nil
	}
	return diagnose.StatusWarn, nil
}

func countAtLeast(checks []diagnose.Check, min diagnose.Status) int {
	n := 0
	for _, c := range checks {
		if c.Status == diagnose.StatusFail || (min == diagnose.StatusWarn && c.Status == diagnose.StatusWarn) {
			n++
		}
	}
	return n
}

func writeChecksTable(w io.Writer, rep diagnoseReport, checks []diagnose.Check) {
	p := paletteFor(w)
	if rep.Injector != "" {
		fmt.Fprintf(w, "Pod %s (%s, Istio, ConfigMap %s)\n\n", rep.Pod, rep.Mode, rep.Injector)
	} else {
		fmt.Fprintf(w, "Pod %s (%s, MeshConfig %s)\n\n", rep.Pod, rep.Mode, rep.MeshConfig)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tREASON")
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, p.paint(string(c.Status), 4), oneLine(c.Reason))
		if c.Hint != "" && c.Status != diagnose.StatusPass && c.Status != diagnose.StatusSkip {
			fmt.Fprintf(tw, "\t\tfix: %s\n", oneLine(c.Hint))
		}
	}
	_ = tw.Flush()
	s := rep.Summary
	fmt.Fprintf(w, "\n%d passed, %d warnings, %d failed, %d skipped\n", s.Pass, s.Warn, s.Fail, s.Skip)
}

// gatherPod collects the facts for DiagnosePod, from files (--pod) or from the cluster.
func gatherPod(ctx context.Context, streams genericiooptions.IOStreams, cf *genericclioptions.ConfigFlags, mesh meshFlags, off offlineFlags, objectFiles, args []string) (diagnose.PodInput, string, error) {
	in := diagnose.PodInput{
		MeshConfigRef:     types.NamespacedName{Namespace: mesh.meshNamespace, Name: mesh.meshConfigName},
		OperatorNamespace: mesh.operatorNamespace,
		Selection:         injection.SelectOptions{MeshName: mesh.meshName, OperatorNamespace: mesh.operatorNamespace},
		Now:               time.Now(),
		IstioNamespace:    mesh.istioNamespace,
	}
	if off.rulesFile != "" {
		p, name, perr, err := readRules(streams, off.rulesFile)
		if err != nil {
			return in, "", err
		}
		in.Rules, in.RulesSource, in.RulesErr = p, name, perr
	}
	if off.meshConfig != "" {
		mc, err := readMeshConfig(streams, off.meshConfig)
		if err != nil {
			return in, "", usageError("--meshconfig: %v", err)
		}
		in.MeshConfig, in.MeshConfigSource = mc, off.meshConfig
		in.MeshConfigRef = types.NamespacedName{Namespace: mc.Namespace, Name: mc.Name}
	}

	if off.pod != "" || len(objectFiles) > 0 {
		if off.pod == "" {
			return in, "", usageError("--objects is for offline mode: pass --pod FILE too")
		}
		if len(args) > 0 {
			return in, "", usageError("give either a pod NAME or --pod FILE, not both")
		}
		pod, err := readPod(streams, off.pod)
		if err != nil {
			return in, "", usageError("--pod: %v", err)
		}
		in.Pod = pod
		set, err := readObjects(streams, objectFiles)
		if err != nil {
			return in, "", err
		}
		const why = diagnose.Unknown("offline mode (--pod): the cluster is not read")
		in.NamespaceUnknown, in.CRDsUnknown, in.WebhooksUnknown, in.OperatorUnknown, in.InitLogUnknown = why, why, why, why, why
		if len(objectFiles) > 0 {
			in.NamespaceUnknown = diagnose.Unknown(fmt.Sprintf("namespace %s is not in the --objects files", pod.Namespace))
			for i := range set.Namespaces {
				if set.Namespaces[i].Name == pod.Namespace {
					in.Namespace, in.NamespaceUnknown = &set.Namespaces[i], ""
				}
			}
		}
		if in.MeshConfig == nil {
			for i := range set.MeshConfigs {
				if mc := &set.MeshConfigs[i]; mc.Namespace == in.MeshConfigRef.Namespace && mc.Name == in.MeshConfigRef.Name {
					in.MeshConfig, in.MeshConfigSource = mc, set.MeshConfigFiles[i]
				}
			}
		}
		if in.MeshConfig == nil {
			in.MeshConfigUnknown = "offline mode: pass --meshconfig FILE to check the MeshConfig and the exclusions"
		}
		in.IstioInjectorUnknown = diagnose.Unknown(fmt.Sprintf("offline mode: pass the ConfigMap %s/%s in --objects to compare the pod with the injector's values",
			in.IstioNamespace, istio.InjectorConfigMap(istio.Revision(pod))))
		for i := range set.ConfigMaps {
			if cm := &set.ConfigMaps[i]; cm.Namespace == in.IstioNamespace && cm.Name == istio.InjectorConfigMap(istio.Revision(pod)) {
				in.IstioInjector, in.IstioInjectorUnknown = cm, ""
			}
		}
		return in, "offline", nil
	}
	if len(args) == 0 {
		return in, "", usageError("missing pod NAME (or --pod FILE for offline mode)")
	}

	k, err := connect(cf)
	if err != nil {
		return in, "", err
	}
	pod := &corev1.Pod{}
	if err := k.client.Get(ctx, types.NamespacedName{Namespace: k.namespace, Name: args[0]}, pod); err != nil {
		return in, "", apiError(err, k.host, "get", "pods", k.namespace)
	}
	in.Pod = pod

	ns := &corev1.Namespace{}
	if err := k.client.Get(ctx, types.NamespacedName{Name: pod.Namespace}, ns); err != nil {
		in.NamespaceUnknown = diagnose.Unknown(soft(err, "get", "namespaces"))
	} else {
		in.Namespace = ns
	}

	if in.MeshConfig == nil {
		mc := &configv1alpha2.MeshConfig{}
		switch err := k.client.Get(ctx, in.MeshConfigRef, mc); {
		case err == nil:
			in.MeshConfig = mc
		case apierrors.IsNotFound(err) || isNoMatch(err):
		default:
			in.MeshConfigUnknown = diagnose.Unknown(soft(err, "get", "meshconfigs.config.openservicemesh.io -n "+in.MeshConfigRef.Namespace))
		}
	}

	gatherInitLog(ctx, k, &in)
	if diagnose.IsIstio(in) {
		gatherIstioInjector(ctx, k, &in)
		return in, "cluster", nil
	}
	gatherControlPlane(ctx, k, &in)
	return in, "cluster", nil
}

// gatherIstioInjector reads the injector ConfigMap of the pod's revision and, for istio-cni
// pods, the pod template of the workload that owns the pod.
func gatherIstioInjector(ctx context.Context, k *kube, in *diagnose.PodInput) {
	cm := &corev1.ConfigMap{}
	key := types.NamespacedName{Namespace: in.IstioNamespace, Name: istio.InjectorConfigMap(istio.Revision(in.Pod))}
	switch err := k.client.Get(ctx, key, cm); {
	case err == nil:
		in.IstioInjector = cm
	case apierrors.IsNotFound(err):
	default:
		in.IstioInjectorUnknown = diagnose.Unknown(soft(err, "get", "configmaps -n "+in.IstioNamespace))
	}
	if !drift.IstioTemplateNeeded(in.Pod) {
		return
	}
	ref := metav1.GetControllerOf(in.Pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs := &appsv1.ReplicaSet{}
	if err := k.client.Get(ctx, types.NamespacedName{Namespace: in.Pod.Namespace, Name: ref.Name}, rs); err == nil {
		in.IstioTemplate = rs.Spec.Template.Annotations
		if in.IstioTemplate == nil {
			in.IstioTemplate = map[string]string{}
		}
	}
}

// gatherInitLog reads the last log line of a failed redirection init container.
func gatherInitLog(ctx context.Context, k *kube, in *diagnose.PodInput) {
	c := drift.RedirectionInitContainer(in.Pod)
	if c == nil {
		return
	}
	var st *corev1.ContainerStatus
	for i := range in.Pod.Status.InitContainerStatuses {
		if in.Pod.Status.InitContainerStatuses[i].Name == c.Name {
			st = &in.Pod.Status.InitContainerStatuses[i]
		}
	}
	if st == nil {
		return
	}
	previous := false
	switch {
	case st.State.Terminated != nil && st.State.Terminated.ExitCode != 0:
	case st.State.Terminated == nil && st.LastTerminationState.Terminated != nil && st.LastTerminationState.Terminated.ExitCode != 0:
		previous = true
	default:
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tail := int64(20)
	data, err := k.clientset.CoreV1().Pods(in.Pod.Namespace).GetLogs(in.Pod.Name, &corev1.PodLogOptions{Container: c.Name, TailLines: &tail, Previous: previous}).DoRaw(ctx)
	if err != nil {
		in.InitLogUnknown = diagnose.Unknown(soft(err, "get", "pods/log"))
		return
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			in.InitLog = l
			return
		}
	}
	in.InitLogUnknown = "the log is empty"
}

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinitionList"}

// gatherControlPlane reads the CRDs, webhook configurations, their Services and the operator's
// Deployment. Each read that fails leaves its check skipped with the reason.
func gatherControlPlane(ctx context.Context, k *kube, in *diagnose.PodInput) {
	crds := &unstructured.UnstructuredList{}
	crds.SetGroupVersionKind(crdGVK)
	if err := k.client.List(ctx, crds); err != nil {
		in.CRDsUnknown = diagnose.Unknown(soft(err, "list", "customresourcedefinitions"))
	} else {
		in.CRDs = map[string]bool{}
		for _, item := range crds.Items {
			conds, _, _ := unstructured.NestedSlice(item.Object, "status", "conditions")
			established := false
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					established = true
				}
			}
			in.CRDs[item.GetName()] = established
		}
	}

	// Each kind is listed on its own: a refusal for one must not hide the other, nor be
	// reported under the other's name.
	var mutating admissionregistrationv1.MutatingWebhookConfigurationList
	var validating admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := k.client.List(ctx, &mutating); err != nil {
		in.MutatingUnknown = diagnose.Unknown(soft(err, "list", "mutatingwebhookconfigurations"))
	} else {
		in.Mutating = mutating.Items
	}
	if err := k.client.List(ctx, &validating); err != nil {
		in.ValidatingUnknown = diagnose.Unknown(soft(err, "list", "validatingwebhookconfigurations"))
	} else {
		in.Validating = validating.Items
	}
	if in.MutatingUnknown == "" || in.ValidatingUnknown == "" {
		in.Services = map[types.NamespacedName]bool{}
		var refs []*admissionregistrationv1.ServiceReference
		for _, m := range in.Mutating {
			for _, w := range m.Webhooks {
				refs = append(refs, w.ClientConfig.Service)
			}
		}
		for _, v := range in.Validating {
			for _, w := range v.Webhooks {
				refs = append(refs, w.ClientConfig.Service)
			}
		}
		for _, r := range refs {
			if r == nil {
				continue
			}
			key := types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
			if _, seen := in.Services[key]; seen {
				continue
			}
			err := k.client.Get(ctx, key, &corev1.Service{})
			switch {
			case err == nil:
				in.Services[key] = true
			case apierrors.IsNotFound(err):
				in.Services[key] = false
			default:
				in.Services = nil // cannot tell which exist
			}
			if in.Services == nil {
				break
			}
		}
	}

	var deps appsv1.DeploymentList
	if err := k.client.List(ctx, &deps, client.InNamespace(in.OperatorNamespace),
		client.MatchingLabels{diagnose.OperatorLabelKey: diagnose.OperatorLabelValue}); err != nil {
		in.OperatorUnknown = diagnose.Unknown(soft(err, "list", "deployments -n "+in.OperatorNamespace))
	} else {
		in.Deployments = deps.Items
	}
}

func isNoMatch(err error) bool {
	return meta.IsNoMatchError(err)
}
