package app

import (
	"context"
	"html"
	"net/url"
	"sync"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/ratelimit"
	"github.com/sipdesk/sipdesk/internal/token"
)

// Credential reset rules.
const (
	ResetTTL           = 30 * time.Minute
	JWTRotationOverlap = token.RotationOverlap
	reauthMaxFailures  = 5
	reauthWindow       = 15 * time.Minute
)

// SendCredentialReset emails the Edit Credentials link for a password
// account to the customer.
func (s *Service) SendCredentialReset(ctx context.Context, customerID, id int64, actor Actor) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		a, err := tx.SIPAccount(customerID, id)
		if err != nil {
			return err
		}
		if a.AuthType != sipdesk.AuthPassword {
			return sipdesk.FieldError("auth_type", "IP accounts have no password to reset")
		}
		if err := s.queueCredentialReset(tx, a); err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, id, sipdesk.AuditCredentialReset, "")
	})
}

func (s *Service) queueCredentialReset(tx sipdesk.Tx, a *sipdesk.SIPAccount) error {
	c, err := tx.Customer(a.CustomerID, false)
	if err != nil {
		return err
	}
	token := sipdesk.GenerateToken("")
	r := &sipdesk.CredentialReset{CustomerID: a.CustomerID, SIPAccountID: a.ID, TokenHash: sipdesk.HashToken(token),
		ExpiresAt: s.now().Add(ResetTTL), CreatedAt: s.now()}
	if a.ID == 0 {
		return sipdesk.Errorf(sipdesk.EInternal, "reset for an unsaved account")
	}
	if err := tx.InsertCredentialReset(r); err != nil {
		return err
	}
	link := s.opt.BaseURL + "/sip-accounts/edit-credentials?token=" + url.QueryEscape(token)
	name := a.Name
	return tx.InsertMail(&sipdesk.Mail{
		To:      c.Email,
		Subject: "Edit the credentials of your SIP account " + name,
		Text: "Someone (hopefully you) asked to change the username or password of the SIP account \"" + name + "\".\n\n" +
			"Edit Credentials: " + link + "\n\nThe link works once, for 30 minutes. If you did not ask for it, ignore this email.\n",
		HTML: `<p>Someone (hopefully you) asked to change the username or password of the SIP account <b>` + html.EscapeString(name) + `</b>.</p>` +
			`<p><a href="` + html.EscapeString(link) + `" style="display:inline-block;padding:10px 18px;background:#1a56db;color:#fff;border-radius:6px;text-decoration:none">Edit Credentials</a></p>` +
			`<p>The link works once, for 30 minutes. If you did not ask for it, ignore this email.</p>`,
	})
}

// CredentialReset returns the SIP account a valid, unused reset token is
// for (the Edit Credentials window shows its name).
func (s *Service) CredentialReset(ctx context.Context, token string) (*sipdesk.SIPAccount, error) {
	var a *sipdesk.SIPAccount
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		r, err := s.validReset(tx, token)
		if err != nil {
			return err
		}
		a, err = tx.SIPAccount(r.CustomerID, r.SIPAccountID)
		return err
	})
	return a, err
}

func (s *Service) validReset(tx sipdesk.Tx, token string) (*sipdesk.CredentialReset, error) {
	r, err := tx.CredentialResetByHash(sipdesk.HashToken(token))
	if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
		return nil, sipdesk.Errorf(sipdesk.ENotFound, "this link is not valid: ask for a new email from the SIP Accounts page")
	}
	if err != nil {
		return nil, err
	}
	if !r.UsedAt.IsZero() {
		return nil, sipdesk.Errorf(sipdesk.EConflict, "this link was already used: ask for a new email from the SIP Accounts page")
	}
	if s.now().After(r.ExpiresAt) {
		return nil, sipdesk.Errorf(sipdesk.EForbidden, "this link has expired: ask for a new email from the SIP Accounts page")
	}
	return r, nil
}

// Reauth confirms a sensitive change: the portal password and, when the
// customer has a second factor, a code (authenticator app or recovery
// code) or a passkey.
type Reauth struct {
	Password string
	Code     string
	Passkey  PasskeyAnswer
}

