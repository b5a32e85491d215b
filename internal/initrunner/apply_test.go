package initrunner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/golden"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// fakeExec records every command and answers from a table keyed by "name arg arg".
type fakeExec struct {
	installed map[string]bool
	out       map[string]string // stdout per command line
	fail      map[string]string // stderr per failing command line
	calls     []Command
}

func (f *fakeExec) LookPath(name string) (string, error) {
	if f.installed[name] {
		return "/usr/sbin/" + name, nil
	}
	return "", errors.New("not found")
}

func (f *fakeExec) Run(_ context.Context, c Command) (Result, error) {
	f.calls = append(f.calls, c)
	key := strings.Join(append([]string{c.Name}, c.Args...), " ")
	if msg, ok := f.fail[key]; ok {
		return Result{Stderr: []byte(msg)}, errors.New("exit status 1")
	}
	return Result{Stdout: []byte(f.out[key])}, nil
}

func (f *fakeExec) argvs() []string {
	var out []string
	for _, c := range f.calls {
		out = append(out, strings.Join(append([]string{c.Name}, c.Args...), " "))
	}
	return out
}

func allInstalled() map[string]bool {
	m := map[string]bool{}
	for _, b := range []Backend{nftBackend, legacyBackend, plainBackend} {
		for _, f := range []Family{IPv4, IPv6} {
			m[b.Restore(f)], m[b.Save(f)] = true, true
		}
	}
	return m
}

// fakeProc builds a /proc tree with or without IPv6.
func fakeProc(t *testing.T, ifInet6 bool, disable string) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "proc/net"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "proc/sys/net/ipv6/conf/all"), 0o755))
	if ifInet6 {
		must(os.WriteFile(filepath.Join(root, "proc/net/if_inet6"), nil, 0o644))
	}
	if disable != "" {
		must(os.WriteFile(filepath.Join(root, "proc/sys/net/ipv6/conf/all/disable_ipv6"), []byte(disable+"\n"), 0o644))
	}
	return root
}

const v6Rules = "*nat\n:OSM_PROXY_OUTBOUND - [0:0]\n-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND\n-A OSM_PROXY_OUTBOUND -d 2001:db8:1::/64 -j RETURN\nCOMMIT\n"

