package app

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
)

// SIPAccountInput creates a SIP account. Username and Password are optional
// for password accounts: generated when empty.
type SIPAccountInput struct {
	Name       string
	AuthType   sipdesk.AuthType
	Username   string
	Password   string
	AllowedIPs []string
	TechPrefix string
	ChannelCap int
}

// SIPAccountPatch changes a SIP account; nil fields stay as they are.
type SIPAccountPatch struct {
	Name       *string
	Status     *sipdesk.Status
	AuthType   *sipdesk.AuthType
	AllowedIPs *[]string
	TechPrefix *string
	ChannelCap *int
}

// SIPAccounts lists a customer's SIP accounts.
func (s *Service) SIPAccounts(ctx context.Context, customerID int64) ([]*sipdesk.SIPAccount, error) {
	var as []*sipdesk.SIPAccount
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		as, err = tx.SIPAccounts(customerID)
		return err
	})
	return as, err
}

// SIPAccount returns one of the customer's SIP accounts.
func (s *Service) SIPAccount(ctx context.Context, customerID, id int64) (*sipdesk.SIPAccount, error) {
	var a *sipdesk.SIPAccount
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		a, err = tx.SIPAccount(customerID, id)
		return err
	})
	return a, err
}

// CreateSIPAccount creates a SIP account within the customer's quota.
func (s *Service) CreateSIPAccount(ctx context.Context, customerID int64, in SIPAccountInput, actor Actor) (*NewSIPAccount, error) {
	var out *NewSIPAccount
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		c, err := tx.Customer(customerID, true)
		if err != nil {
			return err
		}
		if c.BillingState == sipdesk.BillingUnverified {
			return sipdesk.Errorf(sipdesk.EForbidden, "verify the phone number first")
		}
		n, err := tx.CountSIPAccounts(customerID)
		if err != nil {
			return err
		}
		if n >= c.SIPAccountQuota {
			return &sipdesk.Error{Code: sipdesk.EQuotaExceeded, Field: "name", Message: "you have used all " + strconv.FormatInt(int64(c.SIPAccountQuota), 10) + " SIP accounts of your quota; open a support ticket for more"}
		}
		out, err = s.createSIPAccount(tx, c, in, actor)
		return err
	})
	return out, err
}

func (s *Service) createSIPAccount(tx sipdesk.Tx, c *sipdesk.Customer, in SIPAccountInput, actor Actor) (*NewSIPAccount, error) {
	name, err := sipdesk.ValidateName(in.Name)
	if err != nil {
		return nil, err
	}
	a := &sipdesk.SIPAccount{CustomerID: c.ID, Name: name, AuthType: in.AuthType, PrevStatus: sipdesk.StatusActive}
	a.CallerID.DefaultNumber = c.VerifiedPhone
	out := &NewSIPAccount{Account: a}
	switch in.AuthType {
	case sipdesk.AuthPassword:
		if len(in.AllowedIPs) > 0 {
			if a.AllowedIPs, err = sipdesk.ParseAllowedIPs(in.AllowedIPs, false, s.opt.AllowPrivateIPs); err != nil {
				return nil, err
			}
		}
		if in.TechPrefix != "" {
			return nil, sipdesk.FieldError("tech_prefix", "only IP accounts have a tech prefix")
		}
		if out.Password, err = s.setCredentials(tx, a, in.Username, in.Password); err != nil {
			return nil, err
		}
	case sipdesk.AuthIP:
		if in.Username != "" || in.Password != "" {
			return nil, sipdesk.FieldError("auth_type", "IP accounts have no username or password")
		}
		if err := s.setIPs(tx, a, in.AllowedIPs, in.TechPrefix); err != nil {
			return nil, err
		}
		a.HeldForReview = a.HeldForReview || s.opt.HoldIPAccounts
	default:
		return nil, sipdesk.FieldError("auth_type", "must be \"password\" or \"ip\"")
	}
	if err := s.checkCap(tx, c, a, in.ChannelCap); err != nil {
		return nil, err
	}
	v, err := tx.ChangeVersion()
	if err != nil {
		return nil, err
	}
	a.MarkInProcess(v)
	a.PrevStatus = sipdesk.StatusActive
	if err := tx.InsertSIPAccount(a); err != nil {
		return nil, err
	}
	return out, s.audit(tx, actor, c.ID, a.ID, sipdesk.AuditSIPAccountCreated, string(a.AuthType)+" account "+strconvQuote(a.Name))
}

