package app

import (
	"context"
	"slices"
	"strconv"

	"github.com/sipdesk/sipdesk"
)

// CallerIDNumbers lists the customer's Caller ID numbers.
func (s *Service) CallerIDNumbers(ctx context.Context, customerID int64) ([]*sipdesk.CallerIDNumber, error) {
	var ns []*sipdesk.CallerIDNumber
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		ns, err = tx.CallerIDNumbers(customerID)
		return err
	})
	return ns, err
}

// AddCallerIDNumber starts the verification of a number (a code is sent).
func (s *Service) AddCallerIDNumber(ctx context.Context, customerID int64, number string) (*sipdesk.CallerIDNumber, error) {
	number, err := sipdesk.NormalizePhone("number", number)
	if err != nil {
		return nil, err
	}
	var n *sipdesk.CallerIDNumber
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		c, err := tx.Customer(customerID, true)
		if err != nil {
			return err
		}
		if c.Trial() {
			return &sipdesk.Error{Code: sipdesk.ETrialLocked, Field: "number", Message: "trial accounts call with the verified signup phone only; top up to add Caller ID numbers"}
		}
		if n, err = numberOf(tx, customerID, number); err == nil {
			if n.Verified {
				return &sipdesk.Error{Code: sipdesk.EConflict, Field: "number", Message: number + " is already verified"}
			}
		} else {
			if err := checkPending(tx, customerID); err != nil {
				return err
			}
			n = &sipdesk.CallerIDNumber{CustomerID: customerID, Number: number, CreatedAt: s.now()}
			if err := tx.InsertCallerIDNumber(n); err != nil {
				return err
			}
		}
		return s.sendCode(ctx, tx, n)
	})
	return n, err
}

// checkPending refuses a new number while MaxPendingNumbers wait for their
// code (each one is a message to someone else's phone).
func checkPending(tx sipdesk.Tx, customerID int64) error {
	ns, err := tx.CallerIDNumbers(customerID)
	if err != nil {
		return err
	}
	pending := 0
	for _, n := range ns {
		if !n.Verified {
			pending++
		}
	}
	if pending >= MaxPendingNumbers {
		return &sipdesk.Error{Code: sipdesk.EQuotaExceeded, Field: "number", Message: "verify or remove the numbers waiting for their code first (at most " + strconv.Itoa(MaxPendingNumbers) + " at a time)"}
	}
	return nil
}

// VerifyCallerIDNumber checks the code sent to a number.
func (s *Service) VerifyCallerIDNumber(ctx context.Context, customerID, id int64, code string) (*sipdesk.CallerIDNumber, error) {
	var n *sipdesk.CallerIDNumber
	wrong := false
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		wrong = false // Update may retry fn
		if n, err = tx.CallerIDNumber(customerID, id); err != nil {
			return err
		}
		return committedWrongCode(s.checkCode(tx, n, code), &wrong)
	})
	if err == nil && wrong {
		return nil, errWrongCode
	}
	return n, err
}

// DeleteCallerIDNumber removes a number that no SIP account or rule uses.
func (s *Service) DeleteCallerIDNumber(ctx context.Context, customerID, id int64) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		n, err := tx.CallerIDNumber(customerID, id)
		if err != nil {
			return err
		}
		c, err := tx.Customer(customerID, false)
		if err != nil {
			return err
		}
		if n.Number == c.VerifiedPhone {
			return sipdesk.FieldError("number", "the signup phone cannot be removed")
		}
		as, err := tx.SIPAccounts(customerID)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.CallerID.DefaultNumber == n.Number {
				return sipdesk.FieldError("number", "%s is the default Caller ID of SIP account %q", n.Number, a.Name)
			}
		}
		rs, err := tx.Rules(customerID)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if slices.Contains(r.Numbers, n.Number) {
				return sipdesk.FieldError("number", "%s is used by the rule %q", n.Number, r.Name)
			}
		}
		return tx.DeleteCallerIDNumber(customerID, id)
	})
}

func verifiedSet(tx sipdesk.Tx, customerID int64) (func(string) bool, error) {
	ns, err := tx.CallerIDNumbers(customerID)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, n := range ns {
		if n.Verified {
			set[n.Number] = true
		}
	}
	return func(n string) bool { return set[n] }, nil
}

// Rules lists the customer's Dynamic Caller ID rules.
func (s *Service) Rules(ctx context.Context, customerID int64) ([]*sipdesk.CallerIDRule, error) {
	var rs []*sipdesk.CallerIDRule
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		rs, err = tx.Rules(customerID)
		return err
	})
	return rs, err
}

// SaveRule creates (r.ID == 0) or replaces a rule. Trial accounts cannot.
func (s *Service) SaveRule(ctx context.Context, customerID int64, r *sipdesk.CallerIDRule, actor Actor) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		c, err := tx.Customer(customerID, false)
		if err != nil {
			return err
		}
		if c.Trial() {
			return &sipdesk.Error{Code: sipdesk.ETrialLocked, Field: "type", Message: "changing the Caller ID is not available for trial accounts: top up first"}
		}
		verified, err := verifiedSet(tx, customerID)
		if err != nil {
			return err
		}
		if err := r.Validate(verified); err != nil {
			return err
		}
		r.CustomerID = customerID
		if r.ID == 0 {
			err = tx.InsertRule(r)
		} else {
			if _, err := tx.Rule(customerID, r.ID); err != nil {
				return err
			}
			err = tx.UpdateRule(r)
		}
		if err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, 0, sipdesk.AuditRuleChanged, "rule "+strconv.FormatInt(r.ID, 10)+" saved: "+r.Summary())
	})
}

