package istio

import (
	"strings"
	"testing"
)

// TestProxyUIDOutOfRange: a pod read offline can carry a runAsUser no API server would have
// accepted; the readers refuse it by name instead of rendering rules iptables cannot hold.
func TestProxyUIDOutOfRange(t *testing.T) {
	for _, uid := range []int64{-34, MaxID + 1} {
		if _, err := CNISettings(map[string]string{}, uid); err == nil || !strings.Contains(err.Error(), "proxy UID") {
			t.Errorf("CNISettings with UID %d: %v", uid, err)
		}
		_, errs := Expected(DefaultValues(), nil, uid)
		if len(errs) != 1 || errs[0].Field != "spec.containers[istio-proxy].securityContext.runAsUser" {
			t.Errorf("Expected with UID %d: %v", uid, errs)
		}
	}
	if _, err := CNISettings(map[string]string{}, MaxID); err != nil {
		t.Errorf("CNISettings with UID %d: %v", MaxID, err)
	}
}
