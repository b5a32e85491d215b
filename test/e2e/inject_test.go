//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/test/e2e/e2eutil"
)

const (
	testappImage = "localhost/meshkeeper/testapp:dev"
	// Ports the test servers answer on. 5432 is in the sample MeshConfig's
	// outboundPortExclusionList and 9100 in its inboundPortExclusionList.
	plainPort            = 8080
	outboundExcludedPort = 5432
	inboundExcludedPort  = 9100
	standinAdmin         = "http://127.0.0.1:15000/connections"
)

// record is one connection the stand-in sidecar proxied (test/e2e/standin).
type record struct {
	Direction           string `json:"direction"`
	Source              string `json:"source"`
	OriginalDestination string `json:"originalDestination"`
	Upstream            string `json:"upstream"`
	Error               string `json:"error"`
}

// answer is what testapp's server writes on each connection.
type answer struct {
	Listener string `json:"listener"`
	Peer     string `json:"peer"`
}

// newNamespace is a namespace named after prefix and the clock, in the sample mesh with
// injection enabled when meshed.
func newNamespace(prefix string, meshed bool) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%100000)}}
	if meshed {
		ns.Labels = map[string]string{injection.LabelMonitoredBy: "osm"}
		ns.Annotations = map[string]string{injection.AnnotationSidecarInjection: "enabled"}
	}
	return ns
}

func testNamespace(t *testing.T, prefix string, meshed bool) string {
	t.Helper()
	ns := newNamespace(prefix, meshed)
	if err := k.c.Create(e2eutil.Ctx(t), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpState(t, ns.Name)
		}
		if !t.Failed() || os.Getenv("E2E_KEEP") == "" {
			_, _ = k.TryRun("kubectl", "delete", "namespace", ns.Name, "--wait=false")
		}
	})
	return ns.Name
}

func testappPod(ns, name string, ports ...int) *corev1.Pod {
	var listen []string
	for _, p := range ports {
		listen = append(listen, ":"+strconv.Itoa(p))
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           testappImage,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args:            []string{"serve", "-listen", strings.Join(listen, ",")},
			}},
		},
	}
}

