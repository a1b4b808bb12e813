package b2bua

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The edge-to-edge hop. An inbound call for a binding that another edge
// holds is sent to that edge, which rings the device over the device's own
// flow (its UDP NAT binding or TCP/TLS/WebSocket connection). The hop
// INVITE carries HopHeader, signed with the cluster's hop key, so that an
// outsider cannot use an edge as a relay to its registered devices: the
// signature covers the SIP account, the contact, the hop's Call-ID and an
// expiry a few seconds ahead.

// HopHeader names the signed hop header:
// "<account id>;c=<contact, base64url>;exp=<unix s>;sig=<base64url HMAC-SHA256>".
const HopHeader = "X-Sipdesk-Hop"

// hopLife is how long a hop's signature is good for (clock skew between
// edges included).
const hopLife = 30 * time.Second

// hop is a verified hop: the binding the holding edge is asked to ring.
type hop struct {
	account int64
	contact string
}

func hopMAC(key []byte, account int64, contact, callID string, exp int64) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strconv.FormatInt(account, 10) + "\n" + contact + "\n" + callID + "\n" + strconv.FormatInt(exp, 10)))
	return m.Sum(nil)
}

// signHop adds the hop header to a leg (its Call-ID set first).
func signHop(key []byte, r *sip.Request, account int64, contact string, now time.Time) {
	if r.CallID() == nil {
		id := sip.CallIDHeader(sip.GenerateTagN(24))
		r.AppendHeader(&id)
	}
	exp := now.Add(hopLife).Unix()
	sig := hopMAC(key, account, contact, r.CallID().Value(), exp)
	r.AppendHeader(sip.NewHeader(HopHeader, strconv.FormatInt(account, 10)+
		";c="+base64.RawURLEncoding.EncodeToString([]byte(contact))+
		";exp="+strconv.FormatInt(exp, 10)+
		";sig="+base64.RawURLEncoding.EncodeToString(sig)))
}

// verifyHop checks a hop header of req: well formed, signed with key for
// this Call-ID, not expired and not dated too far ahead.
func verifyHop(key []byte, req *sip.Request, v string, now time.Time) (hop, bool) {
	if len(key) == 0 || req.CallID() == nil {
		return hop{}, false
	}
	parts := strings.Split(v, ";")
	if len(parts) != 4 {
		return hop{}, false
	}
	account, err := strconv.ParseInt(strings.TrimSpace(parts[0]), 10, 64)
	if err != nil {
		return hop{}, false
	}
	kv := map[string]string{}
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return hop{}, false
		}
		kv[k] = val
	}
	contact, err1 := base64.RawURLEncoding.DecodeString(kv["c"])
	sig, err2 := base64.RawURLEncoding.DecodeString(kv["sig"])
	exp, err3 := strconv.ParseInt(kv["exp"], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return hop{}, false
	}
	if t := time.Unix(exp, 0); t.Before(now) || t.After(now.Add(2*hopLife)) {
		return hop{}, false
	}
	if !hmac.Equal(sig, hopMAC(key, account, string(contact), req.CallID().Value(), exp)) {
		return hop{}, false
	}
	return hop{account: account, contact: string(contact)}, true
}
