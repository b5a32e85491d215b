//go:build e2e

package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/test/e2e/e2eutil"
)

const (
	operatorNamespace = e2eutil.OperatorNamespace
	managerDeployment = e2eutil.ManagerDeployment
	managerSA         = "meshkeeper-controller-manager"
	webhookSecret     = "meshkeeper-webhook-server-cert"
	mutatingWebhook   = "meshkeeper-mutating-webhook-configuration"
	managerImage      = "ghcr.io/meshkeeper/manager:dev"
)

// deployOperator applies the overlay the way users apply config/default or config/injector,
// waits for the rollout and restarts the manager when its pods run an older build of the image.
func deployOperator() error {
	t0 := time.Now()
	// The manager serves one mesh and will not start without its MeshConfig: like OSM's
	// installation, the sample creates osm-system/osm-mesh-config. Forced, so that a change
	// left by someone else (the real-node demo leaves its change for users to look at) is undone.
	if _, err := k.TryRun("kubectl", "create", "namespace", "osm-system"); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		return err
	}
	if _, err := k.TryRun("kubectl", "apply", "--server-side", "--force-conflicts", "-f", filepath.Join("config", "samples", "config_v1alpha2_meshconfig.yaml")); err != nil {
		return err
	}
	if _, err := k.TryRun("kubectl", "apply", "--server-side", "--force-conflicts", "-k", k.overlay); err != nil {
		return err
	}
	var d appsv1.Deployment
	if err := k.c.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: managerDeployment}, &d); err != nil {
		return err
	}
	k.mode = "audit"
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if m, ok := strings.CutPrefix(a, "--mode="); ok {
			k.mode = m
		}
	}
	if k.mode == "audit" {
		// Switching from inject mode the way a user would: the webhooks of config/injector go.
		for _, kind := range []string{"mutatingwebhookconfiguration", "validatingwebhookconfiguration"} {
			if _, err := k.TryRun("kubectl", "delete", "--ignore-not-found", kind, "meshkeeper-"+strings.TrimSuffix(kind, "webhookconfiguration")+"-webhook-configuration"); err != nil {
				return err
			}
		}
	}
	leader, err := k.RollOut()
	if err != nil {
		return err
	}
	fmt.Printf("e2e: operator deployed in %s mode from %s and rolled out in %s; leader %s\n", k.mode, k.overlay, time.Since(t0).Round(100*time.Millisecond), leader)
	if k.mode == "inject" {
		return awaitInjection(2 * time.Minute)
	}
	return nil
}