// Rule returns one rule.
func (s *Service) Rule(ctx context.Context, customerID, id int64) (*sipdesk.CallerIDRule, error) {
	var r *sipdesk.CallerIDRule
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		r, err = tx.Rule(customerID, id)
		return err
	})
	return r, err
}

// DeleteRule deletes a rule and drops it from every selection.
func (s *Service) DeleteRule(ctx context.Context, customerID, id int64, actor Actor) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		if err := tx.DeleteRule(customerID, id); err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, 0, sipdesk.AuditRuleChanged, "rule "+strconv.FormatInt(id, 10)+" deleted")
	})
}

// SetCallerID sets a SIP account's default Caller ID and selected rules.
// Trial accounts cannot change it: they call with the verified phone.
func (s *Service) SetCallerID(ctx context.Context, customerID, id int64, in sipdesk.CallerIDSetting, actor Actor) (*sipdesk.SIPAccount, error) {
	var a *sipdesk.SIPAccount
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		c, err := tx.Customer(customerID, false)
		if err != nil {
			return err
		}
		if a, err = tx.SIPAccount(customerID, id); err != nil {
			return err
		}
		if c.Trial() {
			return &sipdesk.Error{Code: sipdesk.ETrialLocked, Field: "default_number", Message: "changing the Caller ID is not available for trial accounts: you call with the phone number you verified at signup; top up to use other numbers"}
		}
		next := sipdesk.CallerIDSetting{}
		if in.DefaultNumber != "" {
			if next.DefaultNumber, err = sipdesk.NormalizePhone("default_number", in.DefaultNumber); err != nil {
				return err
			}
			verified, err := verifiedSet(tx, customerID)
			if err != nil {
				return err
			}
			if !verified(next.DefaultNumber) {
				return sipdesk.FieldError("default_number", "%s is not one of your verified Caller ID numbers", next.DefaultNumber)
			}
		}
		if next.DisplayName, err = sipdesk.ValidateDisplayName("display_name", in.DisplayName); err != nil {
			return err
		}
		if len(in.RuleIDs) > 1000 {
			return sipdesk.FieldError("rule_ids", "at most 1000 rules")
		}
		for _, rid := range in.RuleIDs {
			if _, err := tx.Rule(customerID, rid); sipdesk.ErrorCode(err) == sipdesk.ENotFound {
				return sipdesk.FieldError("rule_ids", "rule %d does not exist", rid)
			} else if err != nil {
				return err
			}
			if !slices.Contains(next.RuleIDs, rid) {
				next.RuleIDs = append(next.RuleIDs, rid)
			}
		}
		a.CallerID = next
		a.UpdatedAt = s.now()
		if err := tx.UpdateSIPAccount(a); err != nil {
			return err
		}
		return s.audit(tx, actor, customerID, id, sipdesk.AuditCallerIDChanged, "default "+next.DefaultNumber+", "+strconv.Itoa(len(next.RuleIDs))+" rules")
	})
	return a, err
}

// CallerIDCall is a simulated call: the dialed number and, for
// set_by_caller rules and the no-decision case, what the device would send.
type CallerIDCall struct {
	To          string
	FromUser    string
	FromDisplay string
}

// SimulateCallerIDHeaders answers which Caller ID a call from the SIP
// account to a number gets: the final header values of the carrier leg, from
// sipdesk.DecideCallerID, the very function the edge uses. Like the edge, it
// normalises the dialed number first (an *Error with code EInvalidNumber and
// field "to" when it is not a number).
func (s *Service) SimulateCallerIDHeaders(ctx context.Context, customerID, sipAccountID int64, call CallerIDCall) (sipdesk.CallerIDHeaders, error) {
	to, err := sipdesk.NormalizeNumber(call.To)
	if err != nil {
		return sipdesk.CallerIDHeaders{}, &sipdesk.Error{Code: sipdesk.EInvalidNumber, Field: "to", Message: sipdesk.ErrorMessage(err)}
	}
	in := sipdesk.CallerIDInput{To: to, FromUser: call.FromUser, FromDisplay: call.FromDisplay}
	err = s.view(ctx, func(tx sipdesk.Tx) error {
		c, err := tx.Customer(customerID, false)
		if err != nil {
			return err
		}
		a, err := tx.SIPAccount(customerID, sipAccountID)
		if err != nil {
			return err
		}
		rules, err := tx.Rules(customerID)
		if err != nil {
			return err
		}
		in.Account, in.Customer, in.Rules = a, c, make(map[int64]*sipdesk.CallerIDRule, len(rules))
		for _, r := range rules {
			in.Rules[r.ID] = r
		}
		return nil
	})
	if err != nil {
		return sipdesk.CallerIDHeaders{}, err
	}
	return sipdesk.DecideCallerID(in), nil
}

// SimulateCallerID is SimulateCallerIDHeaders as a choice: Number is the
// Caller ID as call records show it (the From user, or AnonymousUser).
func (s *Service) SimulateCallerID(ctx context.Context, customerID, sipAccountID int64, to, fromUser string) (sipdesk.CallerIDChoice, error) {
	h, err := s.SimulateCallerIDHeaders(ctx, customerID, sipAccountID, CallerIDCall{To: to, FromUser: fromUser})
	if err != nil {
		return sipdesk.CallerIDChoice{}, err
	}
	return sipdesk.CallerIDChoice{Number: h.CallerID(), DisplayName: h.FromDisplay, Anonymous: h.Anonymous, RuleID: h.RuleID, Reason: h.Reason}, nil
}