// CompleteCredentialReset sets the new username and password, confirmed by
// the customer's portal password (and second factor, Reauth). Wrong portal passwords are rate-limited;
// the old registrations are dropped and the change is audited.
func (s *Service) CompleteCredentialReset(ctx context.Context, token, username, password string, confirm Reauth) (*sipdesk.SIPAccount, error) {
	var cer *ceremony
	if !confirm.Passkey.empty() {
		// The ceremony is spent before the change's transaction (it is
		// one of its own); a wrong one is counted like a wrong code.
		r, err := s.CredentialReset(ctx, token)
		if err != nil {
			return nil, err
		}
		if cer, err = s.openCeremony(ctx, confirm.Passkey.Ceremony, purposeConfirm, r.CustomerID); err != nil {
			return nil, fieldOf(err, "code")
		}
	}
	var a *sipdesk.SIPAccount
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		r, err := s.validReset(tx, token)
		if err != nil {
			return err
		}
		c, err := tx.Customer(r.CustomerID, true)
		if err != nil {
			return err
		}
		// The attempt is counted before the password is checked, so
		// parallel guesses cannot all be checked; a success takes it back.
		if !s.reauth.reserve(c.ID, s.now()) {
			return sipdesk.Errorf(sipdesk.ERateLimited, "too many wrong passwords: try again in 15 minutes")
		}
		ok, err := s.checkPassword(ctx, c.PasswordHash, confirm.Password)
		if err != nil {
			return err // busy: the reserved attempt stays counted
		}
		if !ok {
			return &sipdesk.Error{Code: sipdesk.EUnauthorized, Field: "portal_password", Message: "the portal password is not right"}
		}
		// With a second factor, it is asked too; a wrong one counts in
		// the same attempts as a wrong password.
		if err := s.checkReauthFactor(tx, c.ID, confirm, cer); err != nil {
			return err
		}
		s.reauth.refund(c.ID)
		if a, err = tx.SIPAccount(r.CustomerID, r.SIPAccountID); err != nil {
			return err
		}
		if a.AuthType != sipdesk.AuthPassword {
			return sipdesk.FieldError("auth_type", "the account uses IP authentication now")
		}
		if username == "" {
			username = a.Username
		}
		if password == "" {
			return sipdesk.FieldError("password", "enter the new password")
		}
		old := a.Username
		if _, err := s.setCredentials(tx, a, username, password); err != nil {
			return err
		}
		r.UsedAt = s.now()
		if err := tx.UpdateCredentialReset(r); err != nil {
			return err
		}
		if err := tx.DeleteRegistrations(a.ID); err != nil {
			return err
		}
		v, err := tx.ChangeVersion()
		if err != nil {
			return err
		}
		a.MarkInProcess(v)
		a.UpdatedAt = s.now()
		if err := tx.UpdateSIPAccount(a); err != nil {
			return err
		}
		detail := "password changed"
		if old != a.Username {
			detail = "username and password changed"
		}
		return s.audit(tx, CustomerActor(c.ID, "email-link"), c.ID, a.ID, sipdesk.AuditCredentialsChange, detail)
	})
	return a, err
}

// limiter counts attempts per key in a sliding window (per process; the
// reset window is short and per-node counting is good enough). An attempt
// is reserved before it is tried and refunded when it succeeds. The zero
// value is ready to use.
type limiter struct {
	once sync.Once
	mu   sync.Mutex // reserve's count and add are one step
	w    *ratelimit.Window[int64]
}

func (l *limiter) window() *ratelimit.Window[int64] {
	l.once.Do(func() {
		l.w = ratelimit.New[int64](reauthWindow, ratelimit.Options{Limit: reauthMaxFailures})
	})
	return l.w
}

// reserve counts an attempt for key unless it already has the maximum.
func (l *limiter) reserve(key int64, now time.Time) bool {
	w := l.window()
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.CountAt(key, now) >= reauthMaxFailures {
		return false
	}
	w.AddAt(key, now)
	return true
}

// refund forgets key's attempts: a success (the count is of failures).
func (l *limiter) refund(key int64) { l.window().Reset(key) }

// SoftphoneToken mints a short-lived JWT for the browser softphone of an
// active, JWT-enabled password account.
func (s *Service) SoftphoneToken(ctx context.Context, customerID, id int64) (string, time.Time, error) {
	a, err := s.SIPAccount(ctx, customerID, id)
	if err != nil {
		return "", time.Time{}, err
	}
	if a.AuthType != sipdesk.AuthPassword {
		return "", time.Time{}, &sipdesk.Error{Code: sipdesk.EJWTNotEnabled, Message: "IP accounts have no softphone"}
	}
	if err := a.Usable(); err != nil {
		return "", time.Time{}, err
	}
	if !a.JWTEnabled || a.JWTSecret == "" {
		return "", time.Time{}, &sipdesk.Error{Code: sipdesk.EJWTNotEnabled, Message: "enable JWT authentication on the SIP account first"}
	}
	return token.Mint(a.JWTSecret, a.Username, token.PortalTTL, s.now())
}
