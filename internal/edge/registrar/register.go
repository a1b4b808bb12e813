package registrar

import (
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/auth"
	"github.com/sipdesk/sipdesk/internal/edge/metrics"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// Config of the registrar.
type Config struct {
	Node                   string
	MinExpires, MaxExpires time.Duration
	RetryAfter             time.Duration // of 503 answers (default 5s)
}

// Registrar answers REGISTER and keeps the bindings.
type Registrar struct {
	cfg  Config
	pol  policy.Policy
	auth *auth.Authenticator
	idx  *Index
	met  *metrics.Edge
	log  *slog.Logger
	now  func() time.Time

	// storeDown is set after a failed write-behind (see HandleRegister).
	storeDown atomic.Bool
}

// New makes a registrar over an empty index.
func New(cfg Config, pol policy.Policy, a *auth.Authenticator, met *metrics.Edge, log *slog.Logger, now func() time.Time) *Registrar {
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	return &Registrar{cfg: cfg, pol: pol, auth: a, idx: NewIndex(), met: met, log: log, now: now}
}

// Index is the in-memory index of bindings.
func (s *Registrar) Index() *Index { return s.idx }

func (s *Registrar) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	if err := sipmsg.Respond(tx, req, code, reason, hdrs...); err != nil {
		s.log.Debug("respond", "error", err)
	}
}

func (s *Registrar) refuse(tx sip.ServerTransaction, req *sip.Request, r string, hdrs ...sip.Header) {
	s.met.Refusals.WithLabelValues(sipdesk.RefusalCode(r)).Inc()
	if err := sipmsg.Refuse(tx, req, r, hdrs...); err != nil {
		s.log.Debug("respond", "error", err)
	}
}

