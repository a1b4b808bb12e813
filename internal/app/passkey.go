package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/sipdesk/sipdesk"
)

// Passkeys (WebAuthn): a customer registers them on the Security page;
// one then stands in for the authenticator code after the password, logs
// in on its own ("Sign in with a passkey": a passkey is something you
// have and, with user verification, something you know or are), and
// confirms SIP credential changes. The relying party is the portal's base
// URL: its host name is the RP ID and its origin the one origin accepted.
const (
	PasskeyMax     = 10 // per customer
	passkeyNameMax = 60
	// ceremonyMax bounds the begin/finish tokens and responses a browser
	// sends back (a response is a few hundred bytes to a few kB).
	ceremonyMax = 16 << 10
)

// Ceremony purposes: a token made for one cannot finish another.
const (
	purposeRegister = "register"
	purposeLogin    = "login"   // passwordless or after the password
	purposeConfirm  = "confirm" // Edit Credentials
)

// PasskeyOptions is what the browser passes to navigator.credentials
// (JSON) and the signed token it sends back with the answer.
type PasskeyOptions struct {
	Options  json.RawMessage `json:"options"`
	Ceremony string          `json:"ceremony"`
}

// PasskeyAnswer is a browser's answer to a ceremony: the token of
// PasskeyOptions and the credential's JSON.
type PasskeyAnswer struct {
	Ceremony string
	Response string
}

func (a PasskeyAnswer) empty() bool { return a.Response == "" }

var errNoPasskeys = sipdesk.Errorf(sipdesk.EUnavailable, "passkeys need the portal's --base-url to have a host name (browsers refuse them on an IP address)")

// PasskeysAvailable reports whether the portal can use passkeys: its base
// URL has a host name (browsers refuse WebAuthn on an IP address).
func (s *Service) PasskeysAvailable() bool {
	_, err := s.webAuthn()
	return err == nil
}

// webAuthn is the relying party of the portal's base URL.
func (s *Service) webAuthn() (*webauthn.WebAuthn, error) {
	s.waOnce.Do(func() {
		u, err := url.Parse(s.opt.BaseURL)
		if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return
		}
		if _, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
			return
		}
		s.wa, _ = webauthn.New(&webauthn.Config{
			RPID: u.Hostname(), RPDisplayName: "sipdesk", RPOrigins: []string{u.Scheme + "://" + u.Host},
		})
	})
	if s.wa == nil {
		return nil, errNoPasskeys
	}
	return s.wa, nil
}

// passkeyUser is a customer as the WebAuthn library sees it. The user
// handle is the customer id (8 bytes): no email or name leaves the portal.
type passkeyUser struct {
	c    *sipdesk.Customer
	keys []*sipdesk.Passkey
}

func userHandle(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

func (u *passkeyUser) WebAuthnID() []byte          { return userHandle(u.c.ID) }
func (u *passkeyUser) WebAuthnName() string        { return u.c.Email }
func (u *passkeyUser) WebAuthnDisplayName() string { return u.c.Email }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(u.keys))
	for i, k := range u.keys {
		ts := make([]protocol.AuthenticatorTransport, len(k.Transports))
		for j, t := range k.Transports {
			ts[j] = protocol.AuthenticatorTransport(t)
		}
		out[i] = webauthn.Credential{ID: k.CredentialID, PublicKey: k.PublicKey, Transport: ts,
			Flags:         webauthn.NewCredentialFlags(protocol.AuthenticatorFlags(k.Flags)),
			Authenticator: webauthn.Authenticator{AAGUID: k.AAGUID, SignCount: k.SignCount}}
	}
	return out
}

func (u *passkeyUser) descriptors() []protocol.CredentialDescriptor {
	var out []protocol.CredentialDescriptor
	for _, c := range u.WebAuthnCredentials() {
		out = append(out, c.Descriptor())
	}
	return out
}

func (s *Service) passkeyUser(tx sipdesk.Tx, customerID int64) (*passkeyUser, error) {
	c, err := tx.Customer(customerID, false)
	if err != nil {
		return nil, err
	}
	keys, err := tx.Passkeys(customerID)
	if err != nil {
		return nil, err
	}
	return &passkeyUser{c: c, keys: keys}, nil
}

// Ceremony tokens: the library's session data (challenge, allowed
// credentials, user verification) with the purpose, the customer and the
// issue time, signed with the node's key and kept by the browser for at
// most TwoFactorTTL. A token finishes one ceremony: its challenge is
// spent in the shared attempt counters on first use.
type ceremony struct {
	Purpose    string               `json:"p"`
	CustomerID int64                `json:"c"`
	Issued     int64                `json:"t"`
	Data       webauthn.SessionData `json:"d"`
}

