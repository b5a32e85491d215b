package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshkeeper/meshkeeper/api/scheme"
)

// defaultRequestTimeout bounds each API call when --request-timeout is not given, so that an
// unreachable server produces an error instead of a hang.
const defaultRequestTimeout = 20 * time.Second

// meshFlags locate the MeshConfig and the operator, with the operator's own defaults.
type meshFlags struct {
	meshNamespace, meshConfigName, operatorNamespace, meshName, istioNamespace string
}

func (m *meshFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&m.meshNamespace, "mesh-namespace", "osm-system", "namespace of the MeshConfig")
	fs.StringVar(&m.meshConfigName, "meshconfig-name", "osm-mesh-config", "name of the MeshConfig")
	fs.StringVar(&m.operatorNamespace, "operator-namespace", "meshkeeper-system", "namespace the meshkeeper operator runs in")
	fs.StringVar(&m.meshName, "mesh-name", "osm", "mesh name: namespaces labelled openservicemesh.io/monitored-by=<mesh-name> are meshed")
	fs.StringVar(&m.istioNamespace, "istio-namespace", "istio-system", "namespace of Istio's control plane: its injector values (ConfigMaps istio-sidecar-injector*) and mesh configuration (ConfigMap istio)")
}

// kube is a connection to the cluster.
type kube struct {
	client    client.Client
	clientset kubernetes.Interface
	// namespace is -n, or the kubeconfig context's namespace, or "default".
	namespace string
	host      string
}

func cliScheme() *runtime.Scheme { return scheme.New() }

// connect builds clients from the kubectl-style flags. Nothing is sent to the server yet.
func connect(cf *genericclioptions.ConfigFlags) (*kube, error) {
	// Without any kubeconfig, client-go falls back to http://localhost:8080, which only ever
	// yields a confusing "connection refused": say what is missing instead.
	raw, err := cf.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return nil, kubeconfigError(cf, err)
	}
	inCluster := os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBERNETES_SERVICE_PORT") != ""
	if len(raw.Contexts) == 0 && (cf.APIServer == nil || *cf.APIServer == "") && !inCluster {
		return nil, kubeconfigError(cf, clientcmd.ErrEmptyConfig)
	}
	cfg, err := cf.ToRESTConfig()
	if err != nil {
		return nil, kubeconfigError(cf, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultRequestTimeout
	}
	ns, _, err := cf.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, kubeconfigError(cf, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: cliScheme()})
	if err != nil {
		return nil, apiError(err, cfg.Host, "discover", "API resources", "")
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, &exitError{code: exitCluster, err: err}
	}
	return &kube{client: c, clientset: cs, namespace: ns, host: cfg.Host}, nil
}

func kubeconfigError(cf *genericclioptions.ConfigFlags, err error) error {
	where := "$KUBECONFIG or ~/.kube/config"
	if cf.KubeConfig != nil && *cf.KubeConfig != "" {
		where = *cf.KubeConfig
	}
	switch {
	case clientcmd.IsEmptyConfig(err) || os.IsNotExist(err) || errors.Is(err, os.ErrNotExist):
		return &exitError{code: exitCluster, err: fmt.Errorf("no usable kubeconfig (looked at %s) and not running inside a cluster: pass --kubeconfig FILE or --context NAME, or work offline with --pod FILE --meshconfig FILE (%v)", where, err)}
	case clientcmd.IsConfigurationInvalid(err):
		return &exitError{code: exitCluster, err: fmt.Errorf("kubeconfig %s is invalid: %v; check it with kubectl config view", where, err)}
	}
	return &exitError{code: exitCluster, err: fmt.Errorf("kubeconfig %s: %v", where, err)}
}

// apiError turns an API error into an actionable message: which verb on which resource was
// refused, what was not found, or which server could not be reached.
func apiError(err error, host, verb, resource, namespace string) error {
	in := ""
	nsFlag := ""
	if namespace != "" {
		in = " in namespace " + namespace
		nsFlag = " -n " + namespace
	}
	var msg string
	switch {
	case apierrors.IsForbidden(err):
		msg = fmt.Sprintf("forbidden: your credentials may not %s %s%s (%s); ask for a Role granting %q on %q, and check with: kubectl auth can-i %s %s%s",
			verb, resource, in, apierrors.ReasonForError(err), verb, resource, verb, resource, nsFlag)
		if m := apiStatusMessage(err); m != "" {
			// The API server's message already says "... is forbidden: User ... cannot ...".
			msg = fmt.Sprintf("%s; ask for a Role granting %q on %q%s, and check with: kubectl auth can-i %s %s%s",
				m, verb, resource, in, verb, resource, nsFlag)
		}
	case apierrors.IsUnauthorized(err):
		msg = fmt.Sprintf("the API server at %s rejected the credentials of the current kubeconfig context (%v); log in again or pick another --context", host, err)
	case apierrors.IsNotFound(err):
		msg = fmt.Sprintf("%s%s: %v; list what exists with: kubectl get %s%s", resource, in, err, strings.Fields(resource)[0], nsFlag)
	case meta.IsNoMatchError(err):
		msg = fmt.Sprintf("the cluster does not serve %s (%v); install the CRDs: kubectl apply -k config/crd", resource, err)
	case isUnreachable(err):
		msg = fmt.Sprintf("cannot reach the API server at %s: %v; check --context, --server and --kubeconfig, and that the cluster is running", host, err)
	default:
		msg = fmt.Sprintf("%s %s%s: %v", verb, resource, in, err)
	}
	return &exitError{code: exitCluster, err: errors.New(msg)}
}

// apiStatusMessage is the API server's own explanation of a refusal, or "" when there is none.
func apiStatusMessage(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return ""
	}
	return strings.TrimSpace(status.Status().Message)
}

func isUnreachable(err error) bool {
	var ue *url.Error
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.As(err, &oe) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded)
}

// soft describes a failed optional read in one line, for checks that are then skipped.
func soft(err error, verb, resource string) string {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Sprintf("forbidden to %s %s (check with: kubectl auth can-i %s %s)", verb, resource, verb, resource)
	case meta.IsNoMatchError(err):
		return fmt.Sprintf("the cluster does not serve %s", resource)
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return fmt.Sprintf("cannot %s %s: %s", verb, resource, s)
}
