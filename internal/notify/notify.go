// Package notify delivers verification codes to phones: the service queues
// a message in the transaction that issues a code (sipdesk.VerificationMessage),
// and the Dispatcher sends it through a Channel (Kannel's sendsms, a signed
// webhook; a voice call can plug in as one more Channel), retries with
// backoff, takes delivery reports and counts every outcome in
// sipdesk_verification_messages_total{channel,result}.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipdesk/sipdesk"
)

// Message is what a channel sends: one verification code to one number.
type Message struct {
	ID         string // stable across retries: receivers drop a message id they have seen
	CustomerID int64  // whose code it is (a voice call's record is theirs)
	To         string // E.164, "+<digits>"
	Code       string // the digits alone (a voice call reads them out)
	Text       string // the SMS text, with the code
	Purpose    string // sipdesk.PurposeSignup or sipdesk.PurposeCallerID
	ReportURL  string // where the gateway reports the delivery ("" when reports are off)
}

// Channel delivers messages. Send returns nil once the gateway took the
// message; an error wrapped by Permanent is not retried, any other error is.
// A voice call is a Channel named "voice": Send places the call and returns
// when the code was read out or the call failed.
type Channel interface {
	Name() string
	Send(ctx context.Context, m Message) error
}

// ChannelVoice is the name of the voice call channel ("Call me instead").
const ChannelVoice = "voice"

// Slow is a Channel whose tries take long (a voice call rings, then reads
// the code out): a try gets TryTimeout instead of Options.TryTimeout, runs
// beside the queue (at most maxSlow at once) and only from Run, so neither
// the other messages nor a page asking DeliverNow wait for a call.
type Slow interface {
	TryTimeout() time.Duration
}

// maxSlow bounds the slow tries (calls) in flight on one node; more wait
// in the queue for the next round.
const maxSlow = 4

// permanent marks an error that a retry cannot fix (a refused credential, a
// rejected number).
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so the message is given up at once.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool { return errors.As(err, new(permanent)) }

// ChannelNone is the channel of codes queued while no gateway is configured
// (SMTP set, so no dev mailbox): they fail at once, visibly.
const ChannelNone = "none"

// Metric results.
const (
	ResultSent        = "sent"        // the gateway took it
	ResultError       = "error"       // a try failed, a retry follows
	ResultFailed      = "failed"      // given up
	ResultDelivered   = "delivered"   // delivery report: on the phone
	ResultUndelivered = "undelivered" // delivery report: the gateway could not deliver it
)

// Options configure a Dispatcher. Zero values take the defaults noted.
type Options struct {
	SMS   Channel   // the channel SMS codes go through; nil: ChannelNone
	Extra []Channel // more channels by name (a voice call)
	// ReportBase is the portal URL delivery reports are sent to, e.g.
	// https://portal.example.com; a message's report URL is
	// ReportBase + ReportPath + a token of its own.
	ReportBase  string
	Backoff     time.Duration // first retry after this (2 s), doubled each try …
	MaxBackoff  time.Duration // … up to this (1 min)
	MaxAttempts int           // tries before giving up (8); the code's expiry ends them too
	TryTimeout  time.Duration // one try (10 s)
	Interval    time.Duration // how often the queue is read (1 s)
	Log         *slog.Logger
	Now         func() time.Time
}

// ReportPath is the portal path of delivery reports (Kannel's dlr-url).
const ReportPath = "/sms/report/"

// Dispatcher sends the queued verification messages. Every portal node may
// run one: a message is claimed for each try, so only one node sends it.
type Dispatcher struct {
	st       sipdesk.Store
	opt      Options
	sms      string
	channels map[string]Channel
	count    *prometheus.CounterVec
	log      *slog.Logger
	slow     chan struct{} // a slot per slow try in flight
}

