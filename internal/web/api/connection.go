package api

import (
	"net/http"
	"strconv"

	"github.com/sipdesk/sipdesk"
)

// getConnection answers how to connect devices and PBXs: the SIP domain,
// host, transports and registration interval, and per SIP account (all,
// or ?sip_account=<id>) the masked username or the addresses and dialing
// format, with ready-to-paste settings whose secrets are placeholders.
func (a *API) getConnection(w http.ResponseWriter, r *http.Request, c caller) error {
	var id int64
	if v := r.URL.Query().Get("sip_account"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return sipdesk.FieldError("sip_account", "must be a SIP account id")
		}
		id = n
	}
	conn, err := a.svc.Connection(r.Context(), c.id, id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, conn)
}
