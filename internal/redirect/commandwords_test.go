package redirect

import (
	"reflect"
	"testing"
)

func TestCommandWords(t *testing.T) {
	got, err := CommandWords(`-p 15001 -u 1337 -m REDIRECT -i '*' -x "" -b 9080 -d ""` + "\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-p", "15001", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "9080", "-d", ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	for _, bad := range []string{"istio-iptables -p 1 && rm -rf /", "a; b", "echo $(id)", "", "a\nb"} {
		if _, err := CommandWords(bad); err == nil {
			t.Errorf("CommandWords(%q) accepted", bad)
		}
	}
}
