package netnstest

import (
	"os"
	"strings"
	"testing"
)

func TestLinkListenDial(t *testing.T) {
	Require(t, "setpriv")
	a, b := New(t), New(t)
	Link(t, a, "eth0", []string{"192.0.2.1/24", "2001:db8::1/64"}, b, "eth0", []string{"192.0.2.2/24", "2001:db8::2/64"})
	l := b.Listen("peer:8080", "tcp", ":8080")

	for _, addr := range []string{"192.0.2.2:8080", "[2001:db8::2]:8080"} {
		got, err := a.Dial(addr)
		if err != nil || got != "peer:8080" {
			t.Fatalf("Dial(%s) = %q, %v; want peer:8080", addr, got, err)
		}
	}
	if got, err := a.Dial("192.0.2.2:8081"); err == nil {
		t.Errorf("Dial to a closed port answered %q", got)
	}
	// The listener lives in b only: a has no listener on 8080 of its own.
	if got, err := a.Dial("127.0.0.1:8080"); err == nil {
		t.Errorf("Dial to a's loopback answered %q; the listener leaked out of b", got)
	}
	if got, err := a.Dial("192.0.2.2:8080", AsUID(1500)); err != nil || got != "peer:8080" {
		t.Fatalf("Dial as 1500 = %q, %v", got, err)
	}
	acc := l.Accepted()
	if len(acc) != 3 || !strings.Contains(acc[0].Remote, "192.0.2.1") {
		t.Errorf("accepted %+v, want 3 connections, the first from 192.0.2.1", acc)
	}

	out, err := a.RunAs(1500, 1500, "id", "-u")
	if err != nil || strings.TrimSpace(out) != "1500" {
		t.Errorf("RunAs id -u = %q, %v", out, err)
	}
	if addrs := b.MustRun("ip", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(addrs, "192.0.2.2/24") {
		t.Errorf("b's eth0 lacks its address: %s", addrs)
	}
}

func TestDoLeavesCallerNamespace(t *testing.T) {
	Require(t)
	n := New(t)
	before, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var inside string
	if err := n.Do(func() error {
		var err error
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Readlink("/proc/self/ns/net")
	if inside == before || after != before {
		t.Errorf("namespaces: before %s, inside %s, after %s", before, inside, after)
	}
}
