// Package token mints and verifies the softphone's JWTs (RFC 7519, HS256
// only) with a SIP account's secret. The portal mints them; the edge
// verifies them on SIP over WebSocket (Authorization: Bearer, RFC 8898). A
// customer's own server may mint them the same way (docs/SOFTPHONE.md).
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Limits of a token's lifetime.
const (
	MaxTTL    = 24 * time.Hour   // any issuer
	PortalTTL = 10 * time.Minute // what the portal mints
	Skew      = 30 * time.Second // clock difference allowed on exp/nbf/iat
)

// ErrInvalid is the error of every refused token; the edge answers it with
// 401 and WWW-Authenticate: Bearer error="invalid_token".
var ErrInvalid = errors.New("invalid token")

// RotationOverlap is how long a rotated-out secret still validates the
// tokens it signed before the rotation (the portal's tokens live
// PortalTTL, so none is cut short).
const RotationOverlap = 10 * time.Minute

// Keys are the secrets a SIP account's tokens may be signed with: the
// current one, and the previous one until PreviousUntil (rotation) for
// tokens issued by RotatedAt only: a rotated-out secret validates the
// tokens it signed before, but cannot mint new ones.
type Keys struct {
	Current       string
	Previous      string
	PreviousUntil time.Time
	RotatedAt     time.Time
}

// AccountKeys are the keys of a SIP account's stored secrets: the previous
// one was rotated out RotationOverlap before previousUntil.
func AccountKeys(current, previous string, previousUntil time.Time) Keys {
	return Keys{Current: current, Previous: previous, PreviousUntil: previousUntil, RotatedAt: previousUntil.Add(-RotationOverlap)}
}

// KeyID names a secret in the token's kid header without revealing it:
// the first 8 bytes of its SHA-256, in hex.
func KeyID(secret string) string {
	h := sha256.Sum256([]byte("sipdesk-kid:" + secret))
	return hex.EncodeToString(h[:8])
}

// Mint returns an HS256 token for the SIP username, valid for ttl (at most
// MaxTTL), with iat, exp, a random jti and the secret's kid.
func Mint(secret, username string, ttl time.Duration, now time.Time) (string, time.Time, error) {
	if ttl <= 0 || ttl > MaxTTL {
		return "", time.Time{}, errors.New("token: ttl must be between 0 and 24h")
	}
	jti := make([]byte, 16)
	rand.Read(jti)
	exp := now.Add(ttl).Truncate(time.Second)
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   username,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
		ID:        hex.EncodeToString(jti),
	})
	t.Header["kid"] = KeyID(secret)
	s, err := t.SignedString([]byte(secret))
	return s, exp, err
}

// Verify checks a token against the account's keys at now: alg exactly
// HS256, a valid signature with the current secret (or the previous one
// within the overlap, for a token whose iat is at most the rotation; kid
// picks, else both are tried), exp required and nbf/iat honoured with
// Skew, all three JSON numbers (RFC 7519 §2 NumericDate: "exp":"…" is
// refused), a lifetime of at most MaxTTL. It returns the subject (the SIP
// username) for the caller to match against the From user.
func Verify(raw string, k Keys, now time.Time) (string, error) {
	candidates := []string{k.Current}
	if k.Previous != "" && now.Before(k.PreviousUntil) {
		candidates = append(candidates, k.Previous)
	}
	for i, secret := range candidates {
		if secret == "" {
			continue
		}
		c, err := verifyWith(raw, secret, now)
		if err == nil && i == 1 && (c.IssuedAt == nil || c.IssuedAt.After(k.RotatedAt)) {
			return "", ErrInvalid // the rotated-out secret, used after the rotation
		}
		if err == nil {
			return c.Subject, nil
		}
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) && !errors.Is(err, errWrongKey) {
			return "", ErrInvalid // a well-signed token that is expired, malformed, …: no other key helps
		}
	}
	return "", ErrInvalid
}

var errWrongKey = errors.New("kid names another key")

// claims are the registered claims, read strictly: jwt's NumericDate also
// reads a string ("exp":"1800000000"), which RFC 7519 does not allow.
type claims struct {
	jwt.RegisteredClaims
}

var errStringDate = errors.New("token: a date claim is not a number")

func (c *claims) UnmarshalJSON(b []byte) error {
	var dates struct {
		Exp, Nbf, Iat json.RawMessage
	}
	if err := json.Unmarshal(b, &dates); err != nil {
		return err
	}
	for _, d := range []json.RawMessage{dates.Exp, dates.Nbf, dates.Iat} {
		if len(d) > 0 && d[0] == '"' {
			return errStringDate
		}
	}
	type plain jwt.RegisteredClaims // without this method
	return json.Unmarshal(b, (*plain)(&c.RegisteredClaims))
}

func verifyWith(raw, secret string, now time.Time) (*claims, error) {
	var claims claims
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		if kid, ok := t.Header["kid"].(string); ok && kid != KeyID(secret) {
			return nil, errWrongKey
		}
		return []byte(secret), nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithLeeway(Skew),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	if err != nil {
		return nil, err
	}
	if claims.Subject == "" {
		return nil, ErrInvalid
	}
	if claims.IssuedAt != nil && claims.ExpiresAt.Sub(claims.IssuedAt.Time) > MaxTTL {
		return nil, ErrInvalid
	}
	if claims.IssuedAt == nil && claims.ExpiresAt.Sub(now) > MaxTTL+Skew {
		return nil, ErrInvalid
	}
	return &claims, nil
}
