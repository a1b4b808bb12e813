package app

import (
	"context"
	"strconv"

	"github.com/sipdesk/sipdesk"
)

// Messenger delivers queued verification messages (internal/notify's
// Dispatcher). Without one, codes go to the outbox (the dev mailbox).
type Messenger interface {
	// Channel names the channel new codes are queued for ("none" when no
	// gateway is configured: the message then fails, visibly).
	Channel() string
	// DeliverNow tries the customer's due messages at once.
	DeliverNow(ctx context.Context, customerID int64)
	// Has reports whether a channel ("voice") is configured on this node.
	Has(channel string) bool
}

// ChannelVoice is the channel of "Call me instead": the code read out by a
// call over the carrier (notify.ChannelVoice).
const ChannelVoice = "voice"

// deliverCode hands a new code to the channel, in the transaction that
// issued it (so the resend and daily limits of sendCode cover every
// channel). With a Messenger it is queued, encrypted, for delivery after
// the commit; the numbers's older queued codes are dropped. Without one the
// embedded sender writes it to the outbox (dev mailbox) and, in dev mode,
// the log.
//
// channel "" is the Messenger's SMS channel; ChannelVoice is a call.
func (s *Service) deliverCode(tx sipdesk.Tx, n *sipdesk.CallerIDNumber, code, channel string) error {
	if s.opt.Messages == nil {
		if s.opt.LogCodes {
			s.log.Info("verification code sent", "customer", n.CustomerID, "number", n.Number, "code", code)
		} else {
			s.log.Info("verification code sent", "customer", n.CustomerID, "number", n.Number)
		}
		return tx.InsertMail(&sipdesk.Mail{
			To:      "sms:" + n.Number,
			Subject: "sipdesk verification code",
			Text:    "Your sipdesk verification code is " + code + ". It expires in 10 minutes.",
		})
	}
	purpose, err := purposeOf(tx, n)
	if err != nil {
		return err
	}
	if _, err := tx.ReplaceVerificationMessages(n.ID); err != nil {
		return err
	}
	if channel == "" {
		channel = s.opt.Messages.Channel()
	}
	now := s.now()
	m := &sipdesk.VerificationMessage{
		PublicID: sipdesk.GenerateToken("vm_"), CustomerID: n.CustomerID, NumberID: n.ID,
		Channel: channel, Purpose: purpose, To: n.Number, Code: code,
		State: sipdesk.MessageQueued, NextAt: now, ExpiresAt: n.ExpiresAt, CreatedAt: now,
	}
	if err := tx.InsertVerificationMessage(m); err != nil {
		return err
	}
	s.log.Info("verification code queued", "customer", n.CustomerID, "number", n.Number, "channel", m.Channel, "purpose", purpose, "message", m.ID)
	return nil
}

// VoiceCalls reports whether "Call me instead" is offered: a voice channel
// is configured on this node.
func (s *Service) VoiceCalls() bool {
	return s.opt.Messages != nil && s.opt.Messages.Has(ChannelVoice)
}

// CallMe sends a new code to one of the customer's numbers waiting for
// theirs by a voice call ("Call me instead"): number "" is the signup
// phone. The resend interval and the daily caps of every code apply (the
// call is one more code sent), and the old code stops working.
func (s *Service) CallMe(ctx context.Context, customerID int64, number string) error {
	if !s.VoiceCalls() {
		return &sipdesk.Error{Code: sipdesk.EInvalid, Field: "number", Message: "voice calls are not offered here"}
	}
	return s.update(ctx, func(tx sipdesk.Tx) error {
		var n *sipdesk.CallerIDNumber
		var err error
		if number == "" {
			_, n, err = pendingPhone(tx, customerID)
		} else {
			if number, err = sipdesk.NormalizePhone("number", number); err != nil {
				return err
			}
			n, err = numberOf(tx, customerID, number)
			if err == nil && n.Verified {
				return &sipdesk.Error{Code: sipdesk.EConflict, Field: "number", Message: number + " is already verified"}
			}
		}
		if err != nil {
			return err
		}
		return s.sendCodeBy(ctx, tx, n, ChannelVoice)
	})
}

// CodesInOutbox reports whether codes go to the outbox (the dev mailbox)
// rather than through a channel.
func (s *Service) CodesInOutbox() bool { return s.opt.Messages == nil }

