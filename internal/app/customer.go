package app

import (
	"context"
	"crypto/subtle"
	"html"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sipdesk/sipdesk"
)

// Verification codes: valid this long, this many tries.
const (
	codeTTL         = 10 * time.Minute
	codeMaxAttempts = 5
)

// Verification message limits, the same for the signup phone and Caller ID
// numbers, kept in the shared counters so deleting and re-adding a number or
// switching portal nodes resets nothing.
const (
	CodeResendEvery     = time.Minute // at most one code a minute per number
	CodeMaxPerNumberDay = 5           // codes sent to one number (per customer) a day
	CodeMaxTriesDay     = 10          // codes tried for one number (per customer) a day, across resends
	CodeMaxCustomerDay  = 10          // verification messages per customer a day
	CodeMaxSourceDay    = 20          // verification messages asked from one address a day
	MaxPendingNumbers   = 3           // Caller ID numbers waiting for their code, per customer
	SignupMaxSource     = 5           // signups per source address an hour
	day                 = 24 * time.Hour
)

// NewSIPAccount is a SIP account just created, with its password shown once.
type NewSIPAccount struct {
	Account  *sipdesk.SIPAccount
	Password string // "" when no password was generated (IP accounts)
}

// SignupTTL is how long a signup's email link works.
const SignupTTL = time.Hour

// Signup starts a signup: the fields are checked (the same work whether
// the email is known or not), then an email goes to the address: a link that
// creates the account (ConfirmSignup) or, when the address already has an
// account, a note saying so. The answer is the same either way, so signup
// tells nobody whether an email exists. Signups are limited per source
// address (SignupMaxSource emails an hour; refused before any hashing once
// a source is over it).
func (s *Service) Signup(ctx context.Context, email, password, phone string) error {
	src := sourceOf(ctx)
	srcKey := "signup:src:" + src
	const tooMany = "too many signups from your address: try again in an hour"
	if src != "" { // no password hash for a source already over its limit
		var n int
		if err := s.view(ctx, func(tx sipdesk.Tx) (err error) { n, err = tx.Attempts(srcKey, s.now()); return err }); err != nil {
			return err
		}
		if n >= SignupMaxSource {
			return sipdesk.Errorf(sipdesk.ERateLimited, tooMany)
		}
	}
	c, err := s.newCustomer(ctx, email, password, phone)
	if err != nil {
		return err
	}
	token := sipdesk.GenerateToken("")
	return s.update(ctx, func(tx sipdesk.Tx) error {
		// Counted with the email it sends, so a typo costs nothing.
		if src != "" {
			if err := s.bump(tx, srcKey, time.Hour, SignupMaxSource, "", tooMany); err != nil {
				return err
			}
		}
		if _, err := tx.CustomerByEmail(c.Email); err == nil {
			return tx.InsertMail(existingAccountMail(c.Email, s.opt.BaseURL))
		} else if sipdesk.ErrorCode(err) != sipdesk.ENotFound {
			return err
		}
		p := &sipdesk.PendingSignup{TokenHash: sipdesk.HashToken(token), Email: c.Email, PasswordHash: c.PasswordHash,
			Phone: c.VerifiedPhone, ExpiresAt: s.now().Add(SignupTTL)}
		if err := tx.InsertPendingSignup(p); err != nil {
			return err
		}
		return tx.InsertMail(signupMail(c.Email, s.opt.BaseURL+"/signup/confirm?token="+url.QueryEscape(token)))
	})
}

func signupMail(to, link string) *sipdesk.Mail {
	return &sipdesk.Mail{
		To:      to,
		Subject: "Finish your sipdesk signup",
		Text:    "Someone (hopefully you) signed up for sipdesk with this address.\n\nFinish the signup: " + link + "\n\nThe link works once, for an hour. If you did not sign up, ignore this email.\n",
		HTML: `<p>Someone (hopefully you) signed up for sipdesk with this address.</p>` +
			`<p><a href="` + html.EscapeString(link) + `" style="display:inline-block;padding:10px 18px;background:#1a56db;color:#fff;border-radius:6px;text-decoration:none">Finish signup</a></p>` +
			`<p>The link works once, for an hour. If you did not sign up, ignore this email.</p>`,
	}
}