// setCredentials sets a username and password (generated when empty) and
// returns the password to show once.
func (s *Service) setCredentials(tx sipdesk.Tx, a *sipdesk.SIPAccount, username, password string) (string, error) {
	if username == "" {
		for range 5 {
			username = sipdesk.GenerateUsername()
			if _, err := tx.SIPAccountByUsername(username); sipdesk.ErrorCode(err) == sipdesk.ENotFound {
				break
			}
		}
	} else if err := sipdesk.ValidateUsername(username); err != nil {
		return "", err
	}
	if password == "" {
		password = sipdesk.GeneratePassword()
	} else if err := sipdesk.ValidatePassword(password); err != nil {
		return "", err
	}
	if strings.Contains(strings.ToLower(password), strings.ToLower(username)) {
		return "", sipdesk.FieldError("password", "must not contain the username")
	}
	if o, err := tx.SIPAccountByUsername(username); err == nil && o.ID != a.ID {
		return "", &sipdesk.Error{Code: sipdesk.EConflict, Field: "username", Message: "this username is taken"}
	}
	a.Username = username
	a.Digest = sipdesk.NewDigestHashes(username, s.opt.Realm, password)
	return password, nil
}

func (s *Service) setIPs(tx sipdesk.Tx, a *sipdesk.SIPAccount, ips []string, techPrefix string) error {
	var err error
	if a.AllowedIPs, err = sipdesk.ParseAllowedIPs(ips, true, s.opt.AllowPrivateIPs); err != nil {
		return err
	}
	if err := sipdesk.ValidateTechPrefix(techPrefix); err != nil {
		return err
	}
	a.TechPrefix = techPrefix
	if sipdesk.HasWideRange(a.AllowedIPs) {
		a.HeldForReview = true // in process until an operator approves the range
	}
	others, err := tx.IPAccounts()
	if err != nil {
		return err
	}
	return sipdesk.CheckIPConflicts(a, others)
}

func (s *Service) checkCap(tx sipdesk.Tx, c *sipdesk.Customer, a *sipdesk.SIPAccount, cap int) error {
	if cap == a.ChannelCap && cap == 0 {
		return nil
	}
	all, err := tx.SIPAccounts(c.ID)
	if err != nil {
		return err
	}
	others := 0
	for _, o := range all {
		if o.ID != a.ID || a.ID == 0 {
			others += o.ChannelCap
		}
	}
	if err := sipdesk.ValidateChannelCap(cap, others, c.ChannelLimit); err != nil {
		return err
	}
	a.ChannelCap = cap
	return nil
}

// UpdateSIPAccount applies a customer's changes. Changes of auth settings
// put the account in process until every edge node applied them; a switch
// to password auth sends the Edit Credentials email for the new password.
func (s *Service) UpdateSIPAccount(ctx context.Context, customerID, id int64, p SIPAccountPatch, actor Actor) (*sipdesk.SIPAccount, error) {
	var a *sipdesk.SIPAccount
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		c, err := tx.Customer(customerID, true)
		if err != nil {
			return err
		}
		if a, err = tx.SIPAccount(customerID, id); err != nil {
			return err
		}
		var notes []string
		if p.Name != nil {
			if a.Name, err = sipdesk.ValidateName(*p.Name); err != nil {
				return err
			}
		}
		authChanged := false
		switch {
		case p.AuthType != nil && *p.AuthType != a.AuthType:
			if err := s.switchAuthType(tx, a, *p.AuthType, p); err != nil {
				return err
			}
			authChanged = true
			notes = append(notes, "auth type → "+string(a.AuthType))
		case p.AllowedIPs != nil || p.TechPrefix != nil:
			ips, prefix := prefixStrings(a.AllowedIPs), a.TechPrefix
			if p.AllowedIPs != nil {
				ips = *p.AllowedIPs
			}
			if p.TechPrefix != nil {
				prefix = *p.TechPrefix
			}
			if a.AuthType == sipdesk.AuthIP {
				err = s.setIPs(tx, a, ips, prefix)
			} else if prefix != "" {
				err = sipdesk.FieldError("tech_prefix", "only IP accounts have a tech prefix")
			} else {
				a.AllowedIPs, err = sipdesk.ParseAllowedIPs(ips, false, s.opt.AllowPrivateIPs)
			}
			if err != nil {
				return err
			}
			authChanged = true
			notes = append(notes, "allowed IPs changed")
		}
		if p.ChannelCap != nil && *p.ChannelCap != a.ChannelCap {
			if err := s.checkCap(tx, c, a, *p.ChannelCap); err != nil {
				return err
			}
			notes = append(notes, "channel cap → "+strconv.FormatInt(int64(a.ChannelCap), 10))
		}
		if p.Status != nil {
			old := a.Status
			if err := a.SetStatus(*p.Status); err != nil {
				return err
			}
			if *p.Status == sipdesk.StatusInactive {
				a.JWTEnabled = false
				if err := tx.DeleteRegistrations(a.ID); err != nil {
					return err
				}
			}
			if old != a.Status {
				notes = append(notes, "status → "+string(a.Status))
			}
		}
		if authChanged {
			v, err := tx.ChangeVersion()
			if err != nil {
				return err
			}
			a.MarkInProcess(v)
		}
		a.UpdatedAt = s.now()
		if err := tx.UpdateSIPAccount(a); err != nil {
			return err
		}
		action := sipdesk.AuditSIPAccountUpdated
		if authChanged && p.AuthType != nil {
			action = sipdesk.AuditAuthTypeChanged
		} else if p.Status != nil && len(notes) == 1 {
			action = sipdesk.AuditStatusChanged
		}
		return s.audit(tx, actor, customerID, a.ID, action, strings.Join(notes, "; "))
	})
	return a, err
}

