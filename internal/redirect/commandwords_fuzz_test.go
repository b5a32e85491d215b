package redirect

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzCommandWords: any pasted line is split into words or refused with a positioned
// *ParseError, never a panic; what is split comes back the same when each word is quoted
// again, so the words are what a shell would have passed.
func FuzzCommandWords(f *testing.F) {
	f.Add(`-p 15001 -u 1337 -m REDIRECT -i '*' -x "" -b 9080 -d ""` + "\n")
	f.Add(`istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020 --log_output_level=default:info`)
	f.Add(`osm-init -c "iptables-restore --noflush <<EOF"`)
	f.Add(`a\ b "c\"d" 'e'\''f' -d $POD_IP "$POD_IP:15003"`)
	f.Add("istio-iptables -p 1 && rm -rf /")
	f.Add("echo $(id) `id` ${X}")
	f.Add("a; b\nc | d")
	f.Add(`"unterminated`)
	f.Fuzz(func(t *testing.T, line string) {
		words, err := CommandWords(line)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T without a position: %v", err, err)
			}
			if pe.Line < 1 || pe.Column < 1 || pe.Msg == "" {
				t.Fatalf("bad position or message: %+v", pe)
			}
			return
		}
		if len(words) == 0 {
			t.Fatal("accepted with no words")
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := CommandWords(strings.Join(quoted, " "))
		if err != nil {
			t.Fatalf("the words %q, quoted again, are refused: %v", words, err)
		}
		if !reflect.DeepEqual(again, words) {
			t.Fatalf("quoted again %q reads as %q", words, again)
		}
	})
}
