package ops

import (
	"net/http"
	"strconv"

	"github.com/sipdesk/sipdesk"
)

// Suspending a customer: the customer page's forms and the operator API.

func (c *Console) registerSuspend(mux *http.ServeMux) {
	c.auth(mux, "POST /ops/customers/{id}/suspend", c.suspend)
	c.auth(mux, "POST /ops/customers/{id}/unsuspend", c.unsuspend)
}

func (a *api) routeSuspend() {
	a.route("POST /customers/{id}/suspend", a.suspend)
	a.route("POST /customers/{id}/unsuspend", a.unsuspend)
}

func (c *Console) suspend(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	if _, err := c.svc.OpsSuspendCustomer(q.ctx(), q.op, id, q.r.PostFormValue("reason")); err != nil {
		return err
	}
	return c.redirect(q, "/ops/customers/"+strconv.FormatInt(id, 10), "Account suspended: its SIP accounts are refused and the customer is signed out.")
}

func (c *Console) unsuspend(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	if _, err := c.svc.OpsUnsuspendCustomer(q.ctx(), q.op, id); err != nil {
		return err
	}
	return c.redirect(q, "/ops/customers/"+strconv.FormatInt(id, 10), "Suspension lifted.")
}

func (a *api) suspend(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	id, err := idOf(r)
	if err != nil {
		return err
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	cu, err := a.svc.OpsSuspendCustomer(r.Context(), op, id, body.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, customerView(cu))
	return nil
}

func (a *api) unsuspend(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	id, err := idOf(r)
	if err != nil {
		return err
	}
	cu, err := a.svc.OpsUnsuspendCustomer(r.Context(), op, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, customerView(cu))
	return nil
}