func (s *Service) switchAuthType(tx sipdesk.Tx, a *sipdesk.SIPAccount, to sipdesk.AuthType, p SIPAccountPatch) error {
	switch to {
	case sipdesk.AuthIP:
		var ips []string
		if p.AllowedIPs != nil {
			ips = *p.AllowedIPs
		}
		prefix := ""
		if p.TechPrefix != nil {
			prefix = *p.TechPrefix
		}
		a.AuthType = sipdesk.AuthIP
		if err := s.setIPs(tx, a, ips, prefix); err != nil {
			return err
		}
		a.Username, a.Digest = "", sipdesk.DigestHashes{}
		a.JWTEnabled, a.JWTSecret, a.JWTPrevSecret = false, "", ""
		return tx.DeleteRegistrations(a.ID)
	case sipdesk.AuthPassword:
		if p.TechPrefix != nil && *p.TechPrefix != "" {
			return sipdesk.FieldError("tech_prefix", "only IP accounts have a tech prefix")
		}
		a.AuthType, a.TechPrefix, a.AllowedIPs = sipdesk.AuthPassword, "", nil
		// New credentials go through the reset flow: a generated username
		// and an unknown random password until the customer sets one.
		if _, err := s.setCredentials(tx, a, "", ""); err != nil {
			return err
		}
		return s.queueCredentialReset(tx, a)
	}
	return sipdesk.FieldError("auth_type", "must be \"password\" or \"ip\"")
}

func prefixStrings(ps []sipdesk.AllowedIP) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// DeleteSIPAccount deletes an account from any state: its username and IPs
// are free again, its registrations go with it.
func (s *Service) DeleteSIPAccount(ctx context.Context, customerID, id int64, actor Actor) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		a, err := tx.SIPAccount(customerID, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteSIPAccount(customerID, id); err != nil {
			return err
		}
		return s.audit(tx, actor, a.CustomerID, a.ID, sipdesk.AuditSIPAccountDeleted, strconvQuote(a.Name))
	})
}

// RevealUsername returns the unmasked username; every reveal is audited.
func (s *Service) RevealUsername(ctx context.Context, customerID, id int64, actor Actor) (string, error) {
	var u string
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		a, err := tx.SIPAccount(customerID, id)
		if err != nil {
			return err
		}
		if a.AuthType != sipdesk.AuthPassword {
			return sipdesk.FieldError("auth_type", "IP accounts have no username")
		}
		u = a.Username
		return s.audit(tx, actor, customerID, id, sipdesk.AuditUsernameRevealed, "")
	})
	return u, err
}

// SetJWT enables or disables JWT login. Enabling without a secret generates
// one, returned once; a typed secret is validated. A new secret keeps the
// previous one valid for the rotation overlap, for the tokens it signed
// before (token.Keys). Disabling forgets both secrets.
func (s *Service) SetJWT(ctx context.Context, customerID, id int64, enabled bool, secret string, actor Actor) (generated string, err error) {
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		a, err := tx.SIPAccount(customerID, id)
		if err != nil {
			return err
		}
		detail := "disabled"
		if enabled {
			if err := a.CanEnableJWT(); err != nil {
				return err
			}
			if secret == "" && a.JWTSecret == "" {
				secret = sipdesk.GenerateJWTSecret()
				generated = secret
			} else if secret != "" {
				if err := sipdesk.ValidateJWTSecret(secret); err != nil {
					return err
				}
			}
			if secret != "" && secret != a.JWTSecret {
				if a.JWTSecret != "" {
					a.JWTPrevSecret, a.JWTPrevUntil = a.JWTSecret, s.now().Add(JWTRotationOverlap)
				}
				a.JWTSecret = secret
				detail = "enabled, secret set"
			} else {
				detail = "enabled"
			}
		} else if secret != "" {
			return sipdesk.FieldError("secret", "a secret can only be set when enabling JWT")
		} else {
			// Disabling forgets the secrets: their tokens stop at once, and
			// enabling again generates a new secret instead of bringing
			// back one that may be why JWT was turned off.
			a.JWTSecret, a.JWTPrevSecret, a.JWTPrevUntil = "", "", time.Time{}
		}
		a.JWTEnabled = enabled
		a.UpdatedAt = s.now()
		if err := tx.UpdateSIPAccount(a); err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, id, sipdesk.AuditJWTChanged, detail)
	})
	return generated, err
}

func strconvQuote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "'") + "\"" }
