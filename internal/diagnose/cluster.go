package diagnose

import (
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
)

// meshConfigStub stands in for an unknown or missing MeshConfig: the drift checks that do not
// compare exclusions still need one to name.
func meshConfigStub(in PodInput) *configv1alpha2.MeshConfig {
	return &configv1alpha2.MeshConfig{ObjectMeta: metav1.ObjectMeta{Namespace: in.MeshConfigRef.Namespace, Name: in.MeshConfigRef.Name}}
}

const installHint = "kubectl apply -k config/default (audit mode; -k config/injector to inject), from a meshkeeper checkout, or install the release manifests"

func crds(in PodInput) Check {
	c := Check{Name: CheckCRDs}
	if in.CRDsUnknown != "" {
		return skipped(c.Name, in.CRDsUnknown)
	}
	var missing, pending []string
	for _, name := range RequiredCRDs {
		established, ok := in.CRDs[name]
		switch {
		case !ok:
			missing = append(missing, name)
		case !established:
			pending = append(pending, name)
		}
	}
	switch {
	case len(missing) > 0:
		c.Status = StatusFail
		c.Reason = "missing CustomResourceDefinitions: " + strings.Join(missing, ", ")
		c.Hint = "kubectl apply -k config/crd (from a meshkeeper checkout: make install, which never replaces OSM's CRDs)"
	case len(pending) > 0:
		c.Status = StatusWarn
		c.Reason = "not yet Established: " + strings.Join(pending, ", ")
		c.Hint = "kubectl wait --for condition=Established crd/" + pending[0]
	default:
		c.Status = StatusPass
		c.Reason = "installed and Established: " + strings.Join(RequiredCRDs, ", ")
	}
	return c
}

// hook is what the webhook checks need from either kind of webhook.
type hook struct {
	config, name string
	cc           admissionregistrationv1.WebhookClientConfig
}

func webhooks(in PodInput) []Check {
	var mutating, validating []hook
	for _, cfg := range in.Mutating {
		for _, w := range cfg.Webhooks {
			if strings.HasSuffix(w.Name, WebhookSuffix) {
				mutating = append(mutating, hook{cfg.Name, w.Name, w.ClientConfig})
			}
		}
	}
	for _, cfg := range in.Validating {
		for _, w := range cfg.Webhooks {
			if strings.HasSuffix(w.Name, WebhookSuffix) {
				validating = append(validating, hook{cfg.Name, w.Name, w.ClientConfig})
			}
		}
	}
	out := make([]Check, 0, 2)
	audit := operatorMode(in, mutating) == "audit"
	if why := firstUnknown(in.WebhooksUnknown, in.MutatingUnknown); why != "" {
		out = append(out, skipped(CheckMutatingWebhook, why))
	} else if audit && len(mutating) == 0 {
		out = append(out, skipped(CheckMutatingWebhook, Unknown("meshkeeper runs in audit mode: it injects no pod and serves no pod webhook"+injectedBy(in))))
	} else {
		c := webhookCheck(in, CheckMutatingWebhook, "MutatingWebhookConfiguration", "pods are created without a sidecar", mutating)
		if others := injection.OtherInjectors(in.Mutating, meshName(in), mutatingConfigName(mutating)); c.Status == StatusPass && len(others) > 0 {
			c.Status = StatusWarn
			c.Reason = "meshkeeper's injector is paused: " + injection.InjectorConflictMessage(meshName(in), others)
			c.Hint = "run meshkeeper with --mode=audit (kubectl apply -k config/default) or remove the other injector (docs/migrating-from-osm.md)"
		}
		out = append(out, c)
	}
	if why := firstUnknown(in.WebhooksUnknown, in.ValidatingUnknown); why != "" {
		out = append(out, skipped(CheckValidatingWebhook, why))
	} else if audit && len(validating) == 0 {
		out = append(out, skipped(CheckValidatingWebhook, "meshkeeper runs in audit mode without its validating webhooks (config/validating adds them); the controllers still report invalid objects"))
	} else {
		out = append(out, webhookCheck(in, CheckValidatingWebhook, "ValidatingWebhookConfiguration", "invalid MeshConfig, Egress and IngressBackend objects are accepted", validating))
	}
	return out
}

// operatorMode reads the manager's --mode from its Deployment; without a Deployment, a pod
// webhook means inject mode (make run, the demo), and nothing means nothing is installed.
func operatorMode(in PodInput, mutating []hook) string {
	for i := range in.Deployments {
		for _, c := range in.Deployments[i].Spec.Template.Spec.Containers {
			for _, a := range append(slices.Clone(c.Command), c.Args...) {
				if v, ok := strings.CutPrefix(a, "--mode="); ok {
					return v
				}
			}
		}
	}
	switch {
	case len(in.Deployments) > 0:
		return "audit" // the manager's default
	case len(mutating) > 0:
		return "inject"
	}
	return "" // nothing installed: every check says so
}

// injectedBy names the other injector of the mesh, when there is one, for audit mode's message.
func injectedBy(in PodInput) string {
	if others := injection.OtherInjectors(in.Mutating, meshName(in), ""); len(others) > 0 {
		return "; pods of this mesh are injected by MutatingWebhookConfiguration " + strings.Join(others, ", ")
	}
	return ""
}