func TestApplyExecsRestoreWithStdin(t *testing.T) {
	ex := &fakeExec{installed: allInstalled(), out: map[string]string{}}
	var log bytes.Buffer
	err := Apply(context.Background(), Options{
		Backend: BackendAuto, IPv4Rules: validV4, IPv6Rules: v6Rules,
		PodIPEnv: "", ProcRoot: fakeProc(t, true, "0"), Exec: ex, Log: &log,
	})
	if err != nil {
		t.Fatalf("Apply: %v\n%s", err, log.String())
	}
	want := []string{
		"iptables-nft-save", "ip6tables-nft-save",
		"iptables-legacy-save", "ip6tables-legacy-save",
		"iptables-nft-save -t nat", "iptables-nft-restore --noflush",
		"ip6tables-nft-save -t nat", "ip6tables-nft-restore --noflush",
	}
	if got := ex.argvs(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range ex.calls {
		if strings.HasSuffix(c.Name, "-restore") {
			if !bytes.HasPrefix(c.Stdin, []byte("*nat\n")) || !bytes.HasSuffix(c.Stdin, []byte("COMMIT\n")) {
				t.Errorf("%s stdin is not one nat transaction:\n%s", c.Name, c.Stdin)
			}
		} else if c.Stdin != nil {
			t.Errorf("%s got stdin", c.Name)
		}
	}
	v6in := string(ex.calls[7].Stdin)
	if !strings.Contains(v6in, "-A OSM_PROXY_OUTBOUND -d 2001:db8:1::/64 -j RETURN\n") {
		t.Errorf("IPv6 restore input lacks the IPv6 rule:\n%s", v6in)
	}
}

func TestApplySkipsIPv6WhenDisabled(t *testing.T) {
	for name, proc := range map[string]func(t *testing.T) string{
		"disable_ipv6=1":  func(t *testing.T) string { return fakeProc(t, true, "1") },
		"no if_inet6":     func(t *testing.T) string { return fakeProc(t, false, "0") },
		"no ipv6 sysctls": func(t *testing.T) string { return fakeProc(t, false, "") },
	} {
		t.Run(name, func(t *testing.T) {
			ex := &fakeExec{installed: allInstalled()}
			var log bytes.Buffer
			err := Apply(context.Background(), Options{Backend: BackendNFT, IPv4Rules: validV4, IPv6Rules: v6Rules,
				ProcRoot: proc(t), Exec: ex, Log: &log})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range ex.argvs() {
				if strings.HasPrefix(a, "ip6tables") {
					t.Errorf("ran %s although IPv6 is disabled", a)
				}
			}
			if !strings.Contains(log.String(), "skipping the IPv6 rules") {
				t.Errorf("log does not say IPv6 was skipped:\n%s", log.String())
			}
		})
	}
}

func TestApplyValidatesBeforeTouchingAnything(t *testing.T) {
	ex := &fakeExec{installed: allInstalled()}
	err := Apply(context.Background(), Options{Backend: BackendAuto, IPv4Rules: validV4,
		IPv6Rules: "*filter\n-A INPUT -j DROP\nCOMMIT\n", ProcRoot: fakeProc(t, true, "0"), Exec: ex})
	if err == nil || !strings.Contains(err.Error(), `IPv6 rules line 1: table "filter" is not allowed`) {
		t.Fatalf("err = %v", err)
	}
	if len(ex.calls) != 0 {
		t.Errorf("ran %v before the input was validated", ex.argvs())
	}
}

func TestApplyReportsRestoreFailure(t *testing.T) {
	ex := &fakeExec{installed: allInstalled(), fail: map[string]string{
		"iptables-legacy-restore --noflush": "iptables-restore v1.8.9 (legacy): Couldn't load match `owner'\nError occurred at line: 7\n",
	}}
	err := Apply(context.Background(), Options{Backend: BackendLegacy, IPv4Rules: validV4, Exec: ex})
	want := "IPv4 rules: iptables-legacy-restore --noflush failed (backend legacy): exit status 1: iptables-restore v1.8.9 (legacy): Couldn't load match `owner'; Error occurred at line: 7"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
}

func TestApplyPodIP(t *testing.T) {
	rules := "*nat\n:OSM_PROXY_OUTBOUND - [0:0]\n-A OUTPUT -p tcp -d 127.0.0.1/32 -o lo -m owner --uid-owner 1500 -j DNAT --to-destination @POD_IP@\n-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND\nCOMMIT\n"
	tests := []struct {
		name, env, envValue string
		wantErr             string
		wantRule            string
	}{
		{name: "single", env: "POD_IP", envValue: "192.0.2.7", wantRule: "--to-destination 192.0.2.7\n"},
		{name: "dual stack list", env: "POD_IP", envValue: "2001:db8::7,192.0.2.8", wantRule: "--to-destination 192.0.2.8\n"},
		{name: "flag missing", wantErr: "contain the pod IP placeholder @POD_IP@ but --pod-ip-env was not given"},
		{name: "unset", env: "POD_IP", wantErr: "--pod-ip-env POD_IP: the environment variable is empty or unset"},
		{name: "injection", env: "POD_IP", envValue: "1.2.3.4 -j ACCEPT", wantErr: "is not an IP address"},
		{name: "loopback", env: "POD_IP", envValue: "127.0.0.1", wantErr: "not a unicast pod address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := &fakeExec{installed: allInstalled()}
			err := Apply(context.Background(), Options{Backend: BackendNFT, IPv4Rules: rules, PodIPEnv: tc.env,
				Getenv: func(k string) string {
					if k == "POD_IP" {
						return tc.envValue
					}
					return ""
				}, Exec: ex})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if len(ex.calls) != 0 {
					t.Errorf("ran %v despite the error", ex.argvs())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			last := ex.calls[len(ex.calls)-1]
			if !strings.Contains(string(last.Stdin), tc.wantRule) || strings.Contains(string(last.Stdin), "@POD_IP@") {
				t.Errorf("restore input:\n%s\nwant it to contain %q", last.Stdin, tc.wantRule)
			}
		})
	}
}

// TestRestoreInputReplacesEarlierRun checks the transaction built against a nat table holding an
// earlier run: OSM's duplicated hooks, a stale chain, and our PodIP DNAT rule as iptables-save
// prints it. The golden file is the exact stdin of iptables-restore.
func TestRestoreInputReplacesEarlierRun(t *testing.T) {
	current := `# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-OWN - [0:0]
:OSM_PROXY_INBOUND - [0:0]
:OSM_PROXY_OLD - [0:0]
:OSM_PROXY_OUTBOUND - [0:0]
-A PREROUTING -p tcp -j OSM_PROXY_INBOUND
-A PREROUTING -j KUBE-OWN
-A PREROUTING -p tcp -j OSM_PROXY_INBOUND
-A OUTPUT -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1500 -j DNAT --to-destination 192.0.2.7
-A OUTPUT -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1500 -j DNAT --to-destination 192.0.2.99
-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND
-A OSM_PROXY_OLD -j RETURN
-A OSM_PROXY_OUTBOUND -j OSM_PROXY_OLD
COMMIT
`
	rs, err := ValidateRules(IPv4, validV4)
	if err != nil {
		t.Fatal(err)
	}
	got, st := RestoreInput(rs, current)
	if st.DeletedHooks != 4 || strings.Join(st.StaleChains, ",") != "OSM_PROXY_OLD" {
		t.Errorf("stats = %+v, want 4 deleted hooks and stale OSM_PROXY_OLD", st)
	}
	golden.CheckString(t, "restore-replaces-earlier-run.golden", got)
	// The DNAT to another address is not ours to remove; -D positions count down so each
	// deletion leaves the earlier positions valid.
	for _, line := range []string{"-D PREROUTING 3\n-D PREROUTING 1\n", "-D OUTPUT 3\n-D OUTPUT 1\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("missing %q", line)
		}
	}
}

