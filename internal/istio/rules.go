package istio

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// ContainerSettings reads the istio-iptables settings of an init container; ok is false when
// the container is not Istio's (neither named istio-init nor running istio-iptables), so
// callers can try the other meshes' readers.
func ContainerSettings(name string, command, args []string) (s Settings, ok bool, err error) {
	argv := append(append(make([]string, 0, len(command)+len(args)), command...), args...)
	if name != InitContainerName && name != ValidationContainerName && !runsIstioIptables(argv) {
		return Settings{}, false, nil
	}
	s, err = ParseArgs(argv)
	return s, true, err
}

// runsIstioIptables is true for argv whose program is istio-iptables (or pilot-agent's
// subcommand); bare flags alone are only trusted in a container named istio-init.
func runsIstioIptables(argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	switch path.Base(argv[0]) {
	case "istio-iptables", "istio-iptables.sh":
		return true
	case "pilot-agent":
		return len(argv) > 1 && argv[1] == "istio-iptables"
	}
	return false
}

// PodRules are the rules an Istio pod runs: rendered from its istio-init arguments, or, where
// istio-cni wrote them, from the annotations the plugin reads. source names them in messages.
func PodRules(pod *corev1.Pod) (p *redirect.Parsed, source string, err error) {
	c, shape := RedirectionContainer(pod)
	var s Settings
	switch shape {
	case InitContainer:
		if s, _, err = ContainerSettings(c.Name, c.Command, c.Args); err != nil {
			return nil, "", fmt.Errorf("init container %s of pod %s/%s: %w", c.Name, pod.Namespace, pod.Name, err)
		}
		source = "init container " + c.Name + " (istio-iptables arguments)"
	case CNI:
		if s, err = CNISettings(pod.Annotations, ProxyUID(pod)); err != nil {
			return nil, "", fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		source = "the pod's annotations, as istio-cni reads them"
	default:
		return nil, "", nil
	}
	p, err = Parsed(s, containerName(c))
	return p, source, err
}

func containerName(c *corev1.Container) string {
	if c == nil {
		return ""
	}
	return c.Name
}

// ReadCommandLine reads istio-iptables arguments pasted as one shell command line (from a pod
// spec, `ps` or a log); ok is false when the line does not run istio-iptables.
func ReadCommandLine(line string) (p *redirect.Parsed, ok bool, err error) {
	t := strings.TrimSpace(line)
	if t == "" || strings.Contains(t, "\n") {
		return nil, false, nil
	}
	words, err := redirect.CommandWords(t)
	if err != nil || !LooksLikeArgs(words) {
		return nil, false, nil
	}
	if strings.HasPrefix(words[0], "-") && !hasIstioFlag(words) {
		return nil, false, nil
	}
	s, err := ParseArgs(words)
	if err != nil {
		return nil, true, err
	}
	p, err = Parsed(s, "")
	return p, true, err
}

// hasIstioFlag tells bare istio-iptables flags from another program's: -p with -u or -z or -m.
func hasIstioFlag(words []string) bool {
	seen := map[string]bool{}
	for _, w := range words {
		seen[w] = true
	}
	return seen["-p"] && (seen["-u"] || seen["-z"] || seen["-m"])
}
