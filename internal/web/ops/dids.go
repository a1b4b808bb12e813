package ops

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// DIDs: every operator lists and searches them; admins assign a number to
// a SIP account and unassign it (app.Service.OpsAssignDID, OpsUnassignDID).

func (c *Console) registerDIDs(mux *http.ServeMux) {
	c.pages["dids"] = template.Must(template.New("").Funcs(funcs).ParseFS(templatesFS, "templates/layout.html", "templates/dids.html"))
	c.auth(mux, "GET /ops/dids", c.dids)
	c.auth(mux, "POST /ops/dids", c.assignDID)
	c.auth(mux, "POST /ops/dids/unassign", c.unassignDID)
}

func (c *Console) dids(q *request) error {
	query := q.r.URL.Query().Get("q")
	ds, err := c.svc.OpsDIDs(q.ctx(), q.op, query)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "dids", "DIDs", "dids", map[string]any{"Q": query, "DIDs": ds})
	return nil
}

// didsPage is where a DID form returns to: the list, searched for the number.
func didsPage(number string) string {
	return "/ops/dids?q=" + url.QueryEscape(number)
}

func (c *Console) assignDID(q *request) error {
	sid, err := strconv.ParseInt(strings.TrimSpace(q.r.PostFormValue("sip_account_id")), 10, 64)
	if err != nil {
		return sipdesk.FieldError("sip_account_id", "must be a SIP account id (a whole number)")
	}
	d, err := c.svc.OpsAssignDID(q.ctx(), q.op, q.r.PostFormValue("number"), sid)
	if err != nil {
		return err
	}
	return c.redirect(q, didsPage(d.Number), d.Number+" now rings SIP account "+strconv.FormatInt(d.SIPAccountID, 10)+".")
}

func (c *Console) unassignDID(q *request) error {
	d, err := c.svc.OpsUnassignDID(q.ctx(), q.op, q.r.PostFormValue("number"))
	if err != nil {
		return err
	}
	return c.redirect(q, "/ops/dids", d.Number+" is unassigned.")
}

// The operator API's DID routes.

func (a *api) routeDIDs() {
	a.route("GET /dids", a.listDIDs)
	a.route("POST /dids", a.assignDID)
	a.route("DELETE /dids/{number}", a.unassignDID)
}

type didJSON struct {
	Number         string `json:"number"`
	SIPAccountID   int64  `json:"sip_account_id"`
	SIPAccountName string `json:"sip_account_name"`
	CustomerID     int64  `json:"customer_id"`
	CustomerEmail  string `json:"customer_email"`
}

func didView(d *app.OpsDID) didJSON {
	return didJSON{d.Number, d.SIPAccountID, d.SIPAccountName, d.CustomerID, d.CustomerEmail}
}

func (a *api) listDIDs(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	ds, err := a.svc.OpsDIDs(r.Context(), op, r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(ds, didView))
	return nil
}

func (a *api) assignDID(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	var body struct {
		Number       string      `json:"number"`
		SIPAccountID json.Number `json:"sip_account_id"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	sid, err := strconv.ParseInt(body.SIPAccountID.String(), 10, 64)
	if err != nil || sid <= 0 {
		return sipdesk.FieldError("sip_account_id", "must be a SIP account id (a whole number)")
	}
	d, err := a.svc.OpsAssignDID(r.Context(), op, body.Number, sid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"number": d.Number, "sip_account_id": d.SIPAccountID, "customer_id": d.CustomerID})
	return nil
}

func (a *api) unassignDID(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	if _, err := a.svc.OpsUnassignDID(r.Context(), op, r.PathValue("number")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
