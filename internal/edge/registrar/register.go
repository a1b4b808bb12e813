package registrar

import (
	"context"
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
	// Shared: several edges share the store (PostgreSQL). A REGISTER then
	// waits for its store write (at most StoreTimeout, else 503) because
	// the other edges route to the binding from the store, and its 200
	// lists the contacts every edge holds. Otherwise (SQLite, one node)
	// the store copy only serves a restart: bindings are written behind.
	Shared       bool
	StoreTimeout time.Duration // default 2s
	// MaxContacts is the per-SIP-account contact limit (default 10;
	// negative: none): a REGISTER adding one more gets SIPTooManyContacts.
	MaxContacts int
	// EdgeAddr is this edge's SIP address ("host:port", UDP) stored with
	// each binding: the other edges send inbound calls for the binding
	// through it (nil: none, reached directly).
	EdgeAddr func() string
}

// MaxContactLen bounds a registered Contact URI: with MaxContacts of them,
// a 200 still fits a UDP datagram (sipmsg.MaxMessageSize).
const MaxContactLen = 512

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
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 2 * time.Second
	}
	if cfg.MaxContacts == 0 {
		cfg.MaxContacts = 10
	}
	if cfg.MaxContacts < 0 {
		cfg.MaxContacts = 0
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
	if h := sipmsg.FirstHeader(req, "Expires"); h != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && v >= 0 {
			defExp = v
		} else {
			s.respond(tx, req, 400, "Bad Expires")
			return
		}
	}
	contacts := sipmsg.Headers(req, "Contact")
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
		if len(u.String()) > MaxContactLen {
			s.respond(tx, req, 400, "Contact too long")
			return
		}
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
	if h := sipmsg.FirstHeader(req, "User-Agent"); h != nil {
		ua = h.Value()
		if len(ua) > 128 {
			ua = ua[:128]
		}
	}
	transport := strings.ToLower(req.Transport())
	edgeAddr := ""
	if s.cfg.EdgeAddr != nil {
		edgeAddr = s.cfg.EdgeAddr()
	}
	var puts []*sipdesk.Registration
	var dels []string
	for _, c := range changes {
		if c.exp == 0 {
			dels = append(dels, c.contact)
			continue
		}
		puts = append(puts, &sipdesk.Registration{
			SIPAccountID: acct.ID, Contact: c.contact, Received: src.String(), Transport: transport,
			CallID: callID, CSeq: cseq, Node: s.cfg.Node, EdgeAddr: edgeAddr, UserAgent: ua,
			ExpiresAt: now.Add(time.Duration(c.exp) * time.Second),
		})
	}
	rg := &regChange{acct: acct.ID, wildcard: wildcard, dels: dels, puts: puts, now: now, lg: lg}
	var list []*sipdesk.Registration
	var refusal string
	if s.cfg.Shared {
		list, refusal = s.registerShared(rg)
	} else {
		list, refusal = s.registerLocal(rg)
	}
	switch refusal {
	case "":
	case sipdesk.EUnavailable:
		s.refuse(tx, req, refusal, sip.NewHeader("Retry-After", strconv.Itoa(max(1, int(s.cfg.RetryAfter/time.Second)))))
		return
	default:
		s.refuse(tx, req, refusal)
		lg.Info("register", "result", sipdesk.RefusalCode(refusal), "contacts", len(puts))
		return
	}
	s.answer(tx, req, list, now, lg)
	result := "ok"
	if wildcard || (len(puts) == 0 && len(dels) > 0) {
		result = "unregistered"
	}
	lg.Info("register", "result", result, "contacts", len(puts), "removed", len(dels), "wildcard", wildcard)
}

// regChange is what one REGISTER asks.
type regChange struct {
	acct     int64
	wildcard bool
	dels     []string
	puts     []*sipdesk.Registration
	now      time.Time
	lg       *slog.Logger
}

func (c *regChange) bindings() []*Binding {
	bs := make([]*Binding, 0, len(c.puts))
	for _, r := range c.puts {
		if b, ok := NewBinding(r); ok {
			bs = append(bs, b)
		}
	}
	return bs
}