func existingAccountMail(to, base string) *sipdesk.Mail {
	return &sipdesk.Mail{
		To:      to,
		Subject: "You already have a sipdesk account",
		Text:    "Someone (hopefully you) tried to sign up for sipdesk with this address, which already has an account.\n\nLog in: " + base + "/login\n\nIf it was not you, ignore this email: nothing was changed.\n",
	}
}

// ConfirmSignup opens a signup's email link: the unverified customer is
// created, logged in by the caller, and a code goes to its phone. The
// owner of the address is the one told if it is taken meanwhile.
func (s *Service) ConfirmSignup(ctx context.Context, token string) (*sipdesk.Customer, error) {
	var c *sipdesk.Customer
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		p, err := tx.TakePendingSignup(sipdesk.HashToken(token), s.now())
		if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
			return sipdesk.Errorf(sipdesk.ENotFound, "this signup link is not valid or has expired: sign up again")
		}
		if err != nil {
			return err
		}
		if _, err := tx.CustomerByEmail(p.Email); err == nil {
			return sipdesk.Errorf(sipdesk.EConflict, "an account with this email already exists: log in instead")
		}
		c = &sipdesk.Customer{
			Email: p.Email, PasswordHash: p.PasswordHash, VerifiedPhone: p.Phone,
			BillingState: sipdesk.BillingUnverified, ChannelLimit: sipdesk.TrialChannelLimit,
			ChannelScope: sipdesk.ScopeOutbound, SIPAccountQuota: sipdesk.DefaultSIPAccountQuota,
		}
		if err := tx.InsertCustomer(c); err != nil {
			return err
		}
		n := &sipdesk.CallerIDNumber{CustomerID: c.ID, Number: c.VerifiedPhone}
		if err := tx.InsertCallerIDNumber(n); err != nil {
			return err
		}
		return s.sendCode(ctx, tx, n)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// CheckSignup returns every field error of a signup form at once (the
// same checks as Signup, which stops at the first), each a FieldError.
func CheckSignup(email, password, phone string) []error {
	var errs []error
	if _, err := sipdesk.NormalizeEmail(email); err != nil {
		errs = append(errs, fieldOf(err, "email"))
	}
	if err := sipdesk.ValidatePortalPassword(password); err != nil {
		errs = append(errs, fieldOf(err, "password"))
	}
	if _, err := sipdesk.NormalizePhone("phone", phone); err != nil {
		errs = append(errs, fieldOf(err, "phone"))
	}
	return errs
}

func (s *Service) newCustomer(ctx context.Context, email, password, phone string) (*sipdesk.Customer, error) {
	email, err := sipdesk.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if err := sipdesk.ValidatePortalPassword(password); err != nil {
		return nil, err
	}
	phone, err = sipdesk.NormalizePhone("phone", phone)
	if err != nil {
		return nil, err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return nil, err
	}
	return &sipdesk.Customer{
		Email: email, PasswordHash: hash, VerifiedPhone: phone,
		BillingState: sipdesk.BillingUnverified, ChannelLimit: sipdesk.TrialChannelLimit,
		ChannelScope: sipdesk.ScopeOutbound, SIPAccountQuota: sipdesk.DefaultSIPAccountQuota,
	}, nil
}

// sendCode sets a new verification code on n and delivers it. The embedded
// sender writes it to the dev mailbox (and the log); an SMS gateway plugs in
// at the outbox.
func (s *Service) sendCode(ctx context.Context, tx sipdesk.Tx, n *sipdesk.CallerIDNumber) error {
	return s.sendCodeBy(ctx, tx, n, "")
}