func TestRuleKeyIgnoresSaveNormalisation(t *testing.T) {
	key := func(line string) string {
		k, ok := ruleKey(line)
		if !ok {
			t.Fatalf("ruleKey(%q) did not read the rule", line)
		}
		return k
	}
	a := key("-A OUTPUT -p tcp -d 127.0.0.1 -o lo -m owner --uid-owner 1500 -j DNAT --to-destination 192.0.2.7")
	b := key("-A OUTPUT -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1500 -j DNAT --to-destination 192.0.2.7")
	c := key("-A OUTPUT -d 127.0.0.1/32 -o lo -p tcp -m owner ! --uid-owner 1500 -j DNAT --to-destination 192.0.2.7")
	d := key("-I OUTPUT 1 -p tcp --dport 80 -j OSM_PROXY_OUTBOUND")
	e := key("-A OUTPUT -p tcp -m tcp --dport 80 -j OSM_PROXY_OUTBOUND")
	if a != b {
		t.Errorf("keys differ:\n%s\n%s", a, b)
	}
	if a == c {
		t.Errorf("negation ignored: %s", c)
	}
	if d != e {
		t.Errorf("-m tcp or -I changes the key:\n%s\n%s", d, e)
	}
	if _, ok := ruleKey("-A OUTPUT -m u32 --u32 0x0=0x0 -j OSM_PROXY_OUTBOUND"); ok {
		t.Errorf("a rule outside the grammar got a key")
	}
}

func FuzzRestoreInput(f *testing.F) {
	f.Add("*nat\n:OSM_PROXY_OLD - [0:0]\n-A OUTPUT -p tcp -j OSM_PROXY_OLD\n-A OUTPUT -j KUBE\nCOMMIT\n")
	f.Add("*nat\n-A PREROUTING -j OSM_PROXY_INBOUND\n-A PREROUTING\n:OSM_PROXY_X;y - [0:0]\n")
	rs, err := ValidateRules(IPv4, validV4)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, current string) {
		got, _ := RestoreInput(rs, current)
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if lines[0] != "*nat" || lines[len(lines)-1] != "COMMIT" {
			t.Fatalf("not one nat transaction:\n%s", got)
		}
		for _, l := range lines[1 : len(lines)-1] {
			toks := strings.Fields(l)
			switch toks[0] {
			case "-D":
				if len(toks) != 3 || !redirect.IsBuiltinChain(toks[1]) {
					t.Fatalf("unexpected deletion %q", l)
				}
			case "-F", "-X":
				if len(toks) != 2 || !ourChainRE.MatchString(toks[1]) {
					t.Fatalf("unexpected chain operation %q", l)
				}
			}
		}
		if !strings.HasSuffix(got, strings.Join(rs.Rules, "\n")+"\nCOMMIT\n") {
			t.Fatalf("the new rules are not appended last:\n%s", got)
		}
	})
}
