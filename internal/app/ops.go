package app

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sipdesk/sipdesk"
)

// ShellOperator is whoever runs `sipdesk admin` on a server: an admin (they
// hold the database anyway). Its audit entries name the actor "operator".
var ShellOperator = &sipdesk.Operator{Email: "shell", Role: sipdesk.RoleAdmin}

// OperatorSessionTTL is how long a console login lasts.
const OperatorSessionTTL = 8 * time.Hour

// OperatorTokenPrefix starts every operator API token.
const OperatorTokenPrefix = "sdo_"

// operatorActor names op in the audit log: "operator" for the shell,
// "operator:<id>:<role>:<email>" for a console or API operator.
func operatorActor(op *sipdesk.Operator) Actor {
	if op == nil || op.ID == 0 {
		return ActorOperator
	}
	return Actor("operator:" + strconv.FormatInt(op.ID, 10) + ":" + string(op.Role) + ":" + op.Email)
}

// authorize refuses an operator whose role lacks the power an action
// needs: every operator use case calls it first, so the console, the API
// and the CLI enforce the same roles. A refusal changes nothing.
func (s *Service) authorize(_ context.Context, op *sipdesk.Operator, p sipdesk.OperatorPower, what string) error {
	if op == nil || op.Disabled || !op.Role.Valid() {
		return sipdesk.Errorf(sipdesk.EForbidden, "not an operator")
	}
	if !op.Role.May(p) {
		return sipdesk.Errorf(sipdesk.EForbidden, "the %s role may not %s", op.Role, what)
	}
	return nil
}

// NewOperator is a created operator with its TOTP secret (shown once).
type NewOperator struct {
	Operator   *sipdesk.Operator
	TOTPSecret string
}

// OpsCreateOperator adds a member of staff (admin): email, password (the
// portal's policy) and role; it returns the TOTP secret to enter in an
// authenticator app.
func (s *Service) OpsCreateOperator(ctx context.Context, by *sipdesk.Operator, email, password string, role sipdesk.OperatorRole) (*NewOperator, error) {
	if err := s.authorize(ctx, by, sipdesk.PowerAdmin, "manage operators"); err != nil {
		return nil, err
	}
	email, err := sipdesk.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, sipdesk.FieldError("role", "must be admin, support or readonly")
	}
	if err := sipdesk.ValidatePortalPassword(password); err != nil {
		return nil, err
	}
	secret, err := NewTOTPSecret(email)
	if err != nil {
		return nil, err
	}
	phc, err := s.hashPassword(ctx, password)
	if err != nil {
		return nil, err
	}
	o := &sipdesk.Operator{Email: email, PasswordHash: phc, Role: role, TOTPSecret: secret, CreatedAt: s.now()}
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		if err := tx.InsertOperator(o); err != nil {
			if sipdesk.ErrorCode(err) == sipdesk.EConflict {
				return sipdesk.FieldError("email", "an operator with this email exists")
			}
			return err
		}
		return s.audit(tx, operatorActor(by), 0, 0, sipdesk.AuditOperatorCreated, "operator "+strconv.FormatInt(o.ID, 10)+" ("+email+"), role "+string(role))
	})
	if err != nil {
		return nil, err
	}
	return &NewOperator{Operator: o, TOTPSecret: secret}, nil
}

// OpsCreateOperatorToken creates an operator API token for operatorID
// (admin) and returns it; only its hash is stored. The token acts with the
// operator's role.
func (s *Service) OpsCreateOperatorToken(ctx context.Context, by *sipdesk.Operator, operatorID int64, name string) (string, error) {
	if err := s.authorize(ctx, by, sipdesk.PowerAdmin, "manage operators"); err != nil {
		return "", err
	}
	if name == "" {
		name = "api"
	}
	if len(name) > 64 || !utf8.ValidString(name) || strings.ContainsFunc(name, sipdesk.HiddenRune) {
		return "", sipdesk.FieldError("name", "must be at most 64 characters without control or invisible characters")
	}
	token := sipdesk.GenerateToken(OperatorTokenPrefix)
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		if _, err := tx.Operator(operatorID); err != nil {
			return err
		}
		t := &sipdesk.OperatorToken{OperatorID: operatorID, Name: name, Hash: sipdesk.HashToken(token), CreatedAt: s.now()}
		if err := tx.InsertOperatorToken(t); err != nil {
			return err
		}
		return s.audit(tx, operatorActor(by), 0, 0, sipdesk.AuditOperatorToken, "operator "+strconv.FormatInt(operatorID, 10)+" token "+strconv.FormatInt(t.ID, 10)+" ("+name+")")
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// AuthenticateOperatorToken returns the operator an API token belongs to.
func (s *Service) AuthenticateOperatorToken(ctx context.Context, token string) (*sipdesk.Operator, error) {
	if !strings.HasPrefix(token, OperatorTokenPrefix) || len(token) > 200 {
		return nil, sipdesk.Errorf(sipdesk.EUnauthorized, "invalid operator token")
	}
	var t *sipdesk.OperatorToken
	var o *sipdesk.Operator
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		if t, err = tx.OperatorTokenByHash(sipdesk.HashToken(token)); err != nil {
			return err
		}
		o, err = tx.Operator(t.OperatorID)
		return err
	})
	if sipdesk.ErrorCode(err) == sipdesk.ENotFound || err == nil && o.Disabled {
		return nil, sipdesk.Errorf(sipdesk.EUnauthorized, "invalid operator token")
	}
	if err != nil {
		return nil, err
	}
	if now := s.now(); now.Sub(t.LastUsedAt) > time.Minute {
		_ = s.update(ctx, func(tx sipdesk.Tx) error { return tx.TouchOperatorToken(t.ID, now) })
	}
	return o, nil
}

