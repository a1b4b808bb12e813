package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"html"
	"image/png"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Sign-in security rules: changing and recovering the portal password,
// the authenticator app (TOTP, RFC 6238) with recovery codes, the list of
// a customer's sessions.
const (
	PasswordResetTTL  = 30 * time.Minute // a "forgot password" link, single use
	RecoveryCodeCount = 10
	TwoFactorTTL      = 5 * time.Minute // between the password and the code
	// Forgotten-password emails: per address and per source, so the form
	// can neither flood a mailbox nor probe for accounts.
	resetMaxEmail  = 3
	resetMaxSource = 10
	// Wrong authenticator codes per customer and window (LoginWindow).
	twoFactorMax = 5
	// userAgentMax is how much of a User-Agent the sessions list keeps.
	userAgentMax = 120
)

// CreateSessionFor starts a portal session in a browser (its User-Agent
// and the request's source are kept for the sessions list).
func (s *Service) CreateSessionFor(ctx context.Context, customerID int64, userAgent string) (string, error) {
	token := sipdesk.GenerateToken("")
	if len(userAgent) > userAgentMax {
		userAgent = userAgent[:userAgentMax]
	}
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		if _, err := tx.DeleteExpiredSessions(s.now()); err != nil {
			return err
		}
		return tx.InsertSession(&sipdesk.Session{CustomerID: customerID, Hash: sipdesk.HashToken(token), CreatedAt: s.now(),
			ExpiresAt: s.now().Add(SessionTTL), UserAgent: strings.ToValidUTF8(userAgent, "?"), Source: sourceOf(ctx)})
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// Sessions lists the customer's live portal sessions, newest first.
func (s *Service) Sessions(ctx context.Context, customerID int64) (out []*sipdesk.Session, err error) {
	err = s.view(ctx, func(tx sipdesk.Tx) error {
		out, err = tx.Sessions(customerID, s.now())
		return err
	})
	return out, err
}

// RevokeSession ends one of the customer's sessions (another browser).
func (s *Service) RevokeSession(ctx context.Context, customerID, id int64, actor Actor) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		if err := tx.DeleteSessionByID(customerID, id); err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, 0, sipdesk.AuditSessionRevoked, "session "+strconv.FormatInt(id, 10))
	})
}

// ChangePassword sets a new portal password, confirmed by the current one
// (wrong ones are limited like Edit Credentials'), and ends every other
// session of the customer: a thief logged in elsewhere is logged out.
func (s *Service) ChangePassword(ctx context.Context, customerID int64, sessionToken, current, next string, actor Actor) error {
	if err := sipdesk.ValidatePortalPassword(next); err != nil {
		return fieldOf(err, "new_password")
	}
	if err := s.confirmPassword(ctx, customerID, current, "current_password"); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, next)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx sipdesk.Tx) error {
		c, err := tx.Customer(customerID, true)
		if err != nil {
			return err
		}
		c.PasswordHash = hash
		if err := tx.UpdateCustomer(c); err != nil {
			return err
		}
		n, err := tx.DeleteCustomerSessions(customerID, sipdesk.HashToken(sessionToken))
		if err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, 0, sipdesk.AuditPasswordChanged, "other sessions ended: "+strconv.Itoa(n))
	})
}

// confirmPassword checks the customer's portal password before a
// sensitive change; the attempt is counted before the check and a
// success takes it back (5 wrong ones per 15 minutes).
func (s *Service) confirmPassword(ctx context.Context, customerID int64, password, field string) error {
	var c *sipdesk.Customer
	if err := s.view(ctx, func(tx sipdesk.Tx) (err error) { c, err = tx.Customer(customerID, false); return err }); err != nil {
		return err
	}
	if !s.reauth.reserve(c.ID, s.now()) {
		return &sipdesk.Error{Code: sipdesk.ERateLimited, Field: field, Message: "too many wrong passwords: try again in 15 minutes"}
	}
	ok, err := s.checkPassword(ctx, c.PasswordHash, password)
	if err != nil {
		return err
	}
	if !ok {
		return &sipdesk.Error{Code: sipdesk.EUnauthorized, Field: field, Message: "the portal password is not right"}
	}
	s.reauth.refund(c.ID)
	return nil
}

// fieldOf puts a validation error on the form field it belongs to.
func fieldOf(err error, field string) error {
	if e, ok := err.(*sipdesk.Error); ok {
		c := *e
		c.Field = field
		return &c
	}
	return err
}