// registerShared stores the change and waits for it (other edges route
// from the store), then indexes this edge's flows. It returns every edge's
// contacts of the account, or the refusal.
func (s *Registrar) registerShared(c *regChange) ([]*sipdesk.Registration, string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	all, err := s.pol.RegisterBindings(ctx, policy.BindingChange{AccountID: c.acct, All: c.wildcard, Deletes: c.dels, Puts: c.puts}, s.cfg.MaxContacts)
	if err != nil {
		if sipdesk.ErrorCode(err) == sipdesk.SIPTooManyContacts {
			return nil, sipdesk.SIPTooManyContacts
		}
		c.lg.Error("register: store", "error", err)
		return nil, sipdesk.EUnavailable
	}
	s.idx.Apply(c.acct, c.wildcard, c.dels, c.bindings(), 0, c.now, nil)
	return all, ""
}

// registerLocal is the one-node registrar: the index holds every binding,
// and the store write follows behind (the store copy serves a restart).
func (s *Registrar) registerLocal(c *regChange) ([]*sipdesk.Registration, string) {
	var bindings []*Binding
	var writes []*sipdesk.Registration
	storeDown := s.storeDown.Load()
	for _, r := range c.puts {
		b, ok := NewBinding(r)
		if !ok {
			continue
		}
		if old := s.idx.Get(c.acct, r.Contact); !storeDown && !c.wildcard && refreshOnly(old, r, c.now) {
			b.stored = old.stored
		} else {
			writes = append(writes, r)
		}
		bindings = append(bindings, b)
	}
	bc := policy.BindingChange{AccountID: c.acct, All: c.wildcard, Deletes: c.dels, Puts: writes}
	var ok bool
	if storeDown {
		// After a failed write-behind the registrar fails closed: REGISTERs
		// wait for their own write and get 503 until the store takes one.
		if !s.idx.Apply(c.acct, c.wildcard, c.dels, bindings, s.cfg.MaxContacts, c.now, func() {}) {
			return nil, sipdesk.SIPTooManyContacts
		}
		if err := s.pol.SaveBindings(bc); err != nil {
			c.lg.Error("register: store", "error", err)
			return nil, sipdesk.EUnavailable
		}
		s.storeDown.Store(false)
		ok = true
	} else {
		// Write-behind: the binding is live in memory at once and its
		// store write joins the next group commit (in order, lazily
		// committed, within milliseconds).
		lg := c.lg
		ok = s.idx.Apply(c.acct, c.wildcard, c.dels, bindings, s.cfg.MaxContacts, c.now, func() {
			if !c.wildcard && len(c.dels) == 0 && len(writes) == 0 {
				return
			}
			s.pol.PostBindings(bc, func(err error) {
				if err != nil {
					s.storeDown.Store(true)
					lg.Error("register: store write failed; registering fails closed until the store is back", "error", err)
				}
			})
		})
	}
	if !ok {
		return nil, sipdesk.SIPTooManyContacts
	}
	var list []*sipdesk.Registration
	for _, b := range s.idx.Lookup(c.acct, c.now) {
		list = append(list, &b.Reg)
	}
	return list, ""
}

// answer sends the 200 with every current contact of the AOR (RFC 3261
// §10.3). sipgo refuses to send a UDP datagram over sipmsg.MaxMessageSize
// and the answer would be lost; MaxContacts and MaxContactLen keep the 200
// within it, and a 200 that still does not fit (a request with huge
// headers, copied into the answer) gets 513 Message Too Large instead of
// silence: the change is kept, the device may register again over TCP.
func (s *Registrar) answer(tx sip.ServerTransaction, req *sip.Request, list []*sipdesk.Registration, now time.Time, lg *slog.Logger) {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, r := range list {
		if !r.ExpiresAt.After(now) {
			continue
		}
		var u sip.Uri
		if sip.ParseUri(r.Contact, &u) != nil {
			continue
		}
		left := int(r.ExpiresAt.Sub(now).Round(time.Second) / time.Second)
		ch := &sip.ContactHeader{Address: u}
		ch.Params.Add("expires", strconv.Itoa(left))
		res.AppendHeader(ch)
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	if strings.EqualFold(req.Transport(), "udp") {
		var size byteCount
		res.StringWrite(&size)
		if size > sipmsg.MaxMessageSize {
			lg.Warn("register: 200 too large for UDP; answering 513", "bytes", int(size), "contacts", len(list))
			s.respond(tx, req, 513, "Message Too Large")
			return
		}
	}
	if err := tx.Respond(res); err != nil {
		lg.Warn("register: respond", "error", err)
	}
}

// byteCount counts what is written to it: the size of a message without
// building it (the transaction builds it once more to send it).
type byteCount int

func (c *byteCount) WriteString(s string) (int, error) {
	*c += byteCount(len(s))
	return len(s), nil
}