// sendCodeBy is sendCode through a channel ("": the SMS channel).
func (s *Service) sendCodeBy(ctx context.Context, tx sipdesk.Tx, n *sipdesk.CallerIDNumber, channel string) error {
	num := strconv.FormatInt(n.CustomerID, 10) + ":" + n.Number
	if err := s.bump(tx, "code:resend:"+num, CodeResendEvery, 1, "number", "a code was sent less than a minute ago: wait a moment"); err != nil {
		return err
	}
	if err := s.bump(tx, "code:sent:"+num, day, CodeMaxPerNumberDay, "number", "no more codes to this number today: try again tomorrow"); err != nil {
		return err
	}
	if err := s.bump(tx, "code:customer:"+strconv.FormatInt(n.CustomerID, 10), day, CodeMaxCustomerDay, "number", "no more verification messages today: try again tomorrow"); err != nil {
		return err
	}
	if src := sourceOf(ctx); src != "" {
		if err := s.bump(tx, "code:src:"+src, day, CodeMaxSourceDay, "number", "no more verification messages from your address today: try again tomorrow"); err != nil {
			return err
		}
	}
	code := sipdesk.GenerateCode()
	n.CodeHash = sipdesk.HashToken(strconv.FormatInt(n.ID, 10) + ":" + code)
	n.ExpiresAt = s.now().Add(codeTTL)
	n.Attempts = 0
	if err := tx.UpdateCallerIDNumber(n); err != nil {
		return err
	}
	return s.deliverCode(tx, n, code, channel)
}

// checkCode verifies a code against n, counting the attempt.
func (s *Service) checkCode(tx sipdesk.Tx, n *sipdesk.CallerIDNumber, code string) error {
	if n.Verified {
		return sipdesk.Errorf(sipdesk.EConflict, "%s is already verified", n.Number)
	}
	if n.CodeHash == "" || s.now().After(n.ExpiresAt) || n.Attempts >= codeMaxAttempts {
		return sipdesk.FieldError("code", "the code has expired: ask for a new one")
	}
	// Tries are counted per customer and number for the day too, across
	// resends: a fresh code does not bring fresh guesses.
	if err := s.bump(tx, "code:tries:"+strconv.FormatInt(n.CustomerID, 10)+":"+n.Number, day, CodeMaxTriesDay, "code", "too many wrong codes for this number today: try again tomorrow"); err != nil {
		return err
	}
	n.Attempts++
	want := sipdesk.HashToken(strconv.FormatInt(n.ID, 10) + ":" + code)
	if subtle.ConstantTimeCompare([]byte(want), []byte(n.CodeHash)) != 1 {
		if err := tx.UpdateCallerIDNumber(n); err != nil {
			return err
		}
		return errWrongCode
	}
	n.Verified, n.CodeHash = true, ""
	return tx.UpdateCallerIDNumber(n)
}

// errWrongCode is returned by checkCode after it recorded the failed
// attempt; callers commit the transaction (keeping the count) and then
// report it, through committedWrongCode.
var errWrongCode = sipdesk.FieldError("code", "the code is not right")

// committedWrongCode turns errWrongCode into nil for the transaction, so the
// attempt count is committed, and remembers to report it.
func committedWrongCode(err error, wrong *bool) error {
	if err == errWrongCode {
		*wrong = true
		return nil
	}
	return err
}

// VerifyPhone checks the signup code; the customer becomes a trial account
// and gets its first SIP account.
func (s *Service) VerifyPhone(ctx context.Context, customerID int64, code string) (*NewSIPAccount, error) {
	var out *NewSIPAccount
	wrong := false
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		wrong = false // Update may retry fn
		c, n, err := pendingPhone(tx, customerID)
		if err != nil {
			return err
		}
		if err := s.checkCode(tx, n, code); err != nil {
			return committedWrongCode(err, &wrong)
		}
		out, err = s.activateCustomer(tx, c)
		return err
	})
	if err == nil && wrong {
		return nil, errWrongCode
	}
	return out, err
}

// pendingPhone locks an unverified customer and returns its signup number.
func pendingPhone(tx sipdesk.Tx, customerID int64) (*sipdesk.Customer, *sipdesk.CallerIDNumber, error) {
	c, err := tx.Customer(customerID, true)
	if err != nil {
		return nil, nil, err
	}
	if c.BillingState != sipdesk.BillingUnverified {
		return nil, nil, sipdesk.Errorf(sipdesk.EConflict, "the phone number is already verified")
	}
	n, err := numberOf(tx, c.ID, c.VerifiedPhone)
	return c, n, err
}

