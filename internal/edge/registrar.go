package edge

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
)

// binding is one registered contact of a password account. It keeps what
// routing needs (contact, source, transport, expiry); the Call-ID, CSeq,
// node and User-Agent live in the store only, and the Contact is parsed
// when a call or a 200 needs it: with 100,000 bindings each byte counts
// 100 KB.
type binding struct {
	reg    sipdesk.Registration
	stored int64 // expiry (unix s) of the store's copy: a refresh may skip the write
}

// uri parses the binding's Contact (checked parseable by newBinding).
func (b *binding) uri() sip.Uri {
	var u sip.Uri
	_ = sip.ParseUri(b.reg.Contact, &u)
	return u
}

// regIndex is the in-memory index of bindings by account, sharded so that
// lookups of different accounts do not contend.
type regIndex struct {
	shards [64]regShard
}

type regShard struct {
	mu sync.RWMutex
	m  map[int64][]*binding
}

func newRegIndex() *regIndex {
	x := &regIndex{}
	for i := range x.shards {
		x.shards[i].m = make(map[int64][]*binding)
	}
	return x
}

func (x *regIndex) shard(id int64) *regShard { return &x.shards[uint64(id)%uint64(len(x.shards))] }

// Lookup returns the live bindings of an account (a copy of the slice).
func (x *regIndex) Lookup(id int64, now time.Time) []*binding {
	s := x.shard(id)
	s.mu.RLock()
	bs := s.m[id]
	var out []*binding
	for _, b := range bs {
		if b.reg.ExpiresAt.After(now) {
			out = append(out, b)
		}
	}
	s.mu.RUnlock()
	return out
}

// Put adds or replaces the binding with the same contact.
func (x *regIndex) Put(b *binding) {
	s := x.shard(b.reg.SIPAccountID)
	s.mu.Lock()
	bs := s.m[b.reg.SIPAccountID]
	i := slices.IndexFunc(bs, func(o *binding) bool { return o.reg.Contact == b.reg.Contact })
	if i >= 0 {
		nb := slices.Clone(bs)
		nb[i] = b
		s.m[b.reg.SIPAccountID] = nb
	} else {
		s.m[b.reg.SIPAccountID] = append(slices.Clip(bs), b)
	}
	s.mu.Unlock()
}

// Get returns the binding of an account's contact, or nil.
func (x *regIndex) Get(id int64, contact string) *binding {
	s := x.shard(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, b := range s.m[id] {
		if b.reg.Contact == contact {
			return b
		}
	}
	return nil
}

// refreshOnly reports whether r only extends b's expiry while the store's
// copy of b still covers 90 % of r's new interval: then the store write can
// be skipped (a device refreshing every few seconds costs one write per
// tenth of its interval), and a restart still finds the binding until the
// device's next refresh is due.
func refreshOnly(b *binding, r *sipdesk.Registration, now time.Time) bool {
	if b == nil || b.reg.Received != r.Received || b.reg.Transport != r.Transport {
		return false
	}
	left := b.stored - now.Unix()
	return left*10 >= int64(r.ExpiresAt.Sub(now)/time.Second)*9
}

// Delete removes one contact of an account.
func (x *regIndex) Delete(id int64, contact string) {
	s := x.shard(id)
	s.mu.Lock()
	bs := s.m[id]
	nb := slices.DeleteFunc(slices.Clone(bs), func(o *binding) bool { return o.reg.Contact == contact })
	if len(nb) == 0 {
		delete(s.m, id)
	} else {
		s.m[id] = nb
	}
	s.mu.Unlock()
}

// DeleteAccount removes every binding of an account and reports how many.
func (x *regIndex) DeleteAccount(id int64) int {
	s := x.shard(id)
	s.mu.Lock()
	n := len(s.m[id])
	delete(s.m, id)
	s.mu.Unlock()
	return n
}

// Accounts returns the ids of the accounts with bindings.
func (x *regIndex) Accounts() []int64 {
	var ids []int64
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		for id := range s.m {
			ids = append(ids, id)
		}
		s.mu.RUnlock()
	}
	return ids
}