var errOpsLogin = sipdesk.Errorf(sipdesk.EUnauthorized, "wrong email, password or code")

// OperatorLogin checks an operator's password and TOTP code, always both,
// under the portal's login limits (per account and source, counted before
// the check, shared by every node), and starts a console session. A code
// works once. It returns the operator and the session token.
func (s *Service) OperatorLogin(ctx context.Context, email, password, code string) (*sipdesk.Operator, string, error) {
	email, _ = sipdesk.NormalizeEmail(email)
	src := sourceOf(ctx)
	if src != "" && s.loginRate.Add("ops:"+src) > LoginRatePerMinute {
		return nil, "", errLoginFast
	}
	keys, limits := []string{"ops:acct:" + email}, []int{LoginMaxAccount}
	if src != "" {
		keys, limits = append([]string{"ops:src:" + src}, keys...), append([]int{LoginMaxSource}, limits...)
	}
	flight, flightMax := []string{"ops:acct:" + email}, []int{loginInflightAcct}
	if src != "" {
		flight, flightMax = append(flight, "ops:src:"+src), append(flightMax, loginInflightSrc)
	}
	if !s.loginFlight.enter(flight, flightMax) {
		return nil, "", errLoginBusy
	}
	defer s.loginFlight.leave(flight)
	if err := s.reserve(ctx, keys, limits); err != nil {
		return nil, "", err
	}
	var o *sipdesk.Operator
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		o, err = tx.OperatorByEmail(email)
		return err
	})
	if err != nil && sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		return nil, "", err
	}
	phc := dummyHash()
	if o != nil {
		phc = o.PasswordHash
	}
	ok, err := s.checkPassword(ctx, phc, password)
	if err != nil { // busy: not tried, not counted
		_ = s.update(context.WithoutCancel(ctx), func(tx sipdesk.Tx) error {
			for _, k := range keys {
				if err := tx.RefundAttempt(k); err != nil {
					return err
				}
			}
			return nil
		})
		return nil, "", err
	}
	if o == nil || !ok || o.Disabled {
		return nil, "", errOpsLogin
	}
	step := totpStep(o.TOTPSecret, strings.TrimSpace(code), s.now())
	if step < 0 {
		return nil, "", errOpsLogin
	}
	token := sipdesk.GenerateToken("")
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		fresh, err := tx.UseOperatorTOTPStep(o.ID, step)
		if err != nil {
			return err
		}
		if !fresh { // a code already used (replayed or shoulder-surfed): a failure
			return errOpsLogin
		}
		if len(keys) > 1 {
			if err := tx.RefundAttempt(keys[0]); err != nil {
				return err
			}
		}
		if err := tx.ClearAttempts(keys[len(keys)-1]); err != nil {
			return err
		}
		if _, err := tx.DeleteExpiredOperatorSessions(s.now()); err != nil {
			return err
		}
		return tx.InsertOperatorSession(&sipdesk.OperatorSession{OperatorID: o.ID, Hash: sipdesk.HashToken(token),
			CreatedAt: s.now(), ExpiresAt: s.now().Add(OperatorSessionTTL)})
	})
	if err != nil {
		return nil, "", err
	}
	return o, token, nil
}

// OperatorSession returns the operator of a live console session.
func (s *Service) OperatorSession(ctx context.Context, token string) (*sipdesk.Operator, error) {
	if token == "" || len(token) > 200 {
		return nil, sipdesk.Errorf(sipdesk.EUnauthorized, "not logged in")
	}
	var o *sipdesk.Operator
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		ss, err := tx.OperatorSessionByHash(sipdesk.HashToken(token))
		if err != nil {
			return err
		}
		if !s.now().Before(ss.ExpiresAt) {
			return sipdesk.Errorf(sipdesk.ENotFound, "session ended")
		}
		o, err = tx.Operator(ss.OperatorID)
		return err
	})
	if sipdesk.ErrorCode(err) == sipdesk.ENotFound || err == nil && o.Disabled {
		return nil, sipdesk.Errorf(sipdesk.EUnauthorized, "the session has ended: log in again")
	}
	return o, err
}

// DeleteOperatorSession ends a console session (logout).
func (s *Service) DeleteOperatorSession(ctx context.Context, token string) error {
	return s.update(ctx, func(tx sipdesk.Tx) error { return tx.DeleteOperatorSession(sipdesk.HashToken(token)) })
}

// ParseAmount reads a money amount like "50" or "49.90" into cents (the
// CLI's --amount, the console's and the operator API's top-ups).
func ParseAmount(s string) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > 1e9 {
		return 0, sipdesk.FieldError("amount", "must be a positive amount like 50 or 49.90")
	}
	return int64(math.Round(f * 100)), nil
}
