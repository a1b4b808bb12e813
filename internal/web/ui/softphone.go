package ui

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sipdesk/sipdesk"
)

type softphoneView struct {
	Page
	Row       accountRow
	WSURL     string // SIP over WebSocket URL of the edge; "" when off
	SIPURI    string // sip:<username>@<realm>
	Token     string // short-lived JWT (token.PortalTTL)
	ExpiresAt time.Time
	Error     string // why the softphone cannot start, in words
	Keys      []string
}

// softphone is the dial icon's target: the browser softphone of a
// JWT-enabled SIP account. The page gets a 10-minute token minted with the
// account's secret (svc.SoftphoneToken) and the edge's WebSocket URL;
// softphone.js registers with JsSIP (authorization_jwt) and fetches a new
// token from this same URL (Accept: application/json) before it expires.
func (u *UI) softphone(q *request) error {
	id, err := strconv.ParseInt(q.r.URL.Query().Get("account"), 10, 64)
	if err != nil || id <= 0 {
		return sipdesk.Errorf(sipdesk.ENotFound, "not found")
	}
	a, err := u.svc.SIPAccount(q.ctx(), q.customer.ID, id)
	if err != nil {
		return err
	}
	v := &softphoneView{Page: u.page(q, "Softphone", "sip"), Row: rowOf(a), WSURL: u.opt.SoftphoneWS,
		SIPURI: "sip:" + a.Username + "@" + u.svc.Realm(), Keys: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"}}
	switch {
	case !a.JWTEnabled:
	case v.WSURL == "":
		v.Error = "The softphone is not available on this service yet: ask your provider to turn on SIP over WebSocket."
	default:
		v.Token, v.ExpiresAt, err = u.svc.SoftphoneToken(q.ctx(), q.customer.ID, id)
		if err != nil {
			v.Error = "No softphone token: " + sipdesk.ErrorMessage(err)
		}
	}
	if q.r.Header.Get("Accept") == "application/json" {
		w := q.w
		w.Header().Set("Content-Type", "application/json")
		if v.Token == "" {
			w.WriteHeader(http.StatusConflict)
			return json.NewEncoder(w).Encode(map[string]string{"error": v.Error})
		}
		return json.NewEncoder(w).Encode(map[string]any{"token": v.Token, "expires_at": v.ExpiresAt.UTC().Format(time.RFC3339)})
	}
	// The page talks to the edge's WebSocket and plays the call's audio.
	connect := "'self'"
	if ws, err := url.Parse(v.WSURL); err == nil && ws.Host != "" {
		connect += " " + ws.Scheme + "://" + ws.Host
	}
	q.w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+q.nonce+"'; style-src 'self'; "+
		"img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src "+connect+"; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	u.render(q, http.StatusOK, "softphone.html", v)
	return nil
}