// Expire drops expired bindings.
func (x *regIndex) Expire(now time.Time) int {
	n := 0
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.Lock()
		for id, bs := range s.m {
			if !slices.ContainsFunc(bs, func(b *binding) bool { return !b.reg.ExpiresAt.After(now) }) {
				continue
			}
			nb := slices.DeleteFunc(slices.Clone(bs), func(b *binding) bool { return !b.reg.ExpiresAt.After(now) })
			n += len(bs) - len(nb)
			if len(nb) == 0 {
				delete(s.m, id)
			} else {
				s.m[id] = nb
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Len counts the bindings.
func (x *regIndex) Len() int {
	n := 0
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		for _, bs := range s.m {
			n += len(bs)
		}
		s.mu.RUnlock()
	}
	return n
}

func newBinding(r *sipdesk.Registration) (*binding, bool) {
	var u sip.Uri
	if err := sip.ParseUri(r.Contact, &u); err != nil {
		return nil, false
	}
	b := &binding{reg: sipdesk.Registration{SIPAccountID: r.SIPAccountID, Contact: r.Contact, Received: r.Received,
		Transport: internTransport(r.Transport), ExpiresAt: r.ExpiresAt}, stored: r.ExpiresAt.Unix()}
	return b, true
}

// internTransport returns the shared copy of the usual transport names.
func internTransport(t string) string {
	for _, k := range [...]string{"udp", "tcp", "tls", "ws", "wss", "UDP", "TCP", "TLS", "WS", "WSS"} {
		if t == k {
			return k
		}
	}
	return t
}

// handleRegister is the registrar: digest auth, status and ACL gates,
// bindings with expiry kept in the store and indexed in memory.
func (s *Server) handleRegister(req *sip.Request, tx sip.ServerTransaction) {
	src, ok := sourceOf(req)
	if !ok {
		s.respond(tx, req, 400, "Bad Request")
		return
	}
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	snap := s.snap.Load()
	acct, ref := s.authenticateAny(req, tx, src, "Authorization", snap)
	lg := s.log.With("call_id", callID, "src", src.String())
	if acct == nil {
		if ref != RefuseNone && ref != RefuseUnauthorized {
			lg.Info("register", "result", refusalResult(ref))
		}
		return
	}
	lg = lg.With("sip_account", acct.ID)
	toUser := ""
	if h := req.To(); h != nil {
		toUser = h.Address.User
	}
	if toUser != acct.Username {
		s.refuse(tx, req, RefuseAuthUserTo)
		lg.Info("register", "result", refusalResult(RefuseAuthUserTo))
		return
	}
	if r := statusRefusal(acct); r != RefuseNone {
		s.refuse(tx, req, r)
		lg.Info("register", "result", refusalResult(r))
		return
	}
	if !aclAllowsFrom(acct, src) {
		s.refuse(tx, req, RefuseSourceNotAllowed)
		lg.Info("register", "result", refusalResult(RefuseSourceNotAllowed))
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
			s.refuse(tx, req, RefuseIntervalTooBrief, sip.NewHeader("Min-Expires", strconv.Itoa(int(s.cfg.MinExpires/time.Second))))
			lg.Info("register", "result", refusalResult(RefuseIntervalTooBrief))
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
	bindings := make([]*binding, 0, len(puts))
	storeDown := s.regStoreDown.Load()
	for _, r := range puts {
		b, ok := newBinding(r)
		if !ok {
			continue
		}
		if old := s.regs.Get(acct.ID, r.Contact); !storeDown && !wildcard && refreshOnly(old, r, now) {
			b.stored = old.stored
		} else {
			writes = append(writes, r)
		}
		bindings = append(bindings, b)
	}
	write := func(tx sipdesk.Tx) error {
		if wildcard {
			return tx.DeleteRegistrations(acct.ID)
		}
		for _, c := range dels {
			if err := tx.DeleteRegistration(acct.ID, c); err != nil && sipdesk.ErrorCode(err) != sipdesk.ENotFound {
				return err
			}
		}
		for _, r := range writes {
			if err := tx.PutRegistration(r); err != nil {
				return err
			}
		}
		return nil
	}
	// Write-behind: the binding is live in memory at once and its store
	// write joins the next group commit (in order, lazily committed, within
	// milliseconds), so REGISTERs share transactions instead of each waiting
	// for one. After a failed write the registrar fails closed: REGISTERs
	// wait for their own write and get 503 until the store takes one again.
	switch {
	case storeDown:
		if err := s.regWrites.do(s.st, write); err != nil {
			lg.Error("register: store", "error", err)
			s.refuse(tx, req, RefuseUnavailable, sip.NewHeader("Retry-After", "5"))
			return
		}
		s.regStoreDown.Store(false)
	case wildcard || len(dels) > 0 || len(writes) > 0:
		s.regWrites.post(s.st, write, func(err error) {
			if err != nil {
				s.regStoreDown.Store(true)
				lg.Error("register: store write failed; registering fails closed until the store is back", "error", err)
			}
		})
	}
	if wildcard {
		s.regs.DeleteAccount(acct.ID)
	}
	for _, c := range dels {
		s.regs.Delete(acct.ID, c)
	}
	for _, b := range bindings {
		s.regs.Put(b)
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range s.regs.Lookup(acct.ID, now) {
		left := int(b.reg.ExpiresAt.Sub(now).Round(time.Second) / time.Second)
		ch := &sip.ContactHeader{Address: b.uri()}
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

func refusalResult(r Refusal) string {
	in := Refusals[r]
	if in.APICode != "" {
		return in.APICode
	}
	return strconv.Itoa(in.Code)
}
