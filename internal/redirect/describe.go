package redirect

import "strings"

// parseDescribe reads the init containers out of `kubectl describe pod` output, which is what
// OSM's troubleshooting guides show. Under "Init Containers:", each container is a line indented
// by two spaces ending in ':'; its "Command:" and "Args:" are followed by one value per line,
// indented further. describe prints multi-line values (an iptables-restore here-document) over
// several lines, so for `sh -c` every line after "-c" is one script, and for meshkeeper-init a
// line that is not a flag continues the previous value.
func parseDescribe(s string) (*Parsed, error) {
	lines := strings.Split(s, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimRight(l, " \r") == "Init Containers:" {
			start = i + 1
			break
		}
	}
	var cands []Container
	var cur *Container
	var list *[]string
	listIndent := 0
	for i := start; start >= 0 && i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		indent := len(l) - len(strings.TrimLeft(l, " "))
		body := strings.TrimSpace(l)
		switch {
		case indent == 0:
			i = len(lines)
			continue
		case indent == 2 && strings.HasSuffix(body, ":") && !strings.Contains(body, " "):
			cands = append(cands, Container{Name: strings.TrimSuffix(body, ":")})
			cur, list = &cands[len(cands)-1], nil
			continue
		case cur == nil:
			continue
		case list != nil && indent > listIndent:
			text := l[min(len(l), listIndent+2):]
			*list = append(*list, text)
			continue
		}
		list = nil
		switch body {
		case "Command:":
			list, listIndent = &cur.Command, indent
		case "Args:":
			list, listIndent = &cur.Args, indent
		}
	}
	for i := range cands {
		cands[i].Command, cands[i].Args = joinDescribed(cands[i].Command, cands[i].Args)
	}
	return parseCandidates(s, cands, ` under "Init Containers:"`)
}

// joinDescribed rebuilds argv from describe's one-line-per-value listing.
func joinDescribed(cmd, args []string) ([]string, []string) {
	argv := append(append([]string(nil), cmd...), args...)
	if len(argv) >= 3 && argv[1] == "-c" {
		switch argv[0] {
		case "sh", "/bin/sh", "bash", "/bin/bash":
			return argv[:1], []string{"-c", strings.Join(argv[2:], "\n")}
		}
	}
	var out []string
	for _, a := range argv {
		if len(out) > 1 && !strings.HasPrefix(a, "--") && a != InitVerbApply && strings.HasPrefix(out[len(out)-2], "--") &&
			(out[len(out)-2] == InitFlagIPv4Rules || out[len(out)-2] == InitFlagIPv6Rules) {
			out[len(out)-1] += "\n" + a
			continue
		}
		out = append(out, a)
	}
	if len(out) > 0 && len(out[0]) > 0 && out[0][0] == '/' {
		return out[:1], out[1:]
	}
	return nil, out
}
