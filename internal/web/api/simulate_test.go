package api

import (
	"strconv"
	"testing"
)

// TestSimulateCallerIDHeaders: the simulator's answer carries the carrier
// leg's final header values beside the older fields.
func TestSimulateCallerIDHeaders(t *testing.T) {
	e := newEnv(t)
	c := e.customer("sim@example.com", "+15551230031")
	path := func(q string) string {
		return "/api/v1/caller-id/simulate?sip_account=" + strconv.FormatInt(c.first, 10) + "&" + q
	}

	sim := e.do("GET", path("to=%2B442030009999&from=100"), c.token, nil).must(t, 200)
	for k, want := range map[string]any{"caller_id": c.phone, "display_name": "", "rule_id": nil, "reason": "trial", "anonymous": false,
		"from_user": c.phone, "p_asserted_identity": c.phone, "privacy": ""} {
		if got, ok := sim.body[k]; !ok || got != want {
			t.Errorf("trial: %s = %#v, want %#v (%s)", k, got, want, sim.raw)
		}
	}

	e.topUp(c)
	blocked := e.do("POST", "/api/v1/caller-id-rules", c.token, map[string]any{"name": "Hide", "apply_for": "prefix", "prefix": "49", "type": "blocked"}).must(t, 201)
	byCaller := e.do("POST", "/api/v1/caller-id-rules", c.token, map[string]any{"name": "Keep", "apply_for": "prefix", "prefix": "1212", "type": "set_by_caller"}).must(t, 201)
	e.do("PUT", idPath("/api/v1/sip-accounts", c.first, "/caller-id"), c.token, map[string]any{
		"default_number": c.phone, "display_name": "Desk", "rule_ids": []int64{blocked.id(), byCaller.id()},
	}).must(t, 200)

	sim = e.do("GET", path("to=4930123456&from=100&from_display=Bob"), c.token, nil).must(t, 200)
	for k, want := range map[string]any{"caller_id": "anonymous", "display_name": "Anonymous", "rule_id": float64(blocked.id()), "reason": "rule_prefix",
		"anonymous": true, "from_user": "anonymous", "p_asserted_identity": c.phone, "privacy": "id"} {
		if got := sim.body[k]; got != want {
			t.Errorf("blocked: %s = %#v, want %#v (%s)", k, got, want, sim.raw)
		}
	}
	sim = e.do("GET", path("to=12125550100&from=%2B15550001234&from_display=Front"), c.token, nil).must(t, 200)
	for k, want := range map[string]any{"caller_id": "+15550001234", "display_name": "Front", "rule_id": float64(byCaller.id()), "reason": "rule_prefix",
		"anonymous": false, "from_user": "+15550001234", "p_asserted_identity": "+15550001234", "privacy": ""} {
		if got := sim.body[k]; got != want {
			t.Errorf("set_by_caller: %s = %#v, want %#v (%s)", k, got, want, sim.raw)
		}
	}
	sim = e.do("GET", path("to=34912345678"), c.token, nil).must(t, 200)
	for k, want := range map[string]any{"caller_id": c.phone, "display_name": "Desk", "reason": "default", "from_user": c.phone, "p_asserted_identity": c.phone} {
		if got := sim.body[k]; got != want {
			t.Errorf("default: %s = %#v, want %#v (%s)", k, got, want, sim.raw)
		}
	}
}