func numberOf(tx sipdesk.Tx, customerID int64, number string) (*sipdesk.CallerIDNumber, error) {
	ns, err := tx.CallerIDNumbers(customerID)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		if n.Number == number {
			return n, nil
		}
	}
	return nil, sipdesk.Errorf(sipdesk.ENotFound, "number not found")
}

// activateCustomer makes a verified customer a trial account with its first
// SIP account: generated username and password, Caller ID = verified phone.
func (s *Service) activateCustomer(tx sipdesk.Tx, c *sipdesk.Customer) (*NewSIPAccount, error) {
	c.BillingState = sipdesk.BillingTrial
	if err := tx.UpdateCustomer(c); err != nil {
		return nil, err
	}
	return s.createSIPAccount(tx, c, SIPAccountInput{Name: "Main", AuthType: sipdesk.AuthPassword}, ActorSystem)
}

// CreateVerifiedCustomer is the operator's shortcut (admin customer create):
// a trial customer whose phone counts as verified, with its first SIP account.
func (s *Service) CreateVerifiedCustomer(ctx context.Context, email, password, phone string) (*sipdesk.Customer, *NewSIPAccount, error) {
	c, err := s.newCustomer(ctx, email, password, phone)
	if err != nil {
		return nil, nil, err
	}
	var first *NewSIPAccount
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		if err := tx.InsertCustomer(c); err != nil {
			return err
		}
		if err := tx.InsertCallerIDNumber(&sipdesk.CallerIDNumber{CustomerID: c.ID, Number: c.VerifiedPhone, Verified: true}); err != nil {
			return err
		}
		first, err = s.activateCustomer(tx, c)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return c, first, nil
}

// dummyHash is checked for unknown emails so they take as long as known ones.
var dummyHash = sync.OnceValue(func() string { return HashPassword("not-a-real-password-1A") })

// Customer returns a customer account.
func (s *Service) Customer(ctx context.Context, id int64) (*sipdesk.Customer, error) {
	var c *sipdesk.Customer
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		c, err = tx.Customer(id, false)
		return err
	})
	return c, err
}

// CreateAPIToken creates a personal API token and returns it (shown once).
func (s *Service) CreateAPIToken(ctx context.Context, customerID int64, name string, actor Actor) (string, error) {
	if name == "" {
		name = "api"
	}
	if len(name) > 64 {
		return "", sipdesk.FieldError("name", "must be at most 64 characters")
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, sipdesk.HiddenRune) {
		return "", sipdesk.FieldError("name", "must not contain control, direction or invisible characters")
	}
	token := sipdesk.GenerateToken("sdk_")
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		c, err := tx.Customer(customerID, false)
		if err != nil {
			return err
		}
		if c.BillingState == sipdesk.BillingUnverified {
			return sipdesk.Errorf(sipdesk.EForbidden, "verify the phone number first")
		}
		t := &sipdesk.APIToken{CustomerID: customerID, Name: name, Hash: sipdesk.HashToken(token), CreatedAt: s.now()}
		if err := tx.InsertAPIToken(t); err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, 0, sipdesk.AuditTokenCreated, "token "+strconv.FormatInt(t.ID, 10)+" ("+name+")")
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// AuthenticateToken returns the customer id an API token belongs to.
func (s *Service) AuthenticateToken(ctx context.Context, token string) (int64, error) {
	t, err := s.AuthenticateAPIToken(ctx, token)
	if err != nil {
		return 0, err
	}
	return t.CustomerID, nil
}

// AuthenticateAPIToken is AuthenticateToken answering the token itself
// (its name goes into the audit log: TokenActor).
func (s *Service) AuthenticateAPIToken(ctx context.Context, token string) (*sipdesk.APIToken, error) {
	if token == "" {
		return nil, sipdesk.Errorf(sipdesk.EUnauthorized, "missing API token")
	}
	var t *sipdesk.APIToken
	var c *sipdesk.Customer
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		if t, err = tx.APITokenByHash(sipdesk.HashToken(token)); err != nil {
			return err
		}
		c, err = tx.Customer(t.CustomerID, false)
		return err
	})
	if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
		return nil, sipdesk.Errorf(sipdesk.EUnauthorized, "invalid API token")
	}
	if err != nil {
		return nil, err
	}
	if c.Suspended() {
		return nil, sipdesk.ErrSuspended()
	}
	// Record use at most once a minute: a write per request would make every
	// API read a write transaction.
	if now := s.now(); now.Sub(t.LastUsedAt) > time.Minute {
		_ = s.update(ctx, func(tx sipdesk.Tx) error { return tx.TouchAPIToken(t.ID, now) })
	}
	return t, nil
}

