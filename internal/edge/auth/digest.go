// Package auth authenticates SIP requests: stateless digest nonces bound to
// the issuing node and answers (RFC 7616/8760 algorithms, nonce counts),
// Bearer JWTs (RFC 8898)
// for the softphone, and the challenge or refusal that follows a failure.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipdesk/sipdesk"
)

// NonceValidity is how long a nonce may be answered; after it the challenge
// says stale=true.
const NonceValidity = 300 * time.Second

// Digest issues stateless nonces (timestamp, issuing node, HMAC(key,
// timestamp, node, realm)) and verifies answers.
//
// A nonce is answered at the node that issued it only: the node is a random
// id drawn when the Digest is made (once per edge process), inside the MAC.
// The nonce-count record that refuses a replayed answer is per node, so a
// nonce accepted everywhere would let an answer captured at one edge be
// replayed once at each other edge. Another node (or this one after a
// restart) still knows the nonce is genuine, through the shared key, and
// answers a right answer to it with a fresh stale=true challenge: the device
// answers again without asking its user, and nothing counts as a failed
// password. A wrong answer is a failure wherever its nonce came from.
type Digest struct {
	realm string
	key   []byte
	node  [nonceNodeLen]byte
	now   func() time.Time
	nc    *ncTracker
	last  atomic.Int64 // issue time of the last nonce, ns (nonceTime)
	// macs keeps keyed HMACs for reuse: a new one is two SHA-256 states
	// and its key pads, about 500 bytes, and every challenge and every
	// answer checked takes one.
	macs sync.Pool
	tail []byte // what a nonce's MAC covers after its timestamp and node: 0, realm

	// SHA256First puts the SHA-256 challenge first (RFC 8760 order).
	SHA256First bool
}

// NewDigest makes the digest side of realm with the nonce key shared by
// every node, and a node id of its own.
func NewDigest(realm string, key []byte, now func() time.Time) *Digest {
	d := &Digest{realm: realm, key: key, now: now, nc: newNCTracker(), tail: append([]byte{0}, realm...)}
	d.macs.New = func() any { return hmac.New(sha256.New, key) }
	if _, err := rand.Read(d.node[:]); err != nil {
		panic("auth: no randomness for the node id: " + err.Error())
	}
	return d
}

const (
	nonceTSLen   = 8
	nonceNodeLen = 8
	nonceMACLen  = 16
	nonceLen     = nonceTSLen + nonceNodeLen + nonceMACLen
)

// mac is the MAC of a nonce's timestamp and node.
func (d *Digest) mac(tsNode []byte) []byte {
	m := d.macs.Get().(hash.Hash)
	m.Write(tsNode)
	m.Write(d.tail)
	sum := m.Sum(nil)[:nonceMACLen]
	m.Reset()
	d.macs.Put(m)
	return sum
}