// RequestPasswordReset emails a "forgot password" link to the address when
// it belongs to a customer. The answer is the same either way (the form
// does not tell who has an account); requests are limited per address and
// per source.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) error {
	email, err := sipdesk.NormalizeEmail(email)
	if err != nil {
		return fieldOf(err, "email")
	}
	const msg = "too many password reset requests: try again in 15 minutes"
	return s.update(ctx, func(tx sipdesk.Tx) error {
		if src := sourceOf(ctx); src != "" {
			if err := s.bump(tx, "pwreset:src:"+src, LoginWindow, resetMaxSource, "email", msg); err != nil {
				return err
			}
		}
		if err := s.bump(tx, "pwreset:acct:"+email, LoginWindow, resetMaxEmail, "email", msg); err != nil {
			return err
		}
		c, err := tx.CustomerByEmail(email)
		if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
			return nil
		}
		if err != nil {
			return err
		}
		token := sipdesk.GenerateToken("")
		if err := tx.InsertPasswordReset(&sipdesk.PasswordReset{CustomerID: c.ID, TokenHash: sipdesk.HashToken(token),
			ExpiresAt: s.now().Add(PasswordResetTTL), CreatedAt: s.now()}); err != nil {
			return err
		}
		link := s.opt.BaseURL + "/password/reset?token=" + url.QueryEscape(token)
		return tx.InsertMail(&sipdesk.Mail{
			To:      c.Email,
			Subject: "Reset your sipdesk portal password",
			Text: "Someone (hopefully you) asked to reset the password of your sipdesk portal account.\n\n" +
				"Choose a new password: " + link + "\n\nThe link works once, for 30 minutes. If you did not ask for it, ignore this email: your password stays as it is.\n",
			HTML: `<p>Someone (hopefully you) asked to reset the password of your sipdesk portal account.</p>` +
				`<p><a href="` + html.EscapeString(link) + `" style="display:inline-block;padding:10px 18px;background:#1a56db;color:#fff;border-radius:6px;text-decoration:none">Choose a new password</a></p>` +
				`<p>The link works once, for 30 minutes. If you did not ask for it, ignore this email: your password stays as it is.</p>`,
		})
	})
}

// CheckPasswordReset tells whether a "forgot password" link can still be
// used (the page shows the form or the reason).
func (s *Service) CheckPasswordReset(ctx context.Context, token string) error {
	return s.view(ctx, func(tx sipdesk.Tx) error {
		_, err := s.validPasswordReset(tx, token)
		return err
	})
}

func (s *Service) validPasswordReset(tx sipdesk.Tx, token string) (*sipdesk.PasswordReset, error) {
	r, err := tx.PasswordResetByHash(sipdesk.HashToken(token))
	switch {
	case sipdesk.ErrorCode(err) == sipdesk.ENotFound:
		return nil, sipdesk.Errorf(sipdesk.ENotFound, "this link is not valid: ask for a new one")
	case err != nil:
		return nil, err
	case !r.UsedAt.IsZero():
		return nil, sipdesk.Errorf(sipdesk.EConflict, "this link was already used: ask for a new one")
	case s.now().After(r.ExpiresAt):
		return nil, sipdesk.Errorf(sipdesk.EForbidden, "this link has expired: ask for a new one")
	}
	return r, nil
}

// CompletePasswordReset sets the new password of a valid link, uses the
// link up, ends every session and clears the account's failed logins. The
// authenticator, when there is one, still guards the next login.
func (s *Service) CompletePasswordReset(ctx context.Context, token, password string) error {
	if err := sipdesk.ValidatePortalPassword(password); err != nil {
		return fieldOf(err, "password")
	}
	if err := s.CheckPasswordReset(ctx, token); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx sipdesk.Tx) error {
		if _, err := s.validPasswordReset(tx, token); err != nil {
			return err
		}
		r, err := tx.UsePasswordReset(sipdesk.HashToken(token), s.now())
		if err != nil {
			return err
		}
		c, err := tx.Customer(r.CustomerID, true)
		if err != nil {
			return err
		}
		c.PasswordHash = hash
		if err := tx.UpdateCustomer(c); err != nil {
			return err
		}
		if _, err := tx.DeleteCustomerSessions(c.ID, ""); err != nil {
			return err
		}
		if err := tx.ClearAttempts("login:acct:" + c.Email); err != nil {
			return err
		}
		return s.audit(tx, CustomerActor(c.ID, "email-link"), c.ID, 0, sipdesk.AuditPasswordReset, "")
	})
}

// TOTPSetup is what the enrolment page shows: the secret, its otpauth://
// URL and that URL as a QR code (a PNG data: URL).
type TOTPSetup struct {
	Secret string
	URL    string
	QR     string
}

// TwoFactor is the state of a customer's second factor.
type TwoFactor struct {
	Enabled       bool // the authenticator app
	RecoveryCodes int  // unused ones left
	Passkeys      int
}

