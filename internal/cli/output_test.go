package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestPaint(t *testing.T) {
	on, off := palette{on: true}, palette{}
	if got := off.paint("fail", 6); got != "fail  " {
		t.Errorf("without colour: %q", got)
	}
	got := on.paint("fail", 6)
	if !strings.HasPrefix(got, "\x1b[31mfail\x1b[0m") || !strings.HasSuffix(got, "  ") {
		t.Errorf("with colour: %q", got)
	}
	if got := on.paint("Injected", 0); got != "Injected" {
		t.Errorf("unknown words stay plain: %q", got)
	}
	if p := paletteFor(&bytes.Buffer{}); p.on {
		t.Error("a buffer is not a terminal")
	}
}
