package auth

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

const testRealm = "sipdesk.local"

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestNonceCountTracker(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := now
	d := NewDigest(testRealm, testKey, func() time.Time { return clock })
	n1 := d.Nonce()
	tr := newNCTracker()
	if !tr.Use(n1, 1, clock) {
		t.Fatal("first use refused")
	}
	if tr.Use(n1, 1, clock) {
		t.Fatal("replayed nonce count accepted")
	}
	if !tr.Use(n1, 2, clock) || tr.Use(n1, 2, clock) {
		t.Fatal("the next nonce count: want accepted once")
	}
	if tr.Use("not-a-nonce", 1, clock) {
		t.Fatal("malformed nonce accepted")
	}
	// Still remembered until the nonce has expired...
	clock = now.Add(NonceValidity)
	if tr.Use(n1, 2, clock) {
		t.Fatal("replay accepted before the nonce expired")
	}
	// ...then its bucket goes, and an expired nonce is refused outright.
	for i := range 30 {
		clock = now.Add(NonceValidity + time.Duration(i)*ncBucket)
		tr.Use(d.Nonce(), 1, clock)
	}
	if tr.Use(n1, 3, clock) {
		t.Fatal("expired nonce accepted")
	}
	tr.mu.Lock()
	n := len(tr.buckets)
	tr.mu.Unlock()
	if max := int((NonceValidity+10*time.Second)/ncBucket) + 3; n > max {
		t.Fatalf("%d buckets kept, want at most %d (old ones are dropped)", n, max)
	}
}

// FuzzParseCredentials: digest Authorization / Proxy-Authorization values
// never panic the parser, an accepted value has the fields verification
// needs, re-serialised it parses to the same credentials, and no fuzzed
// answer verifies (the nonce is ours only with our key).
func FuzzParseCredentials(f *testing.F) {
	for _, s := range []string{
		`Digest username="alice0001", realm="sipdesk.local", nonce="abc", uri="sip:sipdesk.local", response="0123456789abcdef0123456789abcdef", algorithm=MD5, cnonce="x", qop=auth, nc=00000001`,
		`digest username=alice,nonce=n,response=R`,
		`Digest username="a\"b", realm="r\\", nonce="n", response="r", opaque=""`,
		`Digest username="unterminated`,
		`Digest ,,,,=`,
		`Digest username="alice", nonce="n", response="r", algorithm=SHA-256, nc=ffffffff`,
		"Digest\tusername=a nonce=b response=c",
		`Bearer eyJhbGciOiJIUzI1NiJ9.e30.x`,
		`NoOneKnowsThisScheme opaque-data=here`,
	} {
		f.Add(s)
	}
	d := NewDigest(testRealm, testKey, time.Now)
	ha := sipdesk.NewDigestHashes("alice0001", testRealm, "Secret-pass-1")
	f.Fuzz(func(t *testing.T, v string) {
		c, ok := ParseCredentials(v)
		if !ok {
			return
		}
		if c.Username == "" || c.Nonce == "" || c.Response == "" {
			t.Fatalf("accepted without username/nonce/response: %+v", c)
		}
		if c.Response != strings.ToLower(c.Response) {
			t.Fatalf("response not lower case: %q", c.Response)
		}
		q := func(s string) string {
			return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
		}
		re := "Digest username=" + q(c.Username) + ", realm=" + q(c.Realm) + ", nonce=" + q(c.Nonce) + ", uri=" + q(c.URI) +
			", response=" + q(c.Response) + ", algorithm=" + q(c.Algorithm) + ", cnonce=" + q(c.CNonce) + ", qop=" + q(c.QOP) +
			", nc=" + q(c.NC) + ", opaque=" + q(c.Opaque)
		c2, ok := ParseCredentials(re)
		if !ok || c2 != c {
			t.Fatalf("round trip: %+v\n -> %q\n -> %+v (%v)", c, re, c2, ok)
		}
		for _, h := range []*sipdesk.DigestHashes{&ha, nil} {
			if d.Verify(&c, "REGISTER", h) == OK {
				t.Fatalf("fuzzed credentials verified: %q", v)
			}
		}
	})
}

// Two devices challenged in the same nanosecond (two cores read the same
// clock) get different nonces, and each one's first right answer is
// accepted: with a shared nonce the second answer, nc=1 again, was taken
// for a replay and answered stale=true (a sipp run of 1,000 REGISTERs hit it).
func TestNoncesOfOneInstantDiffer(t *testing.T) {
	at := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	d := NewDigest(testRealm, testKey, func() time.Time { return at })
	seen := map[string]bool{}
	for i := range 1000 {
		user := "user" + strconv.Itoa(i)
		ch, _ := siptest.ParseChallenge(d.Challenges(false, false)[0])
		if seen[ch.Nonce] {
			t.Fatalf("challenge %d repeats a nonce of the same instant", i)
		}
		seen[ch.Nonce] = true
		ha := sipdesk.NewDigestHashes(user, testRealm, "Secret-pass-1")
		c, _ := ParseCredentials(siptest.Answer(ch, "REGISTER", "sip:"+testRealm, user, "Secret-pass-1", 1, "cn"))
		if v := d.Verify(&c, "REGISTER", &ha); v != OK {
			t.Fatalf("device %d: verdict %d, want OK", i, v)
		}
	}
}
