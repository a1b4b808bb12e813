package api

import (
	"net/http"
	"strconv"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

func (a *API) listRules(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r)
	if err != nil {
		return err
	}
	rs, err := a.svc.Rules(r.Context(), c.id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, paginate(rs, func(r *sipdesk.CallerIDRule) int64 { return r.ID }, p, false, ruleView))
}

type ruleIn struct {
	Name        opt[string]   `json:"name"`
	ApplyFor    opt[string]   `json:"apply_for"`
	Country     opt[string]   `json:"country"`
	Prefix      opt[string]   `json:"prefix"`
	Type        opt[string]   `json:"type"`
	Numbers     opt[[]string] `json:"numbers"`
	DisplayName opt[string]   `json:"display_name"`
}

// apply copies the fields present in the body onto rule.
func (in ruleIn) apply(rule *sipdesk.CallerIDRule) {
	set := func(o opt[string], dst *string) {
		if o.Set {
			*dst = o.V
		}
	}
	set(in.Name, &rule.Name)
	if in.ApplyFor.Set {
		rule.ApplyFor = sipdesk.RuleScope(in.ApplyFor.V)
	}
	set(in.Country, &rule.Country)
	set(in.Prefix, &rule.Prefix)
	if in.Type.Set {
		rule.Type = sipdesk.RuleType(in.Type.V)
		// A rule that no longer gives a number of its own sheds its pool
		// and display name unless the body sets them (then validation
		// says what is wrong).
		if rule.Type != sipdesk.RuleSpecific {
			if !in.Numbers.Set {
				rule.Numbers = nil
			}
			if !in.DisplayName.Set {
				rule.DisplayName = ""
			}
		}
	}
	if in.Numbers.Set {
		rule.Numbers = in.Numbers.V
	}
	set(in.DisplayName, &rule.DisplayName)
}

func (a *API) createRule(w http.ResponseWriter, r *http.Request, c caller) error {
	var in ruleIn
	if err := decode(w, r, &in); err != nil {
		return err
	}
	rule := &sipdesk.CallerIDRule{}
	in.apply(rule)
	if err := a.svc.SaveRule(r.Context(), c.id, rule, c.actor); err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/caller-id-rules/"+strconv.FormatInt(rule.ID, 10))
	return reply(w, http.StatusCreated, ruleView(rule))
}

func (a *API) getRule(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	rule, err := a.svc.Rule(r.Context(), c.id, id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, ruleView(rule))
}

func (a *API) patchRule(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in ruleIn
	if err := decode(w, r, &in); err != nil {
		return err
	}
	rule, err := a.svc.Rule(r.Context(), c.id, id)
	if err != nil {
		return err
	}
	in.apply(rule)
	if err := a.svc.SaveRule(r.Context(), c.id, rule, c.actor); err != nil {
		return err
	}
	return reply(w, http.StatusOK, ruleView(rule))
}

func (a *API) deleteRule(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := a.svc.Rule(r.Context(), c.id, id); err != nil {
		return err
	}
	if err := a.svc.DeleteRule(r.Context(), c.id, id, c.actor); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listCallerIDs(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r)
	if err != nil {
		return err
	}
	ns, err := a.svc.CallerIDNumbers(r.Context(), c.id)
	if err != nil {
		return err
	}
	ds, err := a.deliveries(r, c, ns)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, paginate(ns, func(n *sipdesk.CallerIDNumber) int64 { return n.ID }, p, false,
		func(n *sipdesk.CallerIDNumber) callerIDNumberJSON {
			v := callerIDNumberView(n)
			v.Delivery = deliveryView(ds[n.ID])
			return v
		}))
}

// deliveries reads how the codes of the unverified numbers went, only when
// there are some.
func (a *API) deliveries(r *http.Request, c caller, ns []*sipdesk.CallerIDNumber) (map[int64]*sipdesk.VerificationMessage, error) {
	for _, n := range ns {
		if !n.Verified {
			return a.svc.CodeDeliveries(r.Context(), c.id)
		}
	}
	return nil, nil
}

// callMe sends a new code to an unverified number by a voice call ("Call me
// instead"): 202, the call is placed by an edge; GET /caller-ids shows how
// it went (delivery). The limits of a new code apply.
func (a *API) callMe(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ns, err := a.svc.CallerIDNumbers(r.Context(), c.id)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if n.ID != id {
			continue
		}
		if err := a.svc.CallMe(r.Context(), c.id, n.Number); err != nil {
			return err
		}
		v := callerIDNumberView(n)
		v.Delivery = &deliveryJSON{Channel: app.ChannelVoice, State: string(sipdesk.MessageQueued)}
		return reply(w, http.StatusAccepted, v)
	}
	return sipdesk.Errorf(sipdesk.ENotFound, "caller ID number not found")
}

func (a *API) addCallerID(w http.ResponseWriter, r *http.Request, c caller) error {
	var in struct {
		Number string `json:"number"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	n, err := a.svc.AddCallerIDNumber(r.Context(), c.id, in.Number)
	if err != nil {
		return err
	}
	// Accepted: the number is usable once the code sent to it is verified.
	return reply(w, http.StatusAccepted, callerIDNumberView(n))
}

func (a *API) verifyCallerID(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Code string `json:"code"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	n, err := a.svc.VerifyCallerIDNumber(r.Context(), c.id, id, in.Code)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, callerIDNumberView(n))
}

func (a *API) deleteCallerID(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.svc.DeleteCallerIDNumber(r.Context(), c.id, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) simulateCallerID(w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	sid, ok := parseID(q.Get("sip_account"))
	if !ok {
		return sipdesk.FieldError("sip_account", "must be the id of one of your SIP accounts")
	}
	to := q.Get("to")
	if to == "" {
		return &sipdesk.Error{Code: sipdesk.EInvalidNumber, Field: "to", Message: "the dialed number is required"}
	}
	h, err := a.svc.SimulateCallerIDHeaders(r.Context(), c.id, sid, app.CallerIDCall{To: to, FromUser: q.Get("from"), FromDisplay: q.Get("from_display")})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, simulationView(h))
}
