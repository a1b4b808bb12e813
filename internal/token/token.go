// Package token mints and verifies the softphone's JWTs (RFC 7519, HS256
// only) with a SIP account's secret. The portal mints them; the edge
// verifies them on SIP over WebSocket (Authorization: Bearer, RFC 8898). A
// customer's own server may mint them the same way (docs/SOFTPHONE.md).
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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

// Keys are the secrets a SIP account's tokens may be signed with: the
// current one, and the previous one until PreviousUntil (rotation).
type Keys struct {
	Current       string
	Previous      string
	PreviousUntil time.Time
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
// within the overlap; kid picks, else both are tried), exp required and
// nbf/iat honoured with Skew, a lifetime of at most MaxTTL. It returns the
// subject (the SIP username) for the caller to match against the From user.
func Verify(raw string, k Keys, now time.Time) (string, error) {
	candidates := []string{k.Current}
	if k.Previous != "" && now.Before(k.PreviousUntil) {
		candidates = append(candidates, k.Previous)
	}
	for _, secret := range candidates {
		if secret == "" {
			continue
		}
		sub, err := verifyWith(raw, secret, now)
		if err == nil {
			return sub, nil
		}
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) && !errors.Is(err, errWrongKey) {
			return "", ErrInvalid // a well-signed token that is expired, malformed, …: no other key helps
		}
	}
	return "", ErrInvalid
}

var errWrongKey = errors.New("kid names another key")

func verifyWith(raw, secret string, now time.Time) (string, error) {
	var claims jwt.RegisteredClaims
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
		return "", err
	}
	if claims.Subject == "" {
		return "", ErrInvalid
	}
	if claims.IssuedAt != nil && claims.ExpiresAt.Sub(claims.IssuedAt.Time) > MaxTTL {
		return "", ErrInvalid
	}
	if claims.IssuedAt == nil && claims.ExpiresAt.Sub(now) > MaxTTL+Skew {
		return "", ErrInvalid
	}
	return claims.Subject, nil
}
