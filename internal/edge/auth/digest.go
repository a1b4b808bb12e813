// Package auth authenticates SIP requests: stateless digest nonces and
// answers (RFC 7616/8760 algorithms, nonce counts), Bearer JWTs (RFC 8898)
// for the softphone, and the challenge or refusal that follows a failure.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sipdesk/sipdesk"
)

// NonceValidity is how long a nonce may be answered; after it the challenge
// says stale=true.
const NonceValidity = 300 * time.Second

// Digest issues stateless nonces (timestamp + HMAC(key, timestamp,
// realm)) that every node sharing the key accepts, and verifies answers.
type Digest struct {
	realm string
	key   []byte
	now   func() time.Time
	nc    *ncTracker

	// SHA256First puts the SHA-256 challenge first (RFC 8760 order).
	SHA256First bool
}

// NewDigest makes the digest side of realm with the nonce key shared by
// every node.
func NewDigest(realm string, key []byte, now func() time.Time) *Digest {
	return &Digest{realm: realm, key: key, now: now, nc: newNCTracker()}
}

const nonceMACLen = 16

func (d *Digest) mac(ts []byte) []byte {
	m := hmac.New(sha256.New, d.key)
	m.Write(ts)
	m.Write([]byte{0})
	m.Write([]byte(d.realm))
	return m.Sum(nil)[:nonceMACLen]
}

// Nonce returns a new nonce for the current time.
func (d *Digest) Nonce() string {
	var b [8 + nonceMACLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(d.now().UnixNano()))
	copy(b[8:], d.mac(b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkNonce reports whether the nonce is ours and whether it is still fresh.
func (d *Digest) checkNonce(n string) (ours, fresh bool) {
	if len(n) != base64.RawURLEncoding.EncodedLen(8+nonceMACLen) {
		return false, false
	}
	var b [8 + nonceMACLen]byte
	if _, err := base64.RawURLEncoding.Decode(b[:], []byte(n)); err != nil {
		return false, false
	}
	if !hmac.Equal(b[8:], d.mac(b[:8])) {
		return false, false
	}
	ts := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := d.now().Sub(ts)
	return true, age >= -5*time.Second && age <= NonceValidity
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
			var b strings.Builder
			i := 1
			closed := false
			for ; i < len(s); i++ {
				ch := s[i]
				if ch == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if ch == '"' {
					closed = true
					break
				}
				b.WriteByte(ch)
			}
			if !closed {
				return c, false
			}
			val = b.String()
			s = s[i+1:]
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
	ours, fresh := d.checkNonce(c.Nonce)
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
	if !fresh {
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

// nonceKey is a nonce decoded (timestamp and MAC): a map of fixed-size keys
// and values holds no pointers, so 100,000 entries cost ~40 bytes each and
// nothing for the GC to scan, and no header string is kept alive.
type nonceKey [8 + nonceMACLen]byte

const ncBucket = 30 * time.Second

func newNCTracker() *ncTracker { return &ncTracker{buckets: make(map[int64]map[nonceKey]uint32)} }

// Use records nc for nonce; false when nc is not above the last one (or
// the nonce is not one of ours in form, or expired).
func (t *ncTracker) Use(nonce string, nc uint32, now time.Time) bool {
	var k nonceKey
	if len(nonce) != base64.RawURLEncoding.EncodedLen(len(k)) {
		return false
	}
	if _, err := base64.RawURLEncoding.Decode(k[:], []byte(nonce)); err != nil {
		return false
	}
	b := int64(binary.BigEndian.Uint64(k[:8])) / int64(ncBucket)
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