// New returns a Dispatcher on a store.
func New(st sipdesk.Store, o Options) *Dispatcher {
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.TryTimeout <= 0 {
		o.TryTimeout = 10 * time.Second
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.ReportBase = strings.TrimRight(o.ReportBase, "/")
	d := &Dispatcher{st: st, opt: o, sms: ChannelNone, channels: map[string]Channel{}, log: o.Log, slow: make(chan struct{}, maxSlow)}
	if o.SMS != nil {
		d.sms = o.SMS.Name()
		d.channels[d.sms] = o.SMS
	}
	for _, c := range o.Extra {
		d.channels[c.Name()] = c
	}
	d.count = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sipdesk_verification_messages_total",
		Help: "Verification messages by channel and result: sent (the gateway took it), error (a try failed, retried), failed (given up), delivered and undelivered (delivery reports).",
	}, []string{"channel", "result"})
	for _, r := range []string{ResultSent, ResultError, ResultFailed, ResultDelivered, ResultUndelivered} {
		d.count.WithLabelValues(d.sms, r) // listed at 0 from the start
		for _, c := range o.Extra {
			d.count.WithLabelValues(c.Name(), r)
		}
	}
	return d
}

// Collector is the metric sipdesk_verification_messages_total.
func (d *Dispatcher) Collector() prometheus.Collector { return d.count }

// Channel is the channel new SMS codes are queued for.
func (d *Dispatcher) Channel() string { return d.sms }

// Has reports whether a channel is configured on this node ("voice").
func (d *Dispatcher) Has(channel string) bool { return d.channels[channel] != nil }

// tryTimeout is how long one try through ch may take.
func (d *Dispatcher) tryTimeout(ch Channel) time.Duration {
	if sl, ok := ch.(Slow); ok {
		return sl.TryTimeout()
	}
	return d.opt.TryTimeout
}

