package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Portal login limits. Every attempt is reserved in the shared counters
// (attempt_counters, so they hold across portal nodes) before its password
// is checked, and a success clears the account's count:
//   - a browser that logged in to the account before (its device cookie)
//     has 5 attempts per 15 minutes of its own, and failures from elsewhere
//     never lock it out;
//   - any other browser counts against the account (5 per 15 minutes, for
//     known and unknown emails alike) and against its source address (20,
//     an office behind one address has several people).
const (
	LoginWindow       = 15 * time.Minute
	LoginMaxAccount   = 5
	LoginMaxSource    = 20
	LoginMaxDevice    = 5
	loginInflightAcct = 2 // checks of one account running at once on a node
	loginInflightSrc  = 4 // … of one source
	DeviceTTL         = 365 * 24 * time.Hour
	// LoginRatePerMinute bounds the login requests of one source per
	// minute on one node, counted before anything else.
	LoginRatePerMinute = 30
)

var (
	errLoginLocked = sipdesk.Errorf(sipdesk.ERateLimited, "too many failed attempts: wait 15 minutes and try again")
	errLoginBusy   = sipdesk.Errorf(sipdesk.ERateLimited, "another login for this account or from your address is being checked: try again in a moment")
	errLoginFast   = sipdesk.Errorf(sipdesk.ERateLimited, "too many logins from your address: try again in a minute")
)

// LoginResult is a successful login: the customer and the device cookie
// value to set (it marks this browser as one that logged in before).
type LoginResult struct {
	Customer *sipdesk.Customer
	Device   string
	// Pending is set instead of Customer when the customer has two-factor
	// authentication: LoginSecondFactor takes it with the code.
	Pending string
}

// Login checks a customer's portal credentials from a browser with no
// device cookie (tests, scripts).
func (s *Service) Login(ctx context.Context, email, password string) (*sipdesk.Customer, error) {
	r, err := s.LoginDevice(ctx, email, password, "")
	if err != nil {
		return nil, err
	}
	return r.Customer, nil
}

// LoginDevice checks a customer's portal credentials; device is the
// browser's device cookie ("" if none). Unknown emails cost the same time
// and count the same as wrong passwords.
func (s *Service) LoginDevice(ctx context.Context, email, password, device string) (*LoginResult, error) {
	email, _ = sipdesk.NormalizeEmail(email)
	var c *sipdesk.Customer
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		c, err = tx.CustomerByEmail(email)
		return err
	})
	if err != nil && sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		return nil, err
	}
	src := sourceOf(ctx)
	// A source sending logins faster than a person could is refused on
	// this node before any database work (the Window is bounded and keeps
	// its busiest keys under a flood of new ones).
	if src != "" && s.loginRate.Add(src) > LoginRatePerMinute {
		return nil, errLoginFast
	}
	// The attempt's counter keys, with their limits.
	var keys []string
	var limits []int
	if c != nil && s.deviceOf(device, c.ID) != "" {
		keys, limits = []string{"login:dev:" + s.deviceOf(device, c.ID)}, []int{LoginMaxDevice}
	} else {
		keys, limits = []string{"login:acct:" + email}, []int{LoginMaxAccount}
		if src != "" {
			keys, limits = append([]string{"login:src:" + src}, keys...), append([]int{LoginMaxSource}, limits...)
		}
	}
	flight, flightMax := []string{"acct:" + email}, []int{loginInflightAcct}
	if src != "" {
		flight, flightMax = append(flight, "src:"+src), append(flightMax, loginInflightSrc)
	}
	if !s.loginFlight.enter(flight, flightMax) {
		return nil, errLoginBusy
	}
	defer s.loginFlight.leave(flight)
	if err := s.reserve(ctx, keys, limits); err != nil {
		return nil, err
	}
	phc := dummyHash()
	if c != nil {
		phc = c.PasswordHash
	}
	ok, err := s.checkPassword(ctx, phc, password)
	if err != nil { // busy: the attempt was not tried, so it does not count
		_ = s.update(context.WithoutCancel(ctx), func(tx sipdesk.Tx) error {
			for _, k := range keys {
				if err := tx.RefundAttempt(k); err != nil {
					return err
				}
			}
			return nil
		})
		return nil, err
	}
	if c == nil || !ok {
		if c != nil { // failures are bounded by the limits above
			_ = s.update(context.WithoutCancel(ctx), func(tx sipdesk.Tx) error {
				return s.audit(tx, CustomerActor(c.ID, "portal"), c.ID, 0, sipdesk.AuditLoginFailed, "wrong password"+fromSource(ctx))
			})
		}
		return nil, sipdesk.Errorf(sipdesk.EUnauthorized, "wrong email or password")
	}
	if c.Suspended() { // said only to whoever knows the password
		return nil, sipdesk.ErrSuspended()
	}
	pending := ""
	// A success clears the account's (or this browser's) count and takes
	// back its own attempt from the source's, so only failures count there
	// (an office behind one address logs in all morning); a sprayer that
	// knows one password keeps its failures.
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		if len(keys) > 1 {
			if err := tx.RefundAttempt(keys[0]); err != nil {
				return err
			}
		}
		if err := tx.ClearAttempts(keys[len(keys)-1]); err != nil {
			return err
		}
		hasTOTP, keys, err := secondFactors(tx, c.ID)
		if err != nil {
			return err
		}
		if hasTOTP || keys > 0 {
			pending = s.newPending(c.ID) // the login is audited once the second factor is in
			return nil
		}
		return s.audit(tx, CustomerActor(c.ID, "portal"), c.ID, 0, sipdesk.AuditLogin, "with the password"+fromSource(ctx))
	})
	if err != nil {
		return nil, err
	}
	if pending != "" {
		return &LoginResult{Pending: pending}, nil
	}
	return &LoginResult{Customer: c, Device: s.newDevice(c.ID)}, nil
}

// reserve counts one attempt under every key, all or none (one
// transaction): the first key over its limit refuses the attempt.
func (s *Service) reserve(ctx context.Context, keys []string, limits []int) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		for i, k := range keys {
			if err := s.bump(tx, k, LoginWindow, limits[i], "", errLoginLocked.Message); err != nil {
				return err
			}
		}
		return nil
	})
}

// Device cookies: customer id, a random id, the issue time and an HMAC
// over them with a key derived from the node's secret key (shared by the
// nodes of one database), base64url. Nothing is stored.
const deviceRaw = 8 + 8 + 8 + 16

func (s *Service) deviceMAC(b []byte) []byte {
	m := hmac.New(sha256.New, s.deviceKey)
	m.Write(b)
	return m.Sum(nil)[:16]
}

func (s *Service) newDevice(customerID int64) string {
	b := make([]byte, deviceRaw)
	binary.BigEndian.PutUint64(b, uint64(customerID))
	rand.Read(b[8:16])
	binary.BigEndian.PutUint64(b[16:], uint64(s.now().Unix()))
	copy(b[24:], s.deviceMAC(b[:24]))
	return base64.RawURLEncoding.EncodeToString(b)
}

// deviceOf returns the id of a valid device cookie of customerID, else "".
func (s *Service) deviceOf(cookie string, customerID int64) string {
	b, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil || len(b) != deviceRaw || !hmac.Equal(b[24:], s.deviceMAC(b[:24])) {
		return ""
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[16:])), 0)
	if int64(binary.BigEndian.Uint64(b)) != customerID || s.now().Sub(issued) > DeviceTTL {
		return ""
	}
	return strconv.FormatInt(customerID, 10) + ":" + hex.EncodeToString(b[8:16])
}