func (s *Service) ceremonyMAC(b []byte) []byte {
	m := hmac.New(sha256.New, s.deviceKey)
	m.Write([]byte("webauthn ceremony"))
	m.Write(b)
	return m.Sum(nil)
}

func (s *Service) sealCeremony(purpose string, customerID int64, d *webauthn.SessionData) (string, error) {
	b, err := json.Marshal(ceremony{Purpose: purpose, CustomerID: customerID, Issued: s.now().Unix(), Data: *d})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(s.ceremonyMAC(b)), nil
}

var errCeremony = sipdesk.Errorf(sipdesk.EForbidden, "the passkey request timed out or was already used: try again")

// openCeremony checks a token's signature, purpose, customer and age, and
// spends its challenge (a second use, even on another node, is refused).
func (s *Service) openCeremony(ctx context.Context, tok, purpose string, customerID int64) (*ceremony, error) {
	body, mac, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > ceremonyMax {
		return nil, errCeremony
	}
	b, err1 := base64.RawURLEncoding.DecodeString(body)
	m, err2 := base64.RawURLEncoding.DecodeString(mac)
	if err1 != nil || err2 != nil || !hmac.Equal(m, s.ceremonyMAC(b)) {
		return nil, errCeremony
	}
	var c ceremony
	if err := json.Unmarshal(b, &c); err != nil || c.Purpose != purpose || c.CustomerID != customerID ||
		s.now().Sub(time.Unix(c.Issued, 0)) > TwoFactorTTL || c.Data.Challenge == "" {
		return nil, errCeremony
	}
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		return s.bump(tx, "webauthn:"+c.Data.Challenge, TwoFactorTTL, 1, "", errCeremony.Message)
	})
	if sipdesk.ErrorCode(err) == sipdesk.ERateLimited {
		return nil, errCeremony
	}
	return &c, err
}

func passkeyOpts(v any, cer string) (*PasskeyOptions, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &PasskeyOptions{Options: b, Ceremony: cer}, nil
}

// Passkeys lists the customer's passkeys, oldest first.
func (s *Service) Passkeys(ctx context.Context, customerID int64) (out []*sipdesk.Passkey, err error) {
	err = s.view(ctx, func(tx sipdesk.Tx) error {
		out, err = tx.Passkeys(customerID)
		return err
	})
	return out, err
}

// BeginPasskeyRegistration starts adding a passkey: a discoverable
// credential (so it can log in without the email), excluding the
// customer's existing ones (one authenticator is registered once).
func (s *Service) BeginPasskeyRegistration(ctx context.Context, customerID int64) (*PasskeyOptions, error) {
	wa, err := s.webAuthn()
	if err != nil {
		return nil, err
	}
	var u *passkeyUser
	if err := s.view(ctx, func(tx sipdesk.Tx) (err error) { u, err = s.passkeyUser(tx, customerID); return err }); err != nil {
		return nil, err
	}
	if len(u.keys) >= PasskeyMax {
		return nil, sipdesk.FieldError("name", "you have %d passkeys: remove one first", PasskeyMax)
	}
	creation, sd, err := wa.BeginRegistration(u, webauthn.WithExclusions(u.descriptors()),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationPreferred}))
	if err != nil {
		return nil, err
	}
	tok, err := s.sealCeremony(purposeRegister, customerID, sd)
	if err != nil {
		return nil, err
	}
	return passkeyOpts(creation, tok)
}