// HandleRegister is the registrar: digest auth, status and ACL gates,
// bindings with expiry kept in the store and indexed in memory.
func (s *Registrar) HandleRegister(req *sip.Request, tx sip.ServerTransaction) {
	src, ok := sipmsg.SourceOf(req)
	if !ok {
		s.respond(tx, req, 400, "Bad Request")
		return
	}
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	snap := s.pol.Config()
	acct, ref := s.auth.Authenticate(req, tx, src, "Authorization", snap)
	lg := s.log.With("call_id", callID, "src", src.String())
	if acct == nil {
		if ref != "" && ref != sipdesk.EUnauthorized {
			lg.Info("register", "result", sipdesk.RefusalCode(ref))
		}
		return
	}
	lg = lg.With("sip_account", acct.ID)
	toUser := ""
	if h := req.To(); h != nil {
		toUser = h.Address.User
	}
	if toUser != acct.Username {
		s.refuse(tx, req, sipdesk.EForbidden)
		lg.Info("register", "result", sipdesk.RefusalCode(sipdesk.EForbidden))
		return
	}
	if r := sipdesk.RefusalFor(acct.UsableAtEdge()); r != "" {
		s.refuse(tx, req, r)
		lg.Info("register", "result", sipdesk.RefusalCode(r))
		return
	}
	if !policy.ACLAllows(acct, src) {
		s.refuse(tx, req, sipdesk.ESourceNotAllowed)
		lg.Info("register", "result", sipdesk.RefusalCode(sipdesk.ESourceNotAllowed))
		return
	}

	now := s.now()
	defExp := -1
	if h := req.GetHeader("Expires"); h != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && v >= 0 {
			defExp = v
		} else {
			s.respond(tx, req, 400, "Bad Expires")
			return
		}
	}
	contacts := req.GetHeaders("Contact")
	type change struct {
		contact string
		exp     int
	}
	var changes []change
	wildcard := false
	for _, h := range contacts {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			s.respond(tx, req, 400, "Bad Contact")
			return
		}
		if c.Address.Wildcard {
			wildcard = true
			continue
		}
		exp := defExp
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.respond(tx, req, 400, "Bad Contact expires")
				return
			}
			exp = n
		}
		if exp < 0 {
			exp = int(s.cfg.MaxExpires / time.Second)
			if exp > 3600 {
				exp = 3600
			}
		}
		if exp > 0 && time.Duration(exp)*time.Second < s.cfg.MinExpires {
			s.refuse(tx, req, sipdesk.SIPIntervalTooBrief, sip.NewHeader("Min-Expires", strconv.Itoa(int(s.cfg.MinExpires/time.Second))))
			lg.Info("register", "result", sipdesk.RefusalCode(sipdesk.SIPIntervalTooBrief))
			return
		}
		if time.Duration(exp)*time.Second > s.cfg.MaxExpires {
			exp = int(s.cfg.MaxExpires / time.Second)
		}
		u := c.Address
		changes = append(changes, change{contact: u.String(), exp: exp})
	}
	if wildcard && (len(contacts) != 1 || defExp != 0) {
		s.respond(tx, req, 400, "Bad wildcard Contact")
		return
	}

	var cseq uint32
	if h := req.CSeq(); h != nil {
		cseq = h.SeqNo
	}
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
		if len(ua) > 128 {
			ua = ua[:128]
		}
	}
	transport := strings.ToLower(req.Transport())
	var puts, writes []*sipdesk.Registration
	var dels []string
	for _, c := range changes {
		if c.exp == 0 {
			dels = append(dels, c.contact)
			continue
		}
		puts = append(puts, &sipdesk.Registration{
			SIPAccountID: acct.ID, Contact: c.contact, Received: src.String(), Transport: transport,
			CallID: callID, CSeq: cseq, Node: s.cfg.Node, UserAgent: ua,
			ExpiresAt: now.Add(time.Duration(c.exp) * time.Second),
		})
	}
	bindings := make([]*Binding, 0, len(puts))
	storeDown := s.storeDown.Load()
	for _, r := range puts {
		b, ok := NewBinding(r)
		if !ok {
			continue
		}
		if old := s.idx.Get(acct.ID, r.Contact); !storeDown && !wildcard && refreshOnly(old, r, now) {
			b.stored = old.stored
		} else {
			writes = append(writes, r)
		}
		bindings = append(bindings, b)
	}
	bc := policy.BindingChange{AccountID: acct.ID, All: wildcard, Deletes: dels, Puts: writes}
	// Write-behind: the binding is live in memory at once and its store
	// write joins the next group commit (in order, lazily committed, within
	// milliseconds), so REGISTERs share transactions instead of each waiting
	// for one. After a failed write the registrar fails closed: REGISTERs
	// wait for their own write and get 503 until the store takes one again.
	switch {
	case storeDown:
		if err := s.pol.SaveBindings(bc); err != nil {
			lg.Error("register: store", "error", err)
			s.refuse(tx, req, sipdesk.EUnavailable, sip.NewHeader("Retry-After", strconv.Itoa(max(1, int(s.cfg.RetryAfter/time.Second)))))
			return
		}
		s.storeDown.Store(false)
	case wildcard || len(dels) > 0 || len(writes) > 0:
		s.pol.PostBindings(bc, func(err error) {
			if err != nil {
				s.storeDown.Store(true)
				lg.Error("register: store write failed; registering fails closed until the store is back", "error", err)
			}
		})
	}
	if wildcard {
		s.idx.DeleteAccount(acct.ID)
	}
	for _, c := range dels {
		s.idx.Delete(acct.ID, c)
	}
	for _, b := range bindings {
		s.idx.Put(b)
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range s.idx.Lookup(acct.ID, now) {
		left := int(b.Reg.ExpiresAt.Sub(now).Round(time.Second) / time.Second)
		ch := &sip.ContactHeader{Address: b.URI()}
		ch.Params.Add("expires", strconv.Itoa(left))
		res.AppendHeader(ch)
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	if err := tx.Respond(res); err != nil {
		lg.Warn("register: respond", "error", err)
	}
	result := "ok"
	if wildcard || (len(puts) == 0 && len(dels) > 0) {
		result = "unregistered"
	}
	lg.Info("register", "result", result, "contacts", len(puts), "removed", len(dels), "wildcard", wildcard)
}
