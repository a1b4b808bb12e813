// Package registrar is the SIP registrar of the edge: REGISTER with digest
// or JWT authentication, bindings indexed in memory by account and kept in
// the store (write-behind) so that every node and a restart find them.
package registrar

import (
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
)

// Binding is one registered contact of a password account. It keeps what
// routing needs (contact, source, transport, expiry); the Call-ID, CSeq,
// node and User-Agent live in the store only, and the Contact is parsed
// when a call or a 200 needs it: with 100,000 bindings each byte counts
// 100 KB.
type Binding struct {
	Reg    sipdesk.Registration
	stored int64 // expiry (unix s) of the store's copy: a refresh may skip the write
}

// URI parses the binding's Contact (checked parseable by newBinding).
func (b *Binding) URI() sip.Uri {
	var u sip.Uri
	_ = sip.ParseUri(b.Reg.Contact, &u)
	return u
}

// Index is the in-memory index of bindings by account, sharded so that
// lookups of different accounts do not contend.
type Index struct {
	shards [64]regShard
}

type regShard struct {
	mu sync.RWMutex
	m  map[int64][]*Binding
	// n counts the bindings, and no binding expires before next (a lower
	// bound, lowered by every change and raised only by a walk), so that
	// Len and Expire need not walk every binding each second.
	n    int
	next time.Time
}

// set stores an account's bindings (none: the account goes), keeping n and
// next; the caller holds the lock.
func (s *regShard) set(id int64, nb []*Binding) {
	s.n += len(nb) - len(s.m[id])
	if len(nb) == 0 {
		delete(s.m, id)
		return
	}
	s.m[id] = nb
	for _, b := range nb {
		if s.next.IsZero() || b.Reg.ExpiresAt.Before(s.next) {
			s.next = b.Reg.ExpiresAt
		}
	}
}

// NewIndex makes an empty index.
func NewIndex() *Index {
	x := &Index{}
	for i := range x.shards {
		x.shards[i].m = make(map[int64][]*Binding)
	}
	return x
}

func (x *Index) shard(id int64) *regShard { return &x.shards[uint64(id)%uint64(len(x.shards))] }

// Lookup returns the live bindings of an account (a copy of the slice).
func (x *Index) Lookup(id int64, now time.Time) []*Binding {
	s := x.shard(id)
	s.mu.RLock()
	bs := s.m[id]
	var out []*Binding
	for _, b := range bs {
		if b.Reg.ExpiresAt.After(now) {
			out = append(out, b)
		}
	}
	s.mu.RUnlock()
	return out
}

// Put adds or replaces the binding with the same contact.
func (x *Index) Put(b *Binding) {
	s := x.shard(b.Reg.SIPAccountID)
	s.mu.Lock()
	bs := s.m[b.Reg.SIPAccountID]
	i := slices.IndexFunc(bs, func(o *Binding) bool { return o.Reg.Contact == b.Reg.Contact })
	if i >= 0 {
		nb := slices.Clone(bs)
		nb[i] = b
		s.set(b.Reg.SIPAccountID, nb)
	} else {
		s.set(b.Reg.SIPAccountID, append(slices.Clip(bs), b))
	}
	s.mu.Unlock()
}

// Get returns the binding of an account's contact, or nil.
func (x *Index) Get(id int64, contact string) *Binding {
	s := x.shard(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, b := range s.m[id] {
		if b.Reg.Contact == contact {
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
func refreshOnly(b *Binding, r *sipdesk.Registration, now time.Time) bool {
	if b == nil || b.Reg.Received != r.Received || b.Reg.Transport != r.Transport {
		return false
	}
	left := b.stored - now.Unix()
	return left*10 >= int64(r.ExpiresAt.Sub(now)/time.Second)*9
}

// Apply changes an account's bindings at once: with all, every binding
// goes first; dels are removed and puts added or replaced. With max > 0 it
// refuses (false, nothing changed) a change that adds a contact and would
// leave more than max live bindings. commit runs under the account's lock
// once the change is decided, so that concurrent REGISTERs of one account
// queue their store writes in the order the index took them.
func (x *Index) Apply(id int64, all bool, dels []string, puts []*Binding, max int, now time.Time, commit func()) bool {
	s := x.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.m[id]
	var nb []*Binding
	for _, b := range old {
		if all || !b.Reg.ExpiresAt.After(now) || slices.Contains(dels, b.Reg.Contact) ||
			slices.ContainsFunc(puts, func(p *Binding) bool { return p.Reg.Contact == b.Reg.Contact }) {
			continue
		}
		nb = append(nb, b)
	}
	adds := slices.ContainsFunc(puts, func(p *Binding) bool {
		return !slices.ContainsFunc(old, func(b *Binding) bool { return b.Reg.Contact == p.Reg.Contact && b.Reg.ExpiresAt.After(now) })
	})
	nb = append(nb, puts...)
	if max > 0 && len(nb) > max && adds {
		return false
	}
	if commit != nil {
		commit()
	}
	s.set(id, nb)
	return true
}

// Delete removes one contact of an account.
func (x *Index) Delete(id int64, contact string) {
	s := x.shard(id)
	s.mu.Lock()
	bs := s.m[id]
	s.set(id, slices.DeleteFunc(slices.Clone(bs), func(o *Binding) bool { return o.Reg.Contact == contact }))
	s.mu.Unlock()
}

// DeleteAccount removes every binding of an account and reports how many.
func (x *Index) DeleteAccount(id int64) int {
	s := x.shard(id)
	s.mu.Lock()
	n := len(s.m[id])
	s.set(id, nil)
	s.mu.Unlock()
	return n
}

// Accounts returns the ids of the accounts with bindings.
func (x *Index) Accounts() []int64 {
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

// Expire drops expired bindings. A shard is walked only once its earliest
// expiry has passed; the walk finds the next one.
func (x *Index) Expire(now time.Time) int {
	n := 0
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.Lock()
		if s.n == 0 || now.Before(s.next) {
			s.mu.Unlock()
			continue
		}
		s.next = time.Time{}
		for id, bs := range s.m {
			nb := bs
			if slices.ContainsFunc(bs, func(b *Binding) bool { return !b.Reg.ExpiresAt.After(now) }) {
				nb = slices.DeleteFunc(slices.Clone(bs), func(b *Binding) bool { return !b.Reg.ExpiresAt.After(now) })
				n += len(bs) - len(nb)
			}
			s.set(id, nb) // recomputes next
		}
		s.mu.Unlock()
	}
	return n
}

// Len counts the bindings.
func (x *Index) Len() int {
	n := 0
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.RLock()
		n += s.n
		s.mu.RUnlock()
	}
	return n
}

// NewBinding is the binding of a stored registration (false when its
// Contact does not parse).
func NewBinding(r *sipdesk.Registration) (*Binding, bool) {
	var u sip.Uri
	if err := sip.ParseUri(r.Contact, &u); err != nil {
		return nil, false
	}
	b := &Binding{Reg: sipdesk.Registration{SIPAccountID: r.SIPAccountID, Contact: r.Contact, Received: r.Received,
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