func startPod(t *testing.T, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	t0 := time.Now()
	if err := k.c.Create(e2eutil.Ctx(t), p); err != nil {
		t.Fatalf("create pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	e2eutil.Eventually(t, "pod "+p.Name+" Ready", 120*time.Second, func() (bool, string) { return podReady(t, p.Namespace, p.Name) })
	t.Logf("pod %s: created to Ready in %s", p.Name, time.Since(t0).Round(10*time.Millisecond))
	var got corev1.Pod
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKeyFromObject(p), &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

// A pod in a meshed namespace is injected, its init container loads the planned rules into
// the pod's own network namespace, and traffic goes through the sidecar except where the
// MeshConfig excludes it.
func TestInjectedPodRedirectsAsPlanned(t *testing.T) {
	// The MeshConfig the operator reads, as OSM writes it (config/samples, applied before the
	// operator was deployed).
	var mc configv1alpha2.MeshConfig
	if err := k.c.Get(e2eutil.Ctx(t), client.ObjectKey{Namespace: "osm-system", Name: "osm-mesh-config"}, &mc); err != nil {
		t.Fatal(err)
	}

	plainNS := testNamespace(t, "e2e-plain", false)
	meshNS := testNamespace(t, "e2e-mesh", true)
	server := startPod(t, testappPod(plainNS, "server", plainPort, outboundExcludedPort))
	meshed := startPod(t, testappPod(meshNS, "meshed", plainPort, inboundExcludedPort))

	if k.mode != "inject" {
		// Audit mode mutates no pod.
		if injection.Injected(meshed) {
			t.Fatalf("%s mode injected a pod", k.mode)
		}
		t.Logf("%s mode: the pod in the meshed namespace was left as it was", k.mode)
		return
	}

	t.Run("injected", func(t *testing.T) {
		if !injection.Injected(meshed) {
			t.Fatalf("pod was not injected: init containers %v, containers %v", names(meshed.Spec.InitContainers), names(meshed.Spec.Containers))
		}
		if injection.Injected(server) {
			t.Errorf("pod in an unmeshed namespace was injected")
		}
		var initDone bool
		for _, s := range meshed.Status.InitContainerStatuses {
			if s.Name == redirect.InitContainerName {
				term := s.State.Terminated
				if term == nil || term.ExitCode != 0 {
					t.Errorf("%s: %+v", s.Name, s.State)
				}
				initDone = term != nil && term.ExitCode == 0
			}
		}
		if !initDone {
			t.Errorf("%s did not exit 0: %+v", redirect.InitContainerName, meshed.Status.InitContainerStatuses)
		}
	})

	t.Run("rules-in-pod-netns-match-plan", func(t *testing.T) {
		cfg, errs := redirect.Effective(injection.MeshSettings(&mc.Spec), meshed.Annotations)
		if len(errs) > 0 {
			t.Fatalf("MeshConfig: %v", errs.ToAggregate())
		}
		plan := redirect.Render(cfg)
		// The init container carries exactly this plan.
		var initC *corev1.Container
		for i := range meshed.Spec.InitContainers {
			if meshed.Spec.InitContainers[i].Name == redirect.InitContainerName {
				initC = &meshed.Spec.InitContainers[i]
			}
		}
		if initC == nil {
			t.Fatal("no init container")
		}
		if !slices.Equal(initC.Args, redirect.InitArgs(plan)) {
			t.Errorf("init container args differ from the plan:\n got %q\nwant %q", initC.Args, redirect.InitArgs(plan))
		}

		pid := k.HostPID(t, meshed, "app")
		for _, fam := range []struct {
			family redirect.Family
			saves  []string
			want   redirect.Ruleset
		}{
			{redirect.IPv4, []string{"iptables-save", "iptables-legacy-save"}, plan.IPv4},
			{redirect.IPv6, []string{"ip6tables-save", "ip6tables-legacy-save"}, plan.IPv6},
		} {
			text, tool := natTable(t, pid, fam.saves)
			if text == "" {
				if fam.family == redirect.IPv6 && !podHasIPv6(t, pid) {
					t.Logf("%s: the pod has no IPv6; no IPv6 rules, as planned", fam.family)
					continue
				}
				t.Errorf("%s: no meshkeeper rules in the pod's network namespace (tried %v)", fam.family, fam.saves)
				continue
			}
			got, err := redirect.Parse([]byte(text))
			if err != nil {
				t.Fatalf("%s: parsing %s output: %v\n%s", fam.family, tool, err, text)
			}
			actual := got.IPv4
			if fam.family == redirect.IPv6 {
				actual = got.IPv6
			}
			if actual == nil {
				t.Fatalf("%s: %s output has no %s rules:\n%s", fam.family, tool, fam.family, text)
			}
			// By meaning: the exclusion sets the rules implement are the configuration's.
			only := &redirect.Parsed{IPv4: actual}
			if fam.family == redirect.IPv6 {
				only = &redirect.Parsed{IPv6: actual}
			}
			if d := redirect.Diff(familyExclusions(cfg.Exclusions(), fam.family), only.Exclusions()); !d.Empty() {
				t.Errorf("%s: rules in the pod differ from the plan: %s", fam.family, d)
			}
			// Rule by rule, in kernel order, for every chain the plan writes.
			for _, ch := range fam.want.Chains {
				have := actual.Chain(ch.Name)
				if have == nil {
					t.Errorf("%s: chain %s missing", fam.family, ch.Name)
					continue
				}
				if w, h := ruleStrings(ch.Rules), ruleStrings(have.Rules); !slices.Equal(w, h) {
					t.Errorf("%s: chain %s:\n got %q\nwant %q", fam.family, ch.Name, h, w)
				}
			}
			t.Logf("%s: %d rules read with `nsenter -t %s -n %s -t nat` match the plan", fam.family, fam.want.RuleCount(), pid, tool)
		}
	})

	serverIP, meshedIP := server.Status.PodIP, meshed.Status.PodIP
	t.Run("outbound-through-standin", func(t *testing.T) {
		dst := net.JoinHostPort(serverIP, strconv.Itoa(plainPort))
		dialFromPod(t, meshed, dst)
		if !slices.ContainsFunc(standinRecords(t, meshed), func(r record) bool {
			return r.Direction == "outbound" && r.OriginalDestination == dst && r.Error == ""
		}) {
			t.Errorf("the stand-in sidecar did not proxy the connection to %s: %+v", dst, standinRecords(t, meshed))
		}
	})

	t.Run("outbound-excluded-port-bypasses", func(t *testing.T) {
		dst := net.JoinHostPort(serverIP, strconv.Itoa(outboundExcludedPort))
		dialFromPod(t, meshed, dst)
		if slices.ContainsFunc(standinRecords(t, meshed), func(r record) bool { return r.OriginalDestination == dst }) {
			t.Errorf("a connection to excluded port %d went through the sidecar", outboundExcludedPort)
		}
	})

	t.Run("inbound-through-standin", func(t *testing.T) {
		dst := net.JoinHostPort(meshedIP, strconv.Itoa(plainPort))
		a := dialFromHost(t, dst)
		// The sidecar hands the connection to the app from loopback.
		if host, _, _ := net.SplitHostPort(a.Peer); host != "127.0.0.1" {
			t.Errorf("the app saw the connection from %s, not from the sidecar on loopback", a.Peer)
		}
		if !slices.ContainsFunc(standinRecords(t, meshed), func(r record) bool {
			return r.Direction == "inbound" && r.OriginalDestination == dst && r.Error == ""
		}) {
			t.Errorf("the stand-in sidecar did not proxy the inbound connection to %s", dst)
		}
	})

	t.Run("inbound-excluded-port-bypasses", func(t *testing.T) {
		dst := net.JoinHostPort(meshedIP, strconv.Itoa(inboundExcludedPort))
		a := dialFromHost(t, dst)
		if host, _, _ := net.SplitHostPort(a.Peer); host == "127.0.0.1" {
			t.Errorf("a connection to excluded inbound port %d reached the app through the sidecar", inboundExcludedPort)
		}
		if slices.ContainsFunc(standinRecords(t, meshed), func(r record) bool { return r.OriginalDestination == dst }) {
			t.Errorf("a connection to excluded inbound port %d went through the sidecar", inboundExcludedPort)
		}
	})
}

func names(cs []corev1.Container) []string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return n
}

func ruleStrings(rules []redirect.Rule) []string {
	s := make([]string, len(rules))
	for i := range rules {
		s[i] = rules[i].String()
	}
	return s
}

// familyExclusions keeps the address ranges of one family: each family's rules only carry
// their own ranges.
func familyExclusions(ex redirect.Exclusions, f redirect.Family) redirect.Exclusions {
	keep := func(in []netip.Prefix) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range in {
			if p.Addr().Is4() == (f == redirect.IPv4) {
				out = append(out, p)
			}
		}
		return out
	}
	ex.OutboundIPRanges = keep(ex.OutboundIPRanges)
	ex.OutboundIPRangeInclusions = keep(ex.OutboundIPRangeInclusions)
	return ex
}

// natTable reads the nat table of the process's network namespace from the host, with the
// first save tool whose output holds meshkeeper's chains (the init container picks the
// iptables backend the node uses).
func natTable(t *testing.T, pid string, tools []string) (string, string) {
	t.Helper()
	for _, tool := range tools {
		out, err := k.TryRun("nsenter", "-t", pid, "-n", tool, "-t", "nat")
		if err == nil && strings.Contains(out, redirect.ChainInbound) {
			return out, tool
		}
	}
	return "", ""
}

func podHasIPv6(t *testing.T, pid string) bool {
	t.Helper()
	out, err := k.TryRun("nsenter", "-t", pid, "-n", "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6")
	return err == nil && strings.TrimSpace(out) == "0"
}

// dialFromPod connects from the meshed pod's app container (so through its rules) and expects
// the server's answer. The sidecar may still be starting: retry for a while.
func dialFromPod(t *testing.T, p *corev1.Pod, dst string) {
	t.Helper()
	e2eutil.Eventually(t, "connection from "+p.Name+" to "+dst, 30*time.Second, func() (bool, string) {
		out, err := k.TryRun("kubectl", "exec", "-n", p.Namespace, p.Name, "-c", "app", "--", "/testapp", "dial", dst)
		if err != nil {
			return false, err.Error()
		}
		var a answer
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			return false, out
		}
		return true, ""
	})
}

// dialFromHost connects from the node to a pod address inside the cluster's pod range.
func dialFromHost(t *testing.T, dst string) answer {
	t.Helper()
	var a answer
	e2eutil.Eventually(t, "connection from the node to "+dst, 30*time.Second, func() (bool, string) {
		c, err := net.DialTimeout("tcp", dst, 5*time.Second)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return false, err.Error()
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			return false, line
		}
		return true, ""
	})
	return a
}

func standinRecords(t *testing.T, p *corev1.Pod) []record {
	t.Helper()
	out := k.Kubectl(t, "exec", "-n", p.Namespace, p.Name, "-c", "app", "--", "/testapp", "get", standinAdmin)
	var rs []record
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("stand-in records: %v\n%s", err, out)
	}
	return rs
}