// FinishPasskeyRegistration verifies the browser's new credential and
// stores it under the name the customer gave. A customer without the
// authenticator app and without unused recovery codes gets new recovery
// codes with it (returned to be shown once): a passkey can be lost too.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, customerID int64, name string, ans PasskeyAnswer, actor Actor) (*sipdesk.Passkey, []string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, nil, sipdesk.FieldError("name", "give the passkey a name, like “Work laptop”")
	case utf8.RuneCountInString(name) > passkeyNameMax || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nil, nil, sipdesk.FieldError("name", "the name is up to %d characters, on one line", passkeyNameMax)
	case ans.empty():
		return nil, nil, sipdesk.FieldError("name", "the browser did not create a passkey: try again")
	case len(ans.Response) > ceremonyMax:
		return nil, nil, sipdesk.FieldError("name", "the browser's answer is too large")
	}
	wa, err := s.webAuthn()
	if err != nil {
		return nil, nil, err
	}
	cer, err := s.openCeremony(ctx, ans.Ceremony, purposeRegister, customerID)
	if err != nil {
		return nil, nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(ans.Response))
	if err != nil {
		return nil, nil, sipdesk.FieldError("name", "the browser's answer could not be read: try again")
	}
	var p *sipdesk.Passkey
	var codes []string
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		u, err := s.passkeyUser(tx, customerID)
		if err != nil {
			return err
		}
		if len(u.keys) >= PasskeyMax {
			return sipdesk.FieldError("name", "you have %d passkeys: remove one first", PasskeyMax)
		}
		cred, err := wa.CreateCredential(u, cer.Data, parsed)
		if err != nil {
			return sipdesk.FieldError("name", "the passkey could not be verified: %s", webauthnReason(err))
		}
		p = &sipdesk.Passkey{CustomerID: customerID, CredentialID: cred.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
			Flags: uint8(cred.Flags.ProtocolValue()), AAGUID: cred.Authenticator.AAGUID, Name: name, CreatedAt: s.now()}
		for _, t := range cred.Transport {
			p.Transports = append(p.Transports, string(t))
		}
		if err := tx.InsertPasskey(p); err != nil {
			return err
		}
		codes = nil // a retried transaction starts again
		hasTOTP, _, err := secondFactors(tx, customerID)
		if err != nil {
			return err
		}
		if left, err := tx.RecoveryCodesLeft(customerID); err != nil {
			return err
		} else if !hasTOTP && left == 0 {
			if codes, err = issueRecoveryCodes(tx, customerID); err != nil {
				return err
			}
		}
		return s.audit(tx, actor, customerID, 0, sipdesk.AuditPasskeyAdded, "passkey “"+name+"” added")
	})
	if err != nil {
		return nil, nil, err
	}
	return p, codes, nil
}

// webauthnReason is the library's short reason for a refused ceremony.
func webauthnReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return strings.TrimSuffix(pe.Details, ".")
	}
	return "it was refused"
}

// DeletePasskey removes a passkey, confirmed by the portal password.
// Another customer's passkey is not found, like a missing one, before
// the password is asked.
func (s *Service) DeletePasskey(ctx context.Context, customerID, id int64, password string, actor Actor) error {
	keys, err := s.Passkeys(ctx, customerID)
	if err != nil {
		return err
	}
	name := ""
	for _, k := range keys {
		if k.ID == id {
			name = k.Name
		}
	}
	if name == "" {
		return sipdesk.Errorf(sipdesk.ENotFound, "passkey not found")
	}
	if err := s.confirmPassword(ctx, customerID, password, "password"); err != nil {
		return err
	}
	return s.update(ctx, func(tx sipdesk.Tx) error {
		if err := tx.DeletePasskey(customerID, id); err != nil {
			return err
		}
		if err := dropRecoveryCodesIfNoFactor(tx, customerID); err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, 0, sipdesk.AuditPasskeyRemoved, "passkey “"+name+"” removed")
	})
}

// BeginPasskeyLogin starts a login with a passkey. With the pending token
// of a password step it asks for one of that customer's passkeys (the
// second factor); without one, for any passkey of this portal, with user
// verification (the passkey is the whole login).
func (s *Service) BeginPasskeyLogin(ctx context.Context, pending string) (*PasskeyOptions, error) {
	wa, err := s.webAuthn()
	if err != nil {
		return nil, err
	}
	if pending == "" {
		// Counted with the source's logins (nothing is stored, but a
		// flood still costs signatures).
		if src := sourceOf(ctx); src != "" && s.loginRate.Add(src) > LoginRatePerMinute {
			return nil, errLoginFast
		}
		assertion, sd, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
		if err != nil {
			return nil, err
		}
		tok, err := s.sealCeremony(purposeLogin, 0, sd)
		if err != nil {
			return nil, err
		}
		return passkeyOpts(assertion, tok)
	}
	id, ok := s.pendingCustomer(pending)
	if !ok {
		return nil, sipdesk.Errorf(sipdesk.EForbidden, "the login timed out: enter your email and password again")
	}
	return s.beginAssertion(ctx, purposeLogin, id)
}

// BeginPasskeyConfirm asks for one of the customer's passkeys to confirm a
// sensitive change (Edit Credentials).
func (s *Service) BeginPasskeyConfirm(ctx context.Context, customerID int64) (*PasskeyOptions, error) {
	return s.beginAssertion(ctx, purposeConfirm, customerID)
}

