package ops

import (
	"html/template"
	"net/http"
	"time"

	"github.com/sipdesk/sipdesk"
)

// The bans the edges recorded: the console's Bans page and the operator API.

func (c *Console) registerBans(mux *http.ServeMux) {
	c.pages["bans"] = template.Must(template.New("").Funcs(funcs).ParseFS(templatesFS, "templates/layout.html", "templates/bans.html"))
	c.auth(mux, "GET /ops/bans", c.bans)
	c.auth(mux, "POST /ops/bans/lift", c.liftBan)
}

func (a *api) routeBans() {
	a.route("GET /bans", a.listBans)
	a.route("DELETE /bans/{source}", a.liftBan)
}

func (c *Console) bans(q *request) error {
	bs, err := c.svc.OpsBans(q.ctx(), q.op)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "bans", "Bans", "bans", bs)
	return nil
}

func (c *Console) liftBan(q *request) error {
	src := q.r.PostFormValue("source")
	if err := c.svc.OpsLiftBan(q.ctx(), q.op, src); err != nil {
		return err
	}
	return c.redirect(q, "/ops/bans", "Ban of "+src+" lifted: every edge accepts it again.")
}

type banJSON struct {
	Source    string    `json:"source"`
	Reason    string    `json:"reason"`
	Node      string    `json:"node"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (a *api) listBans(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	bs, err := a.svc.OpsBans(r.Context(), op)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(bs, func(b *sipdesk.Ban) banJSON {
		return banJSON{b.Source, b.Reason, b.Node, b.CreatedAt, b.ExpiresAt}
	}))
	return nil
}

func (a *api) liftBan(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	if err := a.svc.OpsLiftBan(r.Context(), op, r.PathValue("source")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