// purposeOf tells a signup code (the unverified customer's own phone) from
// a Caller ID number's.
func purposeOf(tx sipdesk.Tx, n *sipdesk.CallerIDNumber) (string, error) {
	c, err := tx.Customer(n.CustomerID, false)
	if err != nil {
		return "", err
	}
	if c.BillingState == sipdesk.BillingUnverified && n.Number == c.VerifiedPhone {
		return sipdesk.PurposeSignup, nil
	}
	return sipdesk.PurposeCallerID, nil
}

// CodeDeliveries returns, for each of the customer's numbers waiting for
// its code, the latest verification message, by number id; empty without
// a Messenger. A message not tried yet is tried first, so the page that
// shows it can say whether the code went out.
func (s *Service) CodeDeliveries(ctx context.Context, customerID int64) (map[int64]*sipdesk.VerificationMessage, error) {
	out := map[int64]*sipdesk.VerificationMessage{}
	if s.opt.Messages == nil {
		return out, nil
	}
	read := func() (untried bool, err error) {
		err = s.view(ctx, func(tx sipdesk.Tx) error {
			ns, err := tx.CallerIDNumbers(customerID)
			if err != nil {
				return err
			}
			for _, n := range ns {
				if n.Verified {
					continue
				}
				m, err := tx.LatestVerificationMessage(n.ID)
				if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
					continue
				}
				if err != nil {
					return err
				}
				m.Code = "" // not the caller's business
				out[n.ID] = m
				untried = untried || (m.State == sipdesk.MessageQueued && m.Attempts == 0)
			}
			return nil
		})
		return untried, err
	}
	untried, err := read()
	if err != nil || !untried {
		return out, err
	}
	s.opt.Messages.DeliverNow(ctx, customerID)
	_, err = read()
	return out, err
}

// OperatorVerifyPhone verifies an unverified customer's signup phone by
// hand (a support case: the code does not arrive): the customer becomes a
// trial account with its first SIP account, as with the code. Audited.
func (s *Service) OperatorVerifyPhone(ctx context.Context, customerID int64) (*NewSIPAccount, error) {
	var out *NewSIPAccount
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		c, n, err := pendingPhone(tx, customerID)
		if err != nil {
			return err
		}
		if err := s.markVerified(tx, n); err != nil {
			return err
		}
		if out, err = s.activateCustomer(tx, c); err != nil {
			return err
		}
		return s.audit(tx, ActorOperator, c.ID, 0, sipdesk.AuditPhoneVerified, "signup phone "+n.Number+" verified by the operator")
	})
	return out, err
}

// OperatorVerifyCallerID verifies a customer's Caller ID number by hand,
// adding it when the customer has not yet. Audited.
func (s *Service) OperatorVerifyCallerID(ctx context.Context, customerID int64, number string) (*sipdesk.CallerIDNumber, error) {
	number, err := sipdesk.NormalizePhone("number", number)
	if err != nil {
		return nil, err
	}
	var n *sipdesk.CallerIDNumber
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		if _, err := tx.Customer(customerID, true); err != nil {
			return err
		}
		n, err = numberOf(tx, customerID, number)
		switch {
		case err == nil && n.Verified:
			return &sipdesk.Error{Code: sipdesk.EConflict, Field: "number", Message: number + " is already verified"}
		case err == nil:
			err = s.markVerified(tx, n)
		case sipdesk.ErrorCode(err) == sipdesk.ENotFound:
			n = &sipdesk.CallerIDNumber{CustomerID: customerID, Number: number, Verified: true, CreatedAt: s.now()}
			err = tx.InsertCallerIDNumber(n)
		}
		if err != nil {
			return err
		}
		return s.audit(tx, ActorOperator, customerID, 0, sipdesk.AuditCallerIDVerified, "Caller ID number "+number+" (id "+strconv.FormatInt(n.ID, 10)+") verified by the operator")
	})
	return n, err
}

// markVerified verifies a number without its code and drops its queued
// messages.
func (s *Service) markVerified(tx sipdesk.Tx, n *sipdesk.CallerIDNumber) error {
	n.Verified, n.CodeHash = true, ""
	if err := tx.UpdateCallerIDNumber(n); err != nil {
		return err
	}
	_, err := tx.ReplaceVerificationMessages(n.ID)
	return err
}