// TwoFactorStatus tells whether logins ask for a code.
func (s *Service) TwoFactorStatus(ctx context.Context, customerID int64) (TwoFactor, error) {
	var st TwoFactor
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		keys, err := tx.Passkeys(customerID)
		if err != nil {
			return err
		}
		st.Passkeys = len(keys)
		o, err := tx.TOTP(customerID)
		if err != nil && sipdesk.ErrorCode(err) != sipdesk.ENotFound {
			return err
		}
		st.Enabled = err == nil && o.Enabled()
		if !st.Enabled && st.Passkeys == 0 {
			return nil
		}
		st.RecoveryCodes, err = tx.RecoveryCodesLeft(customerID)
		return err
	})
	return st, err
}

// StartTOTP returns the secret to scan into an authenticator app. A
// pending secret is kept until confirmed, so reloading the page shows the
// same QR code as the one already scanned.
func (s *Service) StartTOTP(ctx context.Context, customerID int64) (*TOTPSetup, error) {
	var setup *TOTPSetup
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		c, err := tx.Customer(customerID, false)
		if err != nil {
			return err
		}
		o, err := tx.TOTP(customerID)
		switch {
		case err == nil && o.Enabled():
			return sipdesk.Errorf(sipdesk.EConflict, "two-factor authentication is already on")
		case sipdesk.ErrorCode(err) == sipdesk.ENotFound:
			o = nil
		case err != nil:
			return err
		}
		var secret []byte
		if o != nil {
			secret, _ = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(o.Secret)
		}
		key, err := totpKey(c.Email, secret)
		if err != nil {
			return err
		}
		if o == nil {
			if err := tx.SaveTOTP(&sipdesk.TOTP{CustomerID: customerID, Secret: key.Secret()}); err != nil {
				return err
			}
		}
		img, err := key.Image(220, 220)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			return err
		}
		setup = &TOTPSetup{Secret: key.Secret(), URL: key.URL(), QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())}
		return nil
	})
	return setup, err
}

// ConfirmTOTP turns two-factor authentication on once the customer enters
// a code from the app, and returns the recovery codes (shown once; only
// their hashes are stored).
func (s *Service) ConfirmTOTP(ctx context.Context, customerID int64, code string, actor Actor) ([]string, error) {
	if err := s.update(ctx, func(tx sipdesk.Tx) error {
		return s.bump(tx, "totp:setup:"+strconv.FormatInt(customerID, 10), LoginWindow, twoFactorMax, "code", "too many wrong codes: try again in 15 minutes")
	}); err != nil {
		return nil, err
	}
	var codes []string
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		o, err := tx.TOTP(customerID)
		if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
			return sipdesk.Errorf(sipdesk.EConflict, "start again: the setup was not found")
		}
		if err != nil {
			return err
		}
		if o.Enabled() {
			return sipdesk.Errorf(sipdesk.EConflict, "two-factor authentication is already on")
		}
		step, ok := s.totpStep(o.Secret, code)
		if !ok {
			return &sipdesk.Error{Code: sipdesk.EUnauthorized, Field: "code", Message: "the code is not right: enter the 6 digits the app shows now"}
		}
		o.EnabledAt, o.LastStep = s.now(), step
		if err := tx.SaveTOTP(o); err != nil {
			return err
		}
		if codes, err = issueRecoveryCodes(tx, customerID); err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, 0, sipdesk.AuditTOTPEnabled, "")
	})
	return codes, err
}

// DisableTOTP turns two-factor authentication off, confirmed by the
// portal password.
func (s *Service) DisableTOTP(ctx context.Context, customerID int64, password string, actor Actor) error {
	if err := s.confirmPassword(ctx, customerID, password, "password"); err != nil {
		return err
	}
	return s.update(ctx, func(tx sipdesk.Tx) error {
		if err := tx.DeleteTOTP(customerID); err != nil {
			return err
		}
		if err := dropRecoveryCodesIfNoFactor(tx, customerID); err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, 0, sipdesk.AuditTOTPDisabled, "")
	})
}

// Recovery codes belong to the second factor as a whole: they come with
// the first one (the authenticator app, or a passkey when there is no
// app), stay while any remains (a customer who turns the app off but keeps
// a passkey keeps them), and go with the last.

// issueRecoveryCodes replaces the customer's recovery codes with new ones
// and returns them (shown once; only their hashes are stored).
func issueRecoveryCodes(tx sipdesk.Tx, customerID int64) ([]string, error) {
	codes := newRecoveryCodes()
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = hashRecovery(c)
	}
	return codes, tx.ReplaceRecoveryCodes(customerID, hashes)
}

// dropRecoveryCodesIfNoFactor deletes the recovery codes once neither the
// app nor a passkey is left.
func dropRecoveryCodesIfNoFactor(tx sipdesk.Tx, customerID int64) error {
	hasTOTP, keys, err := secondFactors(tx, customerID)
	if err != nil || hasTOTP || keys > 0 {
		return err
	}
	return tx.ReplaceRecoveryCodes(customerID, nil)
}

