package redirect

import (
	"strings"
	"testing"
)

func TestParseClusterRanges(t *testing.T) {
	cr, err := ParseClusterRanges([]string{"10.96.0.0/12", " 10.96.0.0/12", "fd00:10:96::/108"}, []string{"10.244.0.0/16"})
	if err != nil || len(cr.ServiceCIDRs) != 2 || len(cr.PodCIDRs) != 1 {
		t.Fatalf("got %+v, %v", cr, err)
	}
	_, err = ParseClusterRanges([]string{"nope"}, []string{"10.244.0.0"})
	if err == nil || !strings.Contains(err.Error(), `Service CIDR "nope"`) || !strings.Contains(err.Error(), `Pod CIDR "10.244.0.0"`) {
		t.Errorf("want both bad values named with their kind, got %v", err)
	}
}