// Run sends due messages every Interval until ctx is done, and drops
// messages older than a week once an hour.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.opt.Interval)
	defer t.Stop()
	var pruned time.Time
	for {
		d.sendDue(ctx, 0)
		if now := d.opt.Now(); now.Sub(pruned) > time.Hour {
			pruned = now
			err := d.st.Update(ctx, func(tx sipdesk.Tx) error {
				_, err := tx.PruneVerificationMessages(now.Add(-7 * 24 * time.Hour))
				return err
			})
			if err != nil && ctx.Err() == nil {
				d.log.Warn("verification messages not pruned", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverNow tries the customer's due messages at once (the page showing
// the code's state asks first, so it can tell whether the code went out).
func (d *Dispatcher) DeliverNow(ctx context.Context, customerID int64) {
	d.sendDue(ctx, customerID)
}

func (d *Dispatcher) sendDue(ctx context.Context, customerID int64) {
	var ms []*sipdesk.VerificationMessage
	err := d.st.View(ctx, func(tx sipdesk.Tx) (err error) {
		ms, err = tx.DueVerificationMessages(customerID, d.opt.Now(), 20)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("verification queue unreadable", "err", err)
		}
		return
	}
	for _, m := range ms {
		if _, slow := d.channels[m.Channel].(Slow); slow {
			if customerID != 0 {
				continue // DeliverNow: a page does not wait for a call
			}
			select {
			case d.slow <- struct{}{}:
				go func() {
					defer func() { <-d.slow }()
					d.try(ctx, m)
				}()
			default: // all slots busy: the next round takes it
			}
			continue
		}
		d.try(ctx, m)
	}
}

// try makes one try of m: claim, send, record the outcome.
func (d *Dispatcher) try(ctx context.Context, m *sipdesk.VerificationMessage) {
	now := d.opt.Now()
	token := sipdesk.GenerateToken("")
	hash := sipdesk.HashToken(token)
	ch := d.channels[m.Channel]
	timeout := d.opt.TryTimeout
	if ch != nil {
		timeout = d.tryTimeout(ch)
	}
	err := d.st.Update(ctx, func(tx sipdesk.Tx) error {
		return tx.ClaimVerificationMessage(m.ID, now, now.Add(timeout+5*time.Second), hash)
	})
	if err != nil {
		if sipdesk.ErrorCode(err) != sipdesk.ENotFound && ctx.Err() == nil {
			d.log.Warn("verification message not claimed", "message", m.ID, "err", err)
		}
		return // another node has it
	}
	m.Attempts++
	m.ReportHash = hash
	switch {
	case !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt):
		err = Permanent(errors.New("the code expired before it could be sent"))
	case ch == nil:
		err = Permanent(fmt.Errorf("no %s channel is configured on this server", m.Channel))
	default:
		tctx, cancel := context.WithTimeout(ctx, timeout)
		err = ch.Send(tctx, Message{ID: m.PublicID, CustomerID: m.CustomerID, To: m.To, Code: m.Code, Text: text(m.Code, m.ExpiresAt.Sub(now)),
			Purpose: m.Purpose, ReportURL: d.reportURL(token)})
		cancel()
	}
	d.record(m, err)
}

// record stores the outcome of a try; a message replaced or reported on
// meanwhile keeps that newer state.
func (d *Dispatcher) record(m *sipdesk.VerificationMessage, sendErr error) {
	now := d.opt.Now()
	result := ResultSent
	log := d.log.With("message", m.ID, "customer", m.CustomerID, "number", m.To, "channel", m.Channel, "purpose", m.Purpose, "attempt", m.Attempts)
	switch {
	case sendErr == nil:
		m.State, m.Code, m.LastError = sipdesk.MessageSent, "", ""
		log.Info("verification message sent")
	default:
		m.LastError = truncate(sendErr.Error(), 300)
		next := now.Add(d.backoff(m.Attempts))
		if IsPermanent(sendErr) || m.Attempts >= d.opt.MaxAttempts || (!m.ExpiresAt.IsZero() && !next.Before(m.ExpiresAt)) {
			result = ResultFailed
			m.State, m.Code = sipdesk.MessageFailed, ""
			log.Warn("verification message given up", "err", m.LastError)
		} else {
			result = ResultError
			m.State, m.NextAt = sipdesk.MessageQueued, next
			log.Warn("verification message not sent, will retry", "err", m.LastError, "retry_in", next.Sub(now).Round(time.Millisecond))
		}
	}
	d.count.WithLabelValues(m.Channel, result).Inc()
	// Not the try's context: the outcome is recorded even when the request
	// that triggered the try has ended.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.st.Update(ctx, func(tx sipdesk.Tx) error {
		cur, err := tx.VerificationMessage(m.ID)
		if err != nil {
			return err
		}
		if cur.State != sipdesk.MessageQueued || cur.ReportHash != m.ReportHash {
			return nil // replaced by a new code, reported on already, or claimed again
		}
		return tx.UpdateVerificationMessage(m)
	})
	if err != nil {
		log.Warn("verification message outcome not recorded", "err", err)
	}
}

func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := float64(d.opt.Backoff) * math.Pow(2, float64(attempts-1))
	return time.Duration(min(b, float64(d.opt.MaxBackoff)))
}

func (d *Dispatcher) reportURL(token string) string {
	if d.opt.ReportBase == "" {
		return ""
	}
	return d.opt.ReportBase + ReportPath + token
}

// text is the SMS: the code, and how long it stays valid.
func text(code string, left time.Duration) string {
	mins := max(1, int(math.Ceil(left.Minutes())))
	unit := "minutes"
	if mins == 1 {
		unit = "minute"
	}
	return fmt.Sprintf("Your sipdesk verification code is %s. It expires in %d %s.", code, mins, unit)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// plainError drops the URL from an HTTP client error: a gateway URL may
// carry credentials (Kannel's sendsms takes the password in the query),
// and errors reach the log and the store.
func plainError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errors.New("timed out")
		}
		return ue.Err
	}
	return err
}