func (s *Service) beginAssertion(ctx context.Context, purpose string, customerID int64) (*PasskeyOptions, error) {
	wa, err := s.webAuthn()
	if err != nil {
		return nil, err
	}
	var u *passkeyUser
	if err := s.view(ctx, func(tx sipdesk.Tx) (err error) { u, err = s.passkeyUser(tx, customerID); return err }); err != nil {
		return nil, err
	}
	if len(u.keys) == 0 {
		return nil, sipdesk.Errorf(sipdesk.EConflict, "this account has no passkey")
	}
	assertion, sd, err := wa.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, err
	}
	tok, err := s.sealCeremony(purpose, customerID, sd)
	if err != nil {
		return nil, err
	}
	return passkeyOpts(assertion, tok)
}

var errPasskeyWrong = &sipdesk.Error{Code: sipdesk.EUnauthorized, Field: "passkey", Message: "the passkey was not accepted"}

// checkAssertion verifies an answer in tx (the ceremony already spent):
// the credential must be a stored one (of customerID when not 0), its
// signature good and its counter ahead of the stored one; the use is
// recorded. It returns the passkey, or errPasskeyWrong with the reason
// for the audit log (and the passkey when it is a stored one).
func (s *Service) checkAssertion(tx sipdesk.Tx, cer *ceremony, customerID int64, response string) (*sipdesk.Passkey, string, error) {
	wa, err := s.webAuthn()
	if err != nil {
		return nil, "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(response))
	if err != nil {
		return nil, "the browser's answer could not be read", errPasskeyWrong
	}
	p, err := tx.PasskeyByCredential(parsed.RawID)
	if sipdesk.ErrorCode(err) == sipdesk.ENotFound || err == nil && customerID != 0 && p.CustomerID != customerID {
		return nil, "an unknown passkey", errPasskeyWrong
	}
	if err != nil {
		return nil, "", err
	}
	u, err := s.passkeyUser(tx, p.CustomerID)
	if err != nil {
		return nil, "", err
	}
	var cred *webauthn.Credential
	if customerID == 0 {
		cred, err = wa.ValidateDiscoverableLogin(func(_, handle []byte) (webauthn.User, error) {
			if !hmac.Equal(handle, u.WebAuthnID()) {
				return nil, errors.New("user handle of another customer")
			}
			return u, nil
		}, cer.Data, parsed)
	} else {
		cred, err = wa.ValidateLogin(u, cer.Data, parsed)
	}
	if err != nil {
		return p, "passkey “" + p.Name + "” refused: " + webauthnReason(err), errPasskeyWrong
	}
	// A counter that does not move forward is a cloned authenticator:
	// refused (UsePasskey decides in one statement).
	if cred.Authenticator.CloneWarning {
		return p, "passkey “" + p.Name + "” refused: its signature counter went back", errPasskeyWrong
	}
	if err := tx.UsePasskey(p.ID, cred.Authenticator.SignCount, s.now()); err != nil {
		if sipdesk.ErrorCode(err) == sipdesk.EConflict {
			return p, "passkey “" + p.Name + "” refused: its signature counter went back", errPasskeyWrong
		}
		return nil, "", err
	}
	return p, "", nil
}

// LoginPasskey finishes a passkey login: after the password when pending
// is set (its customer's passkeys only; failures count with wrong codes),
// else on its own.
func (s *Service) LoginPasskey(ctx context.Context, pending string, ans PasskeyAnswer) (*LoginResult, error) {
	var id int64
	if pending != "" {
		var ok bool
		if id, ok = s.pendingCustomer(pending); !ok {
			return nil, sipdesk.Errorf(sipdesk.EForbidden, "the login timed out: enter your email and password again")
		}
		if err := s.update(ctx, func(tx sipdesk.Tx) error {
			return s.bump(tx, "login:2fa:"+strconv.FormatInt(id, 10), LoginWindow, twoFactorMax, "passkey", errLoginLocked.Message)
		}); err != nil {
			return nil, err
		}
	} else if src := sourceOf(ctx); src != "" && s.loginRate.Add(src) > LoginRatePerMinute {
		return nil, errLoginFast
	}
	if ans.empty() || len(ans.Response) > ceremonyMax {
		return nil, errPasskeyWrong
	}
	// The token names its customer (0: passwordless), so one kind of
	// ceremony cannot finish the other.
	cer, err := s.openCeremony(ctx, ans.Ceremony, purposeLogin, id)
	if err != nil {
		return nil, err
	}
	var c *sipdesk.Customer
	var wrong string
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		p, why, err := s.checkAssertion(tx, cer, id, ans.Response)
		if errors.Is(err, errPasskeyWrong) {
			wrong = why
			if p != nil { // a customer's passkey: the failure is theirs to see
				return s.audit(tx, CustomerActor(p.CustomerID, "portal"), p.CustomerID, 0, sipdesk.AuditLoginFailed, why+fromSource(ctx))
			}
			return nil
		}
		if err != nil {
			return err
		}
		if c, err = tx.Customer(p.CustomerID, false); err != nil {
			return err
		}
		how := "with the passkey “" + p.Name + "”"
		if id != 0 {
			if err := tx.ClearAttempts("login:2fa:" + strconv.FormatInt(id, 10)); err != nil {
				return err
			}
			how = "with the password and the passkey “" + p.Name + "”"
		}
		return s.audit(tx, CustomerActor(c.ID, "portal"), c.ID, 0, sipdesk.AuditPasskeyUsed, "logged in "+how+fromSource(ctx))
	})
	if err != nil {
		return nil, err
	}
	if wrong != "" {
		return nil, errPasskeyWrong
	}
	return &LoginResult{Customer: c, Device: s.newDevice(c.ID)}, nil
}

