package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

func (a *API) listSIPAccounts(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r)
	if err != nil {
		return err
	}
	as, err := a.svc.SIPAccounts(r.Context(), c.id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, paginate(as, func(s *sipdesk.SIPAccount) int64 { return s.ID }, p, false, sipAccountView))
}

type createSIPAccountIn struct {
	Name       string   `json:"name"`
	AuthType   string   `json:"auth_type"`
	Username   string   `json:"username"`
	Password   string   `json:"password"`
	AllowedIPs []string `json:"allowed_ips"`
	TechPrefix string   `json:"tech_prefix"`
	ChannelCap *int     `json:"channel_cap"`
}

func (a *API) createSIPAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	var in createSIPAccountIn
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.AuthType == "" {
		in.AuthType = string(sipdesk.AuthPassword)
	}
	cap := 0
	if in.ChannelCap != nil {
		cap = *in.ChannelCap
	}
	out, err := a.svc.CreateSIPAccount(r.Context(), c.id, app.SIPAccountInput{
		Name: in.Name, AuthType: sipdesk.AuthType(in.AuthType), Username: in.Username, Password: in.Password,
		AllowedIPs: in.AllowedIPs, TechPrefix: in.TechPrefix, ChannelCap: cap,
	}, c.actor)
	if err != nil {
		return err
	}
	v := sipAccountView(out.Account)
	// Shown once: the credentials the device needs.
	v.Username, v.Password = out.Account.Username, out.Password
	w.Header().Set("Location", Prefix+"/sip-accounts/"+strconv.FormatInt(out.Account.ID, 10))
	return reply(w, http.StatusCreated, v)
}

func (a *API) getSIPAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	s, err := a.svc.SIPAccount(r.Context(), c.id, id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, sipAccountView(s))
}

type patchSIPAccountIn struct {
	Name       opt[string]   `json:"name"`
	Status     opt[string]   `json:"status"`
	AuthType   opt[string]   `json:"auth_type"`
	AllowedIPs opt[[]string] `json:"allowed_ips"`
	TechPrefix opt[string]   `json:"tech_prefix"`
	ChannelCap opt[int]      `json:"channel_cap"`
}

func (a *API) patchSIPAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in patchSIPAccountIn
	if err := decode(w, r, &in); err != nil {
		return err
	}
	// name, status and auth_type cannot be cleared; the others can (null:
	// no IPs, no tech prefix, no cap).
	for _, f := range []struct {
		name string
		null bool
	}{{"name", in.Name.Null}, {"status", in.Status.Null}, {"auth_type", in.AuthType.Null}} {
		if f.null {
			return sipdesk.FieldError(f.name, "must not be null")
		}
	}
	p := app.SIPAccountPatch{Name: in.Name.ptr(), AllowedIPs: in.AllowedIPs.ptr(), TechPrefix: in.TechPrefix.ptr(), ChannelCap: in.ChannelCap.ptr()}
	if in.Status.Set {
		st := sipdesk.Status(in.Status.V)
		p.Status = &st
	}
	if in.AuthType.Set {
		at := sipdesk.AuthType(in.AuthType.V)
		p.AuthType = &at
	}
	s, err := a.svc.UpdateSIPAccount(r.Context(), c.id, id, p, c.actor)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, sipAccountView(s))
}

func (a *API) deleteSIPAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.svc.DeleteSIPAccount(r.Context(), c.id, id, c.actor); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) revealUsername(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	u, err := a.svc.RevealUsername(r.Context(), c.id, id, c.actor)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]string{"username": u})
}

func (a *API) sendCredentialReset(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.svc.SendCredentialReset(r.Context(), c.id, id, c.actor); err != nil {
		return err
	}
	return reply(w, http.StatusAccepted, map[string]bool{"sent": true})
}

func (a *API) completeCredentialReset(w http.ResponseWriter, r *http.Request) error {
	token := r.PathValue("token")
	var in struct {
		Username       string `json:"username"`
		Password       string `json:"password"`
		PortalPassword string `json:"portal_password"`
		Code           string `json:"code"` // the second factor, when the customer has one
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	s, err := a.svc.CompleteCredentialReset(r.Context(), token, in.Username, in.Password, app.Reauth{Password: in.PortalPassword, Code: in.Code})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, sipAccountView(s))
}

func (a *API) putJWT(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Enabled *bool  `json:"enabled"`
		Secret  string `json:"secret"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.Enabled == nil {
		return sipdesk.FieldError("enabled", "is required (true or false)")
	}
	gen, err := a.svc.SetJWT(r.Context(), c.id, id, *in.Enabled, in.Secret, c.actor)
	if err != nil {
		return err
	}
	out := struct {
		Enabled bool   `json:"enabled"`
		Secret  string `json:"secret,omitempty"` // only when generated, shown once
	}{*in.Enabled, gen}
	return reply(w, http.StatusOK, out)
}

func (a *API) softphoneToken(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	tok, exp, err := a.svc.SoftphoneToken(r.Context(), c.id, id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}{tok, exp})
}

func (a *API) putCallerID(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		DefaultNumber string  `json:"default_number"`
		DisplayName   string  `json:"display_name"`
		RuleIDs       []int64 `json:"rule_ids"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	s, err := a.svc.SetCallerID(r.Context(), c.id, id, sipdesk.CallerIDSetting{
		DefaultNumber: in.DefaultNumber, DisplayName: in.DisplayName, RuleIDs: in.RuleIDs,
	}, c.actor)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, sipAccountView(s))
}