func mutatingConfigName(hooks []hook) string {
	if len(hooks) == 0 {
		return ""
	}
	return hooks[0].config
}

func firstUnknown(list ...Unknown) Unknown {
	for _, u := range list {
		if u != "" {
			return u
		}
	}
	return ""
}

func webhookCheck(in PodInput, name, kind, consequence string, hooks []hook) Check {
	c := Check{Name: name}
	if len(hooks) == 0 {
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("no %s carries a *%s webhook, so %s", kind, WebhookSuffix, consequence)
		c.Hint = installHint
		return c
	}
	var problems, seen []string
	for _, h := range hooks {
		where := fmt.Sprintf("%s %s webhook %s", kind, h.config, h.name)
		switch {
		case h.cc.Service != nil:
			svc := types.NamespacedName{Namespace: h.cc.Service.Namespace, Name: h.cc.Service.Name}
			if in.Services != nil && !in.Services[svc] {
				problems = append(problems, fmt.Sprintf("%s points at Service %s, which does not exist", where, svc))
			}
			entry := fmt.Sprintf("%s -> service %s", h.name, svc)
			if !contains(seen, entry) {
				seen = append(seen, entry)
			}
		case h.cc.URL != nil && *h.cc.URL != "":
			seen = append(seen, fmt.Sprintf("%s -> %s", h.name, *h.cc.URL))
		default:
			problems = append(problems, where+" has neither a service reference nor a URL")
		}
		if len(h.cc.CABundle) == 0 {
			problems = append(problems, where+" has an empty caBundle, so the apiserver cannot call it (the certificate has not been injected yet)")
		}
	}
	if len(problems) > 0 {
		c.Status = StatusFail
		c.Reason = strings.Join(problems, "; ")
		c.Hint = fmt.Sprintf("kubectl get %s %s -o yaml; check that the operator is running (it injects the CA bundle) and that the webhook Service exists in %s",
			strings.ToLower(kind), hooks[0].config, orDefault(in.OperatorNamespace, "the operator's namespace"))
		return c
	}
	c.Status = StatusPass
	c.Reason = fmt.Sprintf("%s %s: %s, CA bundle set", kind, hooks[0].config, strings.Join(seen, ", "))
	return c
}

// webhookURLs lists the distinct URLs our webhooks are configured with instead of a Service.
func webhookURLs(in PodInput) []string {
	var urls []string
	for _, cfg := range in.Mutating {
		for _, w := range cfg.Webhooks {
			if u := w.ClientConfig.URL; strings.HasSuffix(w.Name, WebhookSuffix) && u != nil && *u != "" && !contains(urls, *u) {
				urls = append(urls, *u)
			}
		}
	}
	return urls
}

func operator(in PodInput) Check {
	c := Check{Name: CheckOperator}
	if in.OperatorUnknown != "" {
		return skipped(c.Name, in.OperatorUnknown)
	}
	if len(in.Deployments) == 0 {
		if urls := webhookURLs(in); len(urls) > 0 {
			// make run and the demo serve the webhooks from a process outside the cluster.
			c.Status = StatusWarn
			c.Reason = fmt.Sprintf("no Deployment labelled %s=%s in namespace %s, but the webhooks call %s: the operator runs outside the cluster, so its health cannot be read from here",
				OperatorLabelKey, OperatorLabelValue, in.OperatorNamespace, strings.Join(urls, ", "))
			c.Hint = "check the process serving those URLs (its log), or deploy it with kubectl apply -k config/default"
			return c
		}
		c.Status = StatusFail
		c.Reason = fmt.Sprintf("no Deployment labelled %s=%s in namespace %s, so drift is not detected and the webhooks have no server", OperatorLabelKey, OperatorLabelValue, in.OperatorNamespace)
		c.Hint = fmt.Sprintf("kubectl get deployments -A -l %s=%s (then pass --operator-namespace), or %s", OperatorLabelKey, OperatorLabelValue, installHint)
		return c
	}
	var bad []string
	var good []string
	for i := range in.Deployments {
		d := &in.Deployments[i]
		avail := deploymentCondition(d, appsv1.DeploymentAvailable)
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		state := fmt.Sprintf("Deployment %s/%s: %d/%d replicas available", d.Namespace, d.Name, d.Status.AvailableReplicas, want)
		if avail == nil || avail.Status != corev1.ConditionTrue || d.Status.AvailableReplicas == 0 {
			if avail != nil && avail.Message != "" {
				state += " (" + avail.Message + ")"
			}
			bad = append(bad, state)
			continue
		}
		good = append(good, state)
	}
	if len(bad) > 0 {
		c.Status = StatusFail
		c.Reason = strings.Join(bad, "; ")
		d := in.Deployments[0]
		c.Hint = fmt.Sprintf("kubectl describe deployment %s -n %s; kubectl logs deployment/%s -n %s", d.Name, d.Namespace, d.Name, d.Namespace)
		return c
	}
	c.Status = StatusPass
	c.Reason = strings.Join(good, "; ")
	return c
}

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