// Nonce returns a new nonce of this node for the current time.
func (d *Digest) Nonce() string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:nonceTSLen], uint64(d.nonceTime()))
	copy(b[nonceTSLen:], d.node[:])
	copy(b[nonceTSLen+nonceNodeLen:], d.mac(b[:nonceTSLen+nonceNodeLen]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// nonceTime is a new nonce's issue time in ns, above the last one's: two
// cores read the same nanosecond now and then (64 in 800,000 reads here),
// and two devices challenged then would share a nonce, so the second one's
// right answer would look like a replay of the first's (stale=true).
func (d *Digest) nonceTime() int64 {
	now := d.now().UnixNano()
	for {
		last := d.last.Load()
		t := max(now, last+1)
		if d.last.CompareAndSwap(last, t) {
			return t
		}
	}
}

// decodeNonce decodes a nonce of the right form (false otherwise).
func decodeNonce(n string) (b [nonceLen]byte, ok bool) {
	if len(n) != base64.RawURLEncoding.EncodedLen(nonceLen) {
		return b, false
	}
	if _, err := base64.RawURLEncoding.Decode(b[:], []byte(n)); err != nil {
		return b, false
	}
	return b, true
}

// checkNonce reports whether the nonce is genuine (issued by a node with our
// key), whether it is still fresh, and whether this node issued it.
func (d *Digest) checkNonce(n string) (ours, fresh, local bool) {
	b, ok := decodeNonce(n)
	if !ok || !hmac.Equal(b[nonceTSLen+nonceNodeLen:], d.mac(b[:nonceTSLen+nonceNodeLen])) {
		return false, false, false
	}
	ts := time.Unix(0, int64(binary.BigEndian.Uint64(b[:nonceTSLen])))
	age := d.now().Sub(ts)
	local = [nonceNodeLen]byte(b[nonceTSLen:nonceTSLen+nonceNodeLen]) == d.node
	return true, age >= -5*time.Second && age <= NonceValidity, local
}

// Challenges returns the header values of a challenge, one per algorithm
// with one fresh nonce. MD5 comes first unless sha256First: widely deployed
// clients (sipp 3.6, older libre/baresip) answer the first challenge only and
// give up when it is not MD5, while RFC 8760 clients pick the strongest one
// they support whatever the order.
func (d *Digest) Challenges(stale, md5Only bool) []string {
	n := d.Nonce()
	st := ""
	if stale {
		st = ", stale=true"
	}
	out := make([]string, 0, 2)
	algs := []string{sipdesk.AlgMD5, sipdesk.AlgSHA256}
	if d.SHA256First {
		algs = []string{sipdesk.AlgSHA256, sipdesk.AlgMD5}
	}
	if md5Only {
		algs = algs[:0:0]
		algs = append(algs, sipdesk.AlgMD5)
	}
	for _, alg := range algs {
		out = append(out, `Digest realm="`+d.realm+`", nonce="`+n+`", algorithm=`+alg+`, qop="auth"`+st)
	}
	return out
}

// Credentials is a parsed Authorization / Proxy-Authorization header.
type Credentials struct {
	Username, Realm, Nonce, URI, Response, Algorithm, CNonce, QOP, NC, Opaque string
}

// ParseCredentials parses a Digest credentials header value. It is ours
// rather than github.com/icholy/digest's (which sipgo brings along) because
// that one reads through a 4 KiB bufio.Reader per header on the REGISTER hot
// path and turns nc into an int, losing the exact string the response hash
// is computed over; FuzzParseCredentials covers this one.
func ParseCredentials(v string) (Credentials, bool) {
	var c Credentials
	v = strings.TrimSpace(v)
	if len(v) < 7 || !strings.EqualFold(v[:6], "digest") || (v[6] != ' ' && v[6] != '\t') {
		return c, false
	}
	s := v[7:]
	for {
		s = strings.TrimLeft(s, " \t\r\n,")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return c, false
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var ok bool
			if val, s, ok = quotedString(s); !ok {
				return c, false
			}
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			val = s[:end]
			s = s[end:]
		}
		switch name {
		case "username":
			c.Username = val
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "uri":
			c.URI = val
		case "response":
			c.Response = strings.ToLower(val)
		case "algorithm":
			c.Algorithm = val
		case "cnonce":
			c.CNonce = val
		case "qop":
			c.QOP = val
		case "nc":
			c.NC = val
		case "opaque":
			c.Opaque = val
		}
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" {
		return c, false
	}
	return c, true
}

// quotedString reads the quoted string s starts with (RFC 3261 §25.1) and
// returns its value and what follows; false when it is not closed. A value
// without escapes, as devices send them, is a substring: no copy.
func quotedString(s string) (val, rest string, ok bool) {
	if end := strings.IndexAny(s[1:], `"\\`); end >= 0 && s[1+end] == '"' {
		return s[1 : 1+end], s[2+end:], true
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		ch := s[i]
		if ch == '\\' && i+1 < len(s) {
			i++
			b.WriteByte(s[i])
			continue
		}
		if ch == '"' {
			return b.String(), s[i+1:], true
		}
		b.WriteByte(ch)
	}
	return "", "", false
}

// Verdict of a digest answer.
type Verdict int

const (
	OK     Verdict = iota
	Bad            // wrong answer, unknown user, forged nonce: a failure
	Stale          // our nonce, expired: challenge again with stale=true
	Replay         // nonce count not above the last one seen
)

// Verify checks an answer against the account's stored HA1 (ha nil: unknown
// user; the work done is the same so timing does not tell the two apart).
func (d *Digest) Verify(c *Credentials, method string, ha *sipdesk.DigestHashes) Verdict {
	if c.Realm != d.realm {
		return Bad
	}
	ours, fresh, local := d.checkNonce(c.Nonce)
	if !ours {
		return Bad
	}
	h := sipdesk.DigestHasher(c.Algorithm)
	if h == nil || strings.HasSuffix(strings.ToUpper(c.Algorithm), "-SESS") {
		return Bad
	}
	var ha1 string
	if ha != nil {
		ha1 = ha.HA1(c.Algorithm)
	}
	if ha1 == "" {
		// Unknown user: a keyed dummy HA1 so the computation is the same.
		ha1 = sipdesk.HexHash(h, c.Username, d.realm, string(d.key))
	}
	ha2 := sipdesk.HexHash(h, method, c.URI)
	var want string
	var nc uint64
	switch c.QOP {
	case "auth":
		var err error
		nc, err = strconv.ParseUint(c.NC, 16, 32)
		if err != nil || len(c.NC) != 8 || c.CNonce == "" {
			return Bad
		}
		want = sipdesk.HexHash(h, ha1, c.Nonce, c.NC, c.CNonce, c.QOP, ha2)
	default:
		// We offer qop=auth only; an answer without it is refused (no
		// nonce-count, so no replay protection).
		return Bad
	}
	ok := subtle.ConstantTimeCompare([]byte(want), []byte(c.Response)) == 1 && ha != nil && ha.HA1(c.Algorithm) != ""
	if !ok {
		return Bad
	}
	if !fresh || !local {
		return Stale
	}
	if !d.nc.Use(c.Nonce, uint32(nc), d.now()) {
		return Replay
	}
	return OK
}

// ncTracker remembers the highest nonce count used per nonce while the nonce
// is valid, so a replayed answer is refused. Entries are kept in buckets by
// the nonce's own issue time, and a bucket goes whole once every nonce in
// it has expired. A sweep over all the entries under the lock (every 30 s
// before) took tens of milliseconds at a few thousand REGISTER/s, a million
// entries, while every digest check waited.
type ncTracker struct {
	mu      sync.Mutex
	buckets map[int64]map[nonceKey]uint32 // issue time / ncBucket → nonce → highest nc
	oldest  int64                         // buckets below this one are gone
}

// nonceKey is a nonce decoded (timestamp and MAC; the node is this one's):
// a map of fixed-size keys and values holds no pointers, so 100,000 entries
// cost ~40 bytes each and nothing for the GC to scan, and no header string
// is kept alive.
type nonceKey [nonceTSLen + nonceMACLen]byte

const ncBucket = 30 * time.Second

func newNCTracker() *ncTracker { return &ncTracker{buckets: make(map[int64]map[nonceKey]uint32)} }

// Use records nc for nonce; false when nc is not above the last one (or
// the nonce is not one of ours in form, or expired).
func (t *ncTracker) Use(nonce string, nc uint32, now time.Time) bool {
	raw, ok := decodeNonce(nonce)
	if !ok {
		return false
	}
	var k nonceKey
	copy(k[:nonceTSLen], raw[:nonceTSLen])
	copy(k[nonceTSLen:], raw[nonceTSLen+nonceNodeLen:])
	b := int64(binary.BigEndian.Uint64(k[:nonceTSLen])) / int64(ncBucket)
	// Bucket b holds nonces issued until (b+1)·ncBucket, valid for
	// NonceValidity after that; 10 s more for clock steps.
	oldest := (now.UnixNano()-int64(NonceValidity+10*time.Second))/int64(ncBucket) - 1
	t.mu.Lock()
	defer t.mu.Unlock()
	if oldest > t.oldest { // once per ncBucket, not on every check
		for id := range t.buckets {
			if id < oldest {
				delete(t.buckets, id)
			}
		}
		t.oldest = oldest
	}
	if b < oldest {
		return false
	}
	m := t.buckets[b]
	if m == nil {
		m = make(map[nonceKey]uint32)
		t.buckets[b] = m
	}
	if last, ok := m[k]; ok && nc <= last {
		return false
	}
	m[k] = nc
	return true
}
