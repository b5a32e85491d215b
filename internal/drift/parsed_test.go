package drift

import (
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Rules read from elsewhere (iptables-save inside the pod) are judged like the init container's.
func TestCheckParsedExclusionsInSync(t *testing.T) {
	pod := makePod("web").Sidecar().OSMInit(fixture(t, "seed001-basic.sh")).Obj()
	ranges, err := redirect.Parse([]byte(fixture(t, "seed001-ranges.sh")))
	if err != nil {
		t.Fatal(err)
	}
	mc := meshConfig(5, ipExclusions("1.1.1.1/32", "2.2.2.2/24"))
	if v := CheckParsedExclusionsInSync(gather(pod, mc), ranges, "iptables-save"); v.Reason != conditions.InSync || v.Failed() {
		t.Errorf("ranges rendered: %s %s", v.Reason, v.Message)
	}
	// The init container itself still lacks them: the two sources disagree, as they should.
	if v := CheckExclusionsInSync(gather(pod, mc)); v.Reason != conditions.Drifted || !v.Failed() {
		t.Errorf("init container: %s", v.Reason)
	}
	mc = meshConfig(6, ipExclusions("1.1.1.1/32"))
	v := CheckParsedExclusionsInSync(gather(pod, mc), ranges, "iptables-save")
	reason, msg, failed := v.Reason, v.Message, v.Failed()
	if reason != conditions.Drifted || !failed || !strings.Contains(msg, "outbound IP range 2.2.2.0/24 is in the iptables-save rules") {
		t.Errorf("range removed: %s %s", reason, msg)
	}
	mc = meshConfig(7, ipExclusions("999.1.1.1/32"))
	if v := CheckParsedExclusionsInSync(gather(pod, mc), ranges, "iptables-save"); v.Reason != conditions.InvalidSpec || v.Failed() {
		t.Errorf("invalid MeshConfig: %s", v.Reason)
	}
}
