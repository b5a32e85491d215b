package initrunner

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Backend is one flavour of the iptables tools. Nodes run either the nf_tables or the legacy
// x_tables kernel interface (or both, which is the dangerous case: rules loaded through the
// wrong one are invisible to the other and may be evaluated in an unexpected order), so the
// init container must use whichever the node already uses.
type Backend struct {
	Name    string
	restore [2]string
	save    [2]string
}

// Restore is the iptables-restore program of the family.
func (b Backend) Restore(f Family) string { return b.restore[familyIndex(f)] }

// Save is the iptables-save program of the family.
func (b Backend) Save(f Family) string { return b.save[familyIndex(f)] }

func familyIndex(f Family) int {
	if f == IPv6 {
		return 1
	}
	return 0
}

// Backend names accepted by --backend.
const (
	BackendAuto   = "auto"
	BackendNFT    = "nft"
	BackendLegacy = "legacy"
	// backendPlain is the unsuffixed iptables-restore, used only when a node image ships
	// neither suffixed variant.
	backendPlain = "iptables"
)

var (
	nftBackend = Backend{Name: BackendNFT,
		restore: [2]string{"iptables-nft-restore", "ip6tables-nft-restore"},
		save:    [2]string{"iptables-nft-save", "ip6tables-nft-save"}}
	legacyBackend = Backend{Name: BackendLegacy,
		restore: [2]string{"iptables-legacy-restore", "ip6tables-legacy-restore"},
		save:    [2]string{"iptables-legacy-save", "ip6tables-legacy-save"}}
	plainBackend = Backend{Name: backendPlain,
		restore: [2]string{"iptables-restore", "ip6tables-restore"},
		save:    [2]string{"iptables-save", "ip6tables-save"}}
)

// probe is what one backend showed about the existing ruleset.
type probe struct {
	backend Backend
	ok      bool // its IPv4 save ran
	rules   int  // rules it lists, both families
	detail  string
}

// SelectBackend picks the backend to use.
//
// With nft or legacy the choice is the caller's and only the presence of the tools is checked.
// With auto the heuristic is:
//  1. run iptables-nft-save and iptables-legacy-save (and the ip6tables ones when installed) on
//     the pod's network namespace and count the rules each lists in any table;
//  2. if one backend lists rules and the other none, use it: something on this node already
//     programs that interface (a CNI plugin, a previous init run, another mesh);
//  3. if both list rules, use the one listing more (nft on a tie) and log a warning, since the
//     node mixes both;
//  4. if neither lists rules (the normal case in a fresh pod), use the first whose save ran
//     successfully, nft before legacy: nft is what current distributions default to, and its
//     save fails outright on kernels without nf_tables;
//  5. if neither suffixed variant is installed, fall back to plain iptables-restore.
//
// Save commands only read, so probing never changes the ruleset.
func SelectBackend(ctx context.Context, ex Executor, mode string, log io.Writer) (Backend, error) {
	switch mode {
	case BackendNFT:
		return nftBackend, requireTools(ex, nftBackend)
	case BackendLegacy:
		return legacyBackend, requireTools(ex, legacyBackend)
	case BackendAuto, "":
	default:
		return Backend{}, fmt.Errorf("--backend %q is not one of auto, nft, legacy", clip(mode))
	}
	var probes []probe
	var notes []string
	for _, b := range []Backend{nftBackend, legacyBackend} {
		if requireTools(ex, b) != nil {
			notes = append(notes, b.Name+": not installed")
			continue
		}
		p := probeBackend(ctx, ex, b)
		notes = append(notes, b.Name+": "+p.detail)
		probes = append(probes, p)
	}
	fmt.Fprintf(log, "backend probe: %s\n", strings.Join(notes, "; "))
	var best *probe
	withRules := 0
	for i := range probes {
		p := &probes[i]
		if !p.ok || p.rules == 0 {
			continue
		}
		withRules++
		if best == nil || p.rules > best.rules {
			best = p
		}
	}
	if withRules > 1 {
		fmt.Fprintf(log, "warning: both nft and legacy iptables hold rules on this node; using %s, which holds more\n", best.backend.Name)
	}
	if best != nil {
		return best.backend, nil
	}
	for _, p := range probes {
		if p.ok {
			return p.backend, nil
		}
	}
	if len(probes) == 0 && requireTools(ex, plainBackend) == nil {
		fmt.Fprintf(log, "neither iptables-nft nor iptables-legacy is installed; using plain iptables-restore\n")
		return plainBackend, nil
	}
	return Backend{}, fmt.Errorf("no usable iptables backend (%s)", strings.Join(notes, "; "))
}

func requireTools(ex Executor, b Backend) error {
	for _, name := range []string{b.Restore(IPv4), b.Save(IPv4)} {
		if _, err := ex.LookPath(name); err != nil {
			return fmt.Errorf("backend %s: %s not found in PATH", b.Name, name)
		}
	}
	return nil
}

func probeBackend(ctx context.Context, ex Executor, b Backend) probe {
	p := probe{backend: b}
	res, err := ex.Run(ctx, Command{Name: b.Save(IPv4)})
	if err != nil {
		p.detail = fmt.Sprintf("%s failed: %s", b.Save(IPv4), oneLine(err, res.Stderr))
		return p
	}
	p.ok = true
	p.rules = countRules(res.Stdout)
	if _, err := ex.LookPath(b.Save(IPv6)); err == nil {
		if res6, err := ex.Run(ctx, Command{Name: b.Save(IPv6)}); err == nil {
			p.rules += countRules(res6.Stdout)
		}
	}
	p.detail = fmt.Sprintf("%d rules", p.rules)
	return p
}

func countRules(save []byte) int {
	n := 0
	for _, line := range strings.Split(string(save), "\n") {
		if strings.HasPrefix(line, "-A ") {
			n++
		}
	}
	return n
}

// oneLine folds an exec error and the program's stderr into one log-friendly line.
func oneLine(err error, stderr []byte) string {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(string(stderr), "\n", "; ")), " ")
	msg = strings.Trim(msg, "; ")
	if len(msg) > 600 {
		msg = msg[:600] + "..."
	}
	if msg == "" {
		return err.Error()
	}
	return fmt.Sprintf("%v: %s", err, msg)
}
