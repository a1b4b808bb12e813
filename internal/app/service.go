// Package app is the service layer: it runs the domain's rules inside store
// transactions, so the API, the portal and the CLI share one implementation
// of every use case.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/ratelimit"
)

// Options configure a Service.
type Options struct {
	Realm            string // SIP realm the HA1s are computed for
	PaidChannelLimit int    // limit after the first top-up
	AllowPrivateIPs  bool   // admit private and loopback addresses (labs, tests)
	HoldIPAccounts   bool   // new IP accounts wait in in_process for an operator
	BaseURL          string // for links in emails, e.g. http://127.0.0.1:8080
	// LogCodes writes phone verification codes to the log: the embedded
	// default (dev mailbox, no SMS gateway). Off when mail really goes out.
	LogCodes bool
	// Messages delivers verification codes (SMS, webhook, voice); nil: the
	// outbox (dev mailbox) gets them.
	Messages Messenger
	// DeviceKey signs the portal's device cookies (browsers that logged in
	// before); nodes sharing a database need the same key. Random if nil.
	DeviceKey []byte
	// HashSlots bounds the argon2id checks running at once (GOMAXPROCS if
	// 0); HashQueue bounds those waiting for a slot (4 × slots if 0, none
	// if negative).
	HashSlots int
	HashQueue int
	// SIP is where customers connect their devices (the connection page).
	SIP Endpoints
	// LeaseTTL is the life of a channel lease (0: sipdesk.LeaseTTL); the
	// edge renews and fences on sipdesk.LeaseTimingFor(LeaseTTL).
	LeaseTTL time.Duration
	Log      *slog.Logger
	Now      func() time.Time
}

// Service implements every use case of customers and operators.
type Service struct {
	st  sipdesk.Store
	opt Options
	log *slog.Logger
	now func() time.Time

	reauth      limiter   // wrong portal passwords on credential resets
	gate        *hashGate // argon2id work in progress
	loginFlight inflight  // logins being checked, per account and source
	exports     inflight  // call record exports streaming, per customer
	loginRate   *ratelimit.Window[string]
	deviceKey   []byte
	waOnce      sync.Once // the WebAuthn relying party of BaseURL (passkey.go)
	wa          *webauthn.WebAuthn
}

// New returns a Service on a store.
func New(st sipdesk.Store, o Options) *Service {
	if o.Realm == "" {
		o.Realm = "sipdesk.local"
	}
	if o.PaidChannelLimit <= 0 {
		o.PaidChannelLimit = sipdesk.DefaultPaidChannelLimit
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = sipdesk.LeaseTTL
	}
	q := o.HashQueue
	if q == 0 {
		q = -1 // newHashGate: the default
	} else if q < 0 {
		q = 0
	}
	dk := make([]byte, 32)
	if len(o.DeviceKey) > 0 {
		m := hmac.New(sha256.New, o.DeviceKey)
		m.Write([]byte("sipdesk portal device cookie v1"))
		dk = m.Sum(nil)
	} else {
		rand.Read(dk)
	}
	return &Service{st: st, opt: o, log: o.Log, now: o.Now, gate: newHashGate(o.HashSlots, q, 2*time.Second), deviceKey: dk,
		loginRate: ratelimit.New[string](time.Minute, ratelimit.Options{Limit: LoginRatePerMinute + 1, Now: o.Now})}
}

// Store returns the underlying store (for the edge and read-only views).
// Ready reports whether the store answers (readiness probes).
func (s *Service) Ready(ctx context.Context) error {
	_, err := s.st.ConfigVersion(ctx)
	return err
}

// Mails lists the newest outgoing messages, at most limit (the dev mailbox).
func (s *Service) Mails(ctx context.Context, limit int) (ms []*sipdesk.Mail, err error) {
	err = s.st.View(ctx, func(tx sipdesk.Tx) error {
		ms, err = tx.Mails(limit)
		return err
	})
	return ms, err
}

// Mail is one outgoing message (the dev mailbox).
func (s *Service) Mail(ctx context.Context, id int64) (m *sipdesk.Mail, err error) {
	err = s.st.View(ctx, func(tx sipdesk.Tx) error {
		m, err = tx.Mail(id)
		return err
	})
	return m, err
}

// Realm is the SIP realm.
func (s *Service) Realm() string { return s.opt.Realm }

// Actor names who does something, for the audit log.
type Actor string

// Actors.
const (
	ActorOperator Actor = "operator"
	ActorSystem   Actor = "system"
)

// CustomerActor is the customer acting through the portal or an API token.
func CustomerActor(id int64, via string) Actor {
	return Actor("customer:" + strconv.FormatInt(id, 10) + "/" + via)
}

func (s *Service) audit(tx sipdesk.Tx, actor Actor, customerID, sipAccountID int64, action, detail string) error {
	return tx.InsertAudit(&sipdesk.AuditEntry{
		CustomerID: customerID, SIPAccountID: sipAccountID, Actor: string(actor),
		Action: action, Detail: detail, At: s.now(),
	})
}

func (s *Service) update(ctx context.Context, fn func(sipdesk.Tx) error) error {
	return s.st.Update(ctx, fn)
}

func (s *Service) view(ctx context.Context, fn func(sipdesk.Tx) error) error {
	return s.st.View(ctx, fn)
}