// HasSecondFactor reports an authenticator app or a passkey: logins and
// sensitive changes ask for one of them after the password.
func (s *Service) HasSecondFactor(ctx context.Context, customerID int64) (totp bool, passkeys int, err error) {
	err = s.view(ctx, func(tx sipdesk.Tx) error {
		totp, passkeys, err = secondFactors(tx, customerID)
		return err
	})
	return totp, passkeys, err
}

func secondFactors(tx sipdesk.Tx, customerID int64) (bool, int, error) {
	o, err := tx.TOTP(customerID)
	if err != nil && sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		return false, 0, err
	}
	keys, err := tx.Passkeys(customerID)
	return o.Enabled(), len(keys), err
}

// checkReauthFactor checks the second factor of a Reauth in tx when the
// customer has one (cer is the passkey's ceremony, already spent).
func (s *Service) checkReauthFactor(tx sipdesk.Tx, customerID int64, r Reauth, cer *ceremony) error {
	hasTOTP, keys, err := secondFactors(tx, customerID)
	if err != nil || !hasTOTP && keys == 0 {
		return err
	}
	wrong := &sipdesk.Error{Code: sipdesk.EUnauthorized, Field: "code", Message: "the code is not right"}
	switch {
	case cer != nil:
		p, why, err := s.checkAssertion(tx, cer, customerID, r.Passkey.Response)
		if errors.Is(err, errPasskeyWrong) {
			s.log.Info("passkey refused on a credential change", "customer", customerID, "reason", why)
			return &sipdesk.Error{Code: sipdesk.EUnauthorized, Field: "code", Message: "the passkey was not accepted"}
		}
		if err != nil {
			return err
		}
		return s.audit(tx, CustomerActor(customerID, "email-link"), customerID, 0, sipdesk.AuditPasskeyUsed, "confirmed a SIP credential change with the passkey “"+p.Name+"”")
	case strings.TrimSpace(r.Code) == "":
		what := "a code from your authenticator app or a recovery code"
		if !hasTOTP {
			what = "your passkey or a recovery code"
		} else if keys > 0 {
			what = "a code from your authenticator app, a recovery code or your passkey"
		}
		return &sipdesk.Error{Code: sipdesk.EUnauthorized, Field: "code", Message: "confirm with " + what}
	}
	o := &sipdesk.TOTP{}
	if hasTOTP {
		if o, err = tx.TOTP(customerID); err != nil {
			return err
		}
	}
	if step, ok := s.totpStep(o.Secret, r.Code); ok && hasTOTP {
		if err := tx.UseTOTPStep(customerID, step); sipdesk.ErrorCode(err) == sipdesk.EConflict {
			return &sipdesk.Error{Code: sipdesk.EUnauthorized, Field: "code", Message: "this code was already used: wait for the next one"}
		} else if err != nil {
			return err
		}
		return nil
	}
	err = tx.UseRecoveryCode(customerID, hashRecovery(r.Code), s.now())
	if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
		return wrong
	}
	if err != nil {
		return err
	}
	return s.audit(tx, CustomerActor(customerID, "email-link"), customerID, 0, sipdesk.AuditRecoveryUsed, "to confirm a SIP credential change")
}

// PendingSecondFactors tells the second login step what to ask for: the
// authenticator code, the passkey, a recovery code.
func (s *Service) PendingSecondFactors(ctx context.Context, pending string) (TwoFactor, error) {
	id, ok := s.pendingCustomer(pending)
	if !ok {
		return TwoFactor{}, sipdesk.Errorf(sipdesk.EForbidden, "the login timed out: enter your email and password again")
	}
	return s.TwoFactorStatus(ctx, id)
}