// APITokens lists a customer's tokens (hashes only).
func (s *Service) APITokens(ctx context.Context, customerID int64) ([]*sipdesk.APIToken, error) {
	var ts []*sipdesk.APIToken
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		ts, err = tx.APITokens(customerID)
		return err
	})
	return ts, err
}

// DeleteAPIToken revokes a token.
func (s *Service) DeleteAPIToken(ctx context.Context, customerID, id int64) error {
	return s.update(ctx, func(tx sipdesk.Tx) error { return tx.DeleteAPIToken(customerID, id) })
}

// Audit returns the customer's audit log, newest first, as the customer
// sees it (operator actions in words, the staff member private: forCustomer).
func (s *Service) Audit(ctx context.Context, customerID int64, limit int) ([]*sipdesk.AuditEntry, error) {
	var es []*sipdesk.AuditEntry
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		es, err = tx.Audit(customerID, limit)
		return err
	})
	for i, e := range es {
		es[i] = forCustomer(e)
	}
	return es, err
}

// Customers lists every customer (operator use).
func (s *Service) Customers(ctx context.Context) ([]*sipdesk.Customer, error) {
	var cs []*sipdesk.Customer
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		cs, err = tx.Customers()
		return err
	})
	return cs, err
}

// SessionTTL is how long a portal login lasts.
const SessionTTL = 12 * time.Hour

// CreateSession starts a portal session and returns its token (for a
// cookie); only the token's hash is stored.
func (s *Service) CreateSession(ctx context.Context, customerID int64) (string, error) {
	token := sipdesk.GenerateToken("")
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		if _, err := tx.DeleteExpiredSessions(s.now()); err != nil {
			return err
		}
		return tx.InsertSession(&sipdesk.Session{CustomerID: customerID, Hash: sipdesk.HashToken(token), CreatedAt: s.now(), ExpiresAt: s.now().Add(SessionTTL)})
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// SessionCustomer returns the customer of a live session.
func (s *Service) SessionCustomer(ctx context.Context, token string) (int64, error) {
	if token == "" {
		return 0, sipdesk.Errorf(sipdesk.EUnauthorized, "not logged in")
	}
	var ss *sipdesk.Session
	var c *sipdesk.Customer
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		if ss, err = tx.SessionByHash(sipdesk.HashToken(token)); err != nil {
			return err
		}
		c, err = tx.Customer(ss.CustomerID, false)
		return err
	})
	if sipdesk.ErrorCode(err) == sipdesk.ENotFound || err == nil && !s.now().Before(ss.ExpiresAt) {
		return 0, sipdesk.Errorf(sipdesk.EUnauthorized, "the session has ended: log in again")
	}
	if err != nil {
		return 0, err
	}
	if c.Suspended() { // suspending deletes the sessions; this closes the race with a login
		return 0, sipdesk.Errorf(sipdesk.EUnauthorized, "the session has ended: this account is suspended. Contact support.")
	}
	return ss.CustomerID, nil
}

// DeleteSession ends a portal session (logout).
func (s *Service) DeleteSession(ctx context.Context, token string) error {
	return s.update(ctx, func(tx sipdesk.Tx) error { return tx.DeleteSession(sipdesk.HashToken(token)) })
}

// ResendSignupCode sends a new verification code to an unverified
// customer's phone (the old one stops working).
func (s *Service) ResendSignupCode(ctx context.Context, customerID int64) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		_, n, err := pendingPhone(tx, customerID)
		if err != nil {
			return err
		}
		return s.sendCode(ctx, tx, n)
	})
}