// awaitInjection waits until the API server actually injects a pod of a meshed namespace. Ready
// manager pods do not mean that yet: the API server calls the webhook through the Service's
// address, which kube-proxy routes to the new endpoints a moment after they turn Ready, and with
// failurePolicy Ignore a pod admitted in between starts without its sidecar (and says so in its
// conditions). A pod created by a test before that would test the window, not the operator.
func awaitInjection(timeout time.Duration) error {
	t0 := time.Now()
	ns := newNamespace("e2e-webhook-ready", true)
	if err := k.c.Create(context.Background(), ns); err != nil {
		return err
	}
	defer func() { _ = k.c.Delete(context.Background(), ns) }()
	for tries := 1; ; tries++ {
		ok, err := dryRunInjected(ns.Name)
		if ok {
			fmt.Printf("e2e: the API server injects pods %s after the rollout (%d dry-run creates)\n", time.Since(t0).Round(100*time.Millisecond), tries)
			return nil
		}
		if time.Since(t0) > timeout {
			return fmt.Errorf("no pod injected %s after the rollout (%d dry-run creates; last error: %v)", timeout, tries, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// dryRunInjected creates a pod in ns with dryRun, which runs the admission webhooks and stores
// nothing, and reports whether it came back injected.
func dryRunInjected(ns string) (bool, error) {
	p := testappPod(ns, "probe", plainPort)
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := k.c.Create(c, p, client.DryRunAll)
	return err == nil && injection.Injected(p), err
}

// The manager runs from its image, in the cluster, with its ServiceAccount and the generated
// RBAC, its own webhook certificate, and /readyz gating its readiness.
func TestManagerRunsInCluster(t *testing.T) {
	var d appsv1.Deployment
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: operatorNamespace, Name: managerDeployment}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Status.ReadyReplicas != *d.Spec.Replicas {
		t.Fatalf("%d of %d replicas ready", d.Status.ReadyReplicas, *d.Spec.Replicas)
	}
	var pods corev1.PodList
	if err := k.c.List(e2eutil.Ctx(t), &pods, client.InNamespace(operatorNamespace), client.MatchingLabels{"control-plane": "controller-manager"}); err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Spec.ServiceAccountName != managerSA {
			t.Errorf("pod %s runs as ServiceAccount %q", p.Name, p.Spec.ServiceAccountName)
		}
		if img := p.Spec.Containers[0].Image; img != managerImage {
			t.Errorf("pod %s runs image %q, want %q", p.Name, img, managerImage)
		}
		if ok, _ := podReady(t, p.Namespace, p.Name); ok {
			ready++
		}
		// With exactly the generated RBAC, a call the role lacks is refused as "forbidden: User
		// <the ServiceAccount>" (other "forbidden" answers, such as an event into a namespace
		// being deleted, are not about RBAC).
		denied := `forbidden: User \"system:serviceaccount:` + operatorNamespace + ":" + managerSA + `\"`
		logs := k.Kubectl(t, "logs", "-n", p.Namespace, p.Name, "-c", "manager")
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, denied) || strings.Contains(line, strings.ReplaceAll(denied, `\"`, `"`)) {
				t.Errorf("pod %s: the generated RBAC refused a call: %s", p.Name, line)
			}
		}
	}
	if ready == 0 {
		t.Fatal("no manager pod is Ready")
	}

	if k.mode != "inject" {
		t.Logf("%s mode: no webhooks to check", k.mode)
		return
	}
	// The webhook certificate is the operator's own: a CA it made, patched into the webhook
	// configuration, signing the serving certificate for the Service's DNS name.
	var s corev1.Secret
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: operatorNamespace, Name: webhookSecret}, &s); err != nil {
		t.Fatal(err)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Name: mutatingWebhook}, &mwc); err != nil {
		t.Fatal(err)
	}
	for _, w := range mwc.Webhooks {
		if string(w.ClientConfig.CABundle) != string(s.Data["ca.crt"]) {
			t.Errorf("webhook %s: caBundle is not the operator's CA", w.Name)
		}
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.Data["ca.crt"]) {
		t.Fatal("secret has no CA certificate")
	}
	block, _ := pem.Decode(s.Data["tls.crt"])
	if block == nil {
		t.Fatal("secret has no serving certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	dns := "meshkeeper-webhook-service." + operatorNamespace + ".svc"
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: dns}); err != nil {
		t.Errorf("serving certificate for %s: %v", dns, err)
	}
}

// Pods created while the operator itself rolls out are still injected: a stopping manager keeps
// answering admission for --shutdown-delay while the endpoints drop it, so the API server never
// meets a closed port in between (with failurePolicy Ignore such a pod would start without its
// sidecar). Four workers create pods with dryRun back to back from the restart until the
// rollout has finished and a few seconds more.
func TestAdmissionDuringOperatorRollout(t *testing.T) {
	if k.mode != "inject" {
		t.Skipf("%s mode has no webhook on pods", k.mode)
	}
	ns := testNamespace(t, "e2e-rollout", true)
	if ok, err := dryRunInjected(ns); err != nil || !ok {
		t.Fatalf("before the rollout: injected=%t err=%v", ok, err)
	}
	t0 := time.Now()
	k.Kubectl(t, "rollout", "restart", "deployment/"+managerDeployment, "-n", operatorNamespace)
	stop := make(chan struct{})
	var mu sync.Mutex
	var total, missed int
	var misses []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ok, err := dryRunInjected(ns)
				mu.Lock()
				total++
				if err != nil || !ok {
					missed++
					if len(misses) < 5 {
						misses = append(misses, fmt.Sprintf("at %s: injected=%t err=%v", time.Since(t0).Round(time.Millisecond), ok, err))
					}
				}
				mu.Unlock()
			}
		}()
	}
	_, err := k.TryRun("kubectl", "rollout", "status", "deployment/"+managerDeployment, "-n", operatorNamespace, "--timeout=170s")
	rolled := time.Since(t0)
	time.Sleep(10 * time.Second)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollout finished after %s; %d pods created through it and 10 s after, %d not injected", rolled.Round(100*time.Millisecond), total, missed)
	if missed > 0 {
		t.Errorf("%d of %d pods created during the operator's rollout were not injected: %s", missed, total, strings.Join(misses, "; "))
	}
	if _, err := k.AwaitLeader(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
}

