package sipdesk

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"strings"
)

// Digest algorithms of RFC 8760 the edge offers and verifies.
const (
	AlgMD5       = "MD5"
	AlgSHA256    = "SHA-256"
	AlgSHA512256 = "SHA-512-256"
)

// DigestHashes are the HA1 values H(username:realm:password) of a SIP
// account, one per algorithm, in lower-case hex. The password itself is never
// kept.
type DigestHashes struct {
	MD5       string
	SHA256    string
	SHA512256 string
}

// DigestHasher returns the hash constructor of a digest algorithm name, or nil.
func DigestHasher(alg string) func() hash.Hash {
	switch strings.ToUpper(strings.TrimSuffix(strings.ToUpper(alg), "-SESS")) {
	case AlgMD5, "":
		return md5.New
	case AlgSHA256:
		return sha256.New
	case AlgSHA512256:
		return sha512.New512_256
	}
	return nil
}

// HexHash hashes the parts joined by ':' with h and returns lower-case hex.
func HexHash(h func() hash.Hash, parts ...string) string {
	d := h()
	for i, p := range parts {
		if i > 0 {
			d.Write([]byte{':'})
		}
		d.Write([]byte(p))
	}
	return hex.EncodeToString(d.Sum(nil))
}

// NewDigestHashes computes the HA1 of every algorithm for the realm.
func NewDigestHashes(username, realm, password string) DigestHashes {
	return DigestHashes{
		MD5:       HexHash(md5.New, username, realm, password),
		SHA256:    HexHash(sha256.New, username, realm, password),
		SHA512256: HexHash(sha512.New512_256, username, realm, password),
	}
}

// HA1 returns the stored HA1 for an algorithm, or "".
func (d DigestHashes) HA1(alg string) string {
	switch strings.ToUpper(strings.TrimSuffix(strings.ToUpper(alg), "-SESS")) {
	case AlgMD5, "":
		return d.MD5
	case AlgSHA256:
		return d.SHA256
	case AlgSHA512256:
		return d.SHA512256
	}
	return ""
}

const (
	lowerDigits  = "abcdefghijkmnpqrstuvwxyz23456789" // no l, o, 0, 1: read aloud safely
	alnum        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	passwordRune = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
)

// pick returns n characters drawn uniformly from set with crypto/rand.
func pick(n int, set string) string {
	b := make([]byte, n)
	buf := make([]byte, 1)
	limit := 256 - 256%len(set) // rejection sampling keeps the draw uniform
	for i := 0; i < n; {
		rand.Read(buf)
		if int(buf[0]) >= limit {
			continue
		}
		b[i] = set[int(buf[0])%len(set)]
		i++
	}
	return string(b)
}

// GenerateUsername returns a new SIP username: 10 characters, lower-case
// letters and digits, starting with a letter.
func GenerateUsername() string {
	return pick(1, "abcdefghijkmnpqrstuvwxyz") + pick(9, lowerDigits)
}

// GeneratePassword returns a new SIP password of 20 characters that passes
// ValidatePassword (about 116 bits).
func GeneratePassword() string {
	for {
		p := pick(20, passwordRune)
		if checkPassword(p) == "" {
			return p
		}
	}
}

// GenerateJWTSecret returns a new 32-character secret of letters and digits.
func GenerateJWTSecret() string { return pick(JWTSecretLen, alnum) }

// GenerateToken returns a random token with ≥ 128 bits for links and API
// tokens, with a readable prefix.
func GenerateToken(prefix string) string { return prefix + rand.Text() + rand.Text()[:6] }

// HashToken is how tokens (API, reset links, sessions) are stored: SHA-256 hex.
// Tokens carry ≥ 128 random bits, so a fast hash is enough.
func HashToken(token string) string { return HexHash(sha256.New, token) }

// GenerateCode returns a 6-digit verification code.
func GenerateCode() string { return pick(6, "0123456789") }

// MaskUsername shows the first two characters and hides the rest, as the
// SIP Accounts table does until the eye icon is clicked.
func MaskUsername(u string) string {
	if u == "" {
		return ""
	}
	if len(u) <= 2 {
		return "••••••"
	}
	return u[:2] + "••••••"
}