// totpStep returns the time step code is valid for (now, one step either
// side for clock drift; the shared TOTP rules of totp.go).
func (s *Service) totpStep(secret, code string) (int64, bool) {
	step := totpStep(secret, strings.ReplaceAll(strings.TrimSpace(code), " ", ""), s.now())
	return step, step >= 0
}

// newRecoveryCodes makes RecoveryCodeCount codes like "k7m2q-x9vfp"
// (50 random bits each).
func newRecoveryCodes() []string {
	enc := base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)
	out := make([]string, RecoveryCodeCount)
	for i := range out {
		b := make([]byte, 7)
		rand.Read(b)
		s := enc.EncodeToString(b)[:10]
		out[i] = s[:5] + "-" + s[5:]
	}
	return out
}

// hashRecovery is how a recovery code is stored: typed in any case, with
// or without its dash.
func hashRecovery(code string) string {
	c := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	return sipdesk.HashToken("recovery:" + c)
}

// Pending logins: after the password of a customer with two-factor
// authentication, the browser holds a signed token (customer id, issue
// time, random) until it sends the code; nothing is stored.
const pendingRaw = 8 + 8 + 8 + 16

func (s *Service) pendingMAC(b []byte) []byte {
	m := hmac.New(sha256.New, s.deviceKey)
	m.Write([]byte("two-factor pending login"))
	m.Write(b)
	return m.Sum(nil)[:16]
}

func (s *Service) newPending(customerID int64) string {
	b := make([]byte, pendingRaw)
	binary.BigEndian.PutUint64(b, uint64(customerID))
	rand.Read(b[8:16])
	binary.BigEndian.PutUint64(b[16:], uint64(s.now().Unix()))
	copy(b[24:], s.pendingMAC(b[:24]))
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Service) pendingCustomer(tok string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != pendingRaw || !hmac.Equal(b[24:], s.pendingMAC(b[:24])) {
		return 0, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[16:])), 0)
	if s.now().Sub(issued) > TwoFactorTTL {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

// LoginSecondFactor finishes a login that asked for a code: the pending
// token from LoginDevice and a code from the app or a recovery code. Wrong
// codes are counted per customer (5 per 15 minutes) before the check; a
// code is accepted once.
func (s *Service) LoginSecondFactor(ctx context.Context, pending, code string) (*LoginResult, error) {
	id, ok := s.pendingCustomer(pending)
	if !ok {
		return nil, sipdesk.Errorf(sipdesk.EForbidden, "the login timed out: enter your email and password again")
	}
	key := "login:2fa:" + strconv.FormatInt(id, 10)
	if err := s.update(ctx, func(tx sipdesk.Tx) error {
		return s.bump(tx, key, LoginWindow, twoFactorMax, "code", errLoginLocked.Message)
	}); err != nil {
		return nil, err
	}
	var c *sipdesk.Customer
	wrong := false
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		var err error
		if c, err = tx.Customer(id, false); err != nil {
			return err
		}
		o, err := tx.TOTP(id)
		if sipdesk.ErrorCode(err) == sipdesk.ENotFound { // passkeys only: no code is right
			o, err = &sipdesk.TOTP{}, nil
		}
		if err != nil {
			return err
		}
		how := "with the authenticator app"
		if step, ok := s.totpStep(o.Secret, code); ok && o.Enabled() {
			if err := tx.UseTOTPStep(id, step); err != nil {
				return err
			}
		} else {
			err := tx.UseRecoveryCode(id, hashRecovery(code), s.now())
			if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
				wrong = true
				return s.audit(tx, CustomerActor(id, "portal"), id, 0, sipdesk.AuditLoginFailed, "wrong two-factor code"+fromSource(ctx))
			}
			if err != nil {
				return err
			}
			how = "with a recovery code"
			if err := s.audit(tx, CustomerActor(id, "portal"), id, 0, sipdesk.AuditRecoveryUsed, ""); err != nil {
				return err
			}
		}
		if err := tx.ClearAttempts(key); err != nil {
			return err
		}
		return s.audit(tx, CustomerActor(id, "portal"), id, 0, sipdesk.AuditLogin, how+fromSource(ctx))
	})
	if err != nil {
		return nil, err
	}
	if wrong {
		return nil, &sipdesk.Error{Code: sipdesk.EUnauthorized, Field: "code", Message: "the code is not right"}
	}
	return &LoginResult{Customer: c, Device: s.newDevice(c.ID)}, nil
}

// fromSource is the audit detail's " from <address>" (empty when unknown).
func fromSource(ctx context.Context) string {
	if src := sourceOf(ctx); src != "" {
		return " from " + src
	}
	return ""
}