// With the manager down (scaled to zero, its webhook configurations still installed, their
// Service without endpoints), nothing is blocked: a pod in a meshed namespace starts without its
// sidecar (failurePolicy Ignore), pods elsewhere start as usual, and the operator's own pods start
// again although its webhook cannot answer for them. Once it runs, the uninjected pod is reported
// SidecarInjected=False/SidecarMissing with the restart that injects it (docs/admission.md).
func TestNothingBlockedWhileTheManagerIsDown(t *testing.T) {
	if k.mode != "inject" {
		t.Skipf("%s mode has no webhook on pods", k.mode)
	}
	var d appsv1.Deployment
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: operatorNamespace, Name: managerDeployment}, &d); err != nil {
		t.Fatal(err)
	}
	replicas := fmt.Sprint(*d.Spec.Replicas)
	scaledBack := false
	scaleBack := func() {
		if !scaledBack {
			scaledBack = true
			k.Kubectl(t, "scale", "deployment/"+managerDeployment, "-n", operatorNamespace, "--replicas="+replicas)
		}
	}
	t.Cleanup(func() {
		if !scaledBack {
			_, _ = k.TryRun("kubectl", "scale", "deployment/"+managerDeployment, "-n", operatorNamespace, "--replicas="+replicas)
		}
		if _, err := k.RollOut(); err != nil {
			t.Errorf("the manager did not come back: %v", err)
		}
	})
	k.Kubectl(t, "scale", "deployment/"+managerDeployment, "-n", operatorNamespace, "--replicas=0")
	e2eutil.Eventually(t, "no manager pod left", 120*time.Second, func() (bool, string) {
		var pods corev1.PodList
		if err := k.c.List(e2eutil.Ctx(t), &pods, client.InNamespace(operatorNamespace), client.MatchingLabels{"control-plane": "controller-manager"}); err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d pods", len(pods.Items))
	})

	meshNS := testNamespace(t, "e2e-down-mesh", true)
	plainNS := testNamespace(t, "e2e-down-plain", false)
	meshed := startPod(t, testappPod(meshNS, "meshed", plainPort))
	if injection.Injected(meshed) {
		t.Fatalf("pod %s was injected although no manager runs", meshed.Name)
	}
	startPod(t, testappPod(plainNS, "plain", plainPort))
	own := testappPod(operatorNamespace, "e2e-own-namespace", plainPort)
	// The operator's namespace enforces the restricted Pod Security Standard.
	own.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	own.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	startPod(t, own)
	t.Cleanup(func() { _, _ = k.TryRun("kubectl", "delete", "pod", own.Name, "-n", operatorNamespace, "--wait=false") })

	// The operator's own pods start while its webhook cannot answer for them.
	scaleBack()
	leader, err := k.AwaitLeader(3 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("manager back, leader %s", leader)
	e2eutil.Eventually(t, "the uninjected pod "+conditions.PodSidecarInjected+"=False/"+conditions.SidecarMissing, 90*time.Second, func() (bool, string) {
		var p corev1.Pod
		if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKeyFromObject(meshed), &p); err != nil {
			return false, err.Error()
		}
		c := e2eutil.PodCondition(&p, conditions.PodSidecarInjected)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != conditions.SidecarMissing {
			return false, e2eutil.DescribeCondition(c)
		}
		return strings.Contains(c.Message, "restart"), c.Message
	})
}
