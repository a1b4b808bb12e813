package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestHopSignature: a hop is accepted only with the cluster's key, for the
// Call-ID it was signed for, unaltered and before its expiry.
func TestHopSignature(t *testing.T) {
	key, now := []byte("cluster hop key 0123456789abcdef"), time.Now()
	contact := "sip:alice@192.0.2.20:5062;transport=tcp"
	leg := func() (*sip.Request, string) {
		r := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "alice", Host: "192.0.2.20"})
		signHop(key, r, 42, contact, now)
		return r, r.GetHeader(HopHeader).Value()
	}
	r, v := leg()
	h, ok := verifyHop(key, r, v, now)
	if !ok || h.account != 42 || h.contact != contact {
		t.Fatalf("valid hop: %+v %v", h, ok)
	}
	other, _ := leg() // another Call-ID
	for name, c := range map[string]struct {
		req *sip.Request
		v   string
		key []byte
		at  time.Time
	}{
		"other key":       {r, v, []byte("another key"), now},
		"no key":          {r, v, nil, now},
		"other Call-ID":   {other, v, key, now},
		"expired":         {r, v, key, now.Add(hopLife + time.Second)},
		"other account":   {r, "43" + v[2:], key, now},
		"altered contact": {r, strings.Replace(v, ";c=", ";c=AA", 1), key, now},
		"garbage":         {r, "hello", key, now},
	} {
		if _, ok := verifyHop(c.key, c.req, c.v, c.at); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}
