package token

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	secret = "Abcdefghijklmnopqrstuvwxyz012345"
	older  = "ZYXWVUTSRQPONMLKJIHGFEDCBA987654"
)

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for k, v := range hdr {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good, _, err := Mint(secret, "alice1234", PortalTTL, now)
	if err != nil {
		t.Fatal(err)
	}
	prev, _, _ := Mint(older, "alice1234", PortalTTL, now)
	// The secret rotates 30 s after now: older becomes the previous one.
	rotated := func(now time.Time) Keys { return AccountKeys(secret, older, now.Add(30*time.Second+RotationOverlap)) }
	prevLater, _, _ := Mint(older, "alice1234", PortalTTL, now.Add(2*time.Minute))
	good2, _, _ := Mint(secret, "alice1234", PortalTTL, now.Add(time.Minute))
	claims := func(exp time.Duration) jwt.MapClaims {
		return jwt.MapClaims{"sub": "alice1234", "iat": now.Unix(), "exp": now.Add(exp).Unix(), "jti": "x"}
	}
	// alg none: header {"alg":"none"} with an empty signature.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice1234","exp":1800000600}`)) + "."
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory99","exp":1800000600}`)) + "." + parts[2]
	cases := []struct {
		name  string
		tok   string
		keys  Keys
		at    time.Time
		valid bool
	}{
		{"minted by the portal", good, Keys{Current: secret}, now, true},
		{"within the skew after expiry", good, Keys{Current: secret}, now.Add(PortalTTL + 20*time.Second), true},
		{"expired", good, Keys{Current: secret}, now.Add(PortalTTL + time.Minute), false},
		{"wrong secret", good, Keys{Current: older}, now, false},
		{"tampered payload", tampered, Keys{Current: secret}, now, false},
		{"alg none", none, Keys{Current: secret}, now, false},
		{"HS512", sign(t, jwt.SigningMethodHS512, []byte(secret), claims(time.Minute), nil), Keys{Current: secret}, now, false},
		{"no exp", sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice1234"}, nil), Keys{Current: secret}, now, false},
		{"no sub", sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"exp": now.Add(time.Minute).Unix()}, nil), Keys{Current: secret}, now, false},
		{"lifetime over 24 h", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(25*time.Hour), nil), Keys{Current: secret}, now, false},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice1234", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(time.Minute).Unix()}, nil), Keys{Current: secret}, now, false},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice1234", "iat": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()}, nil), Keys{Current: secret}, now, false},
		{"a customer's own token without kid", sign(t, jwt.SigningMethodHS256, []byte(secret), claims(time.Hour), nil), Keys{Current: secret}, now, true},
		{"previous secret within the overlap", prev, rotated(now), now.Add(time.Minute), true},
		{"previous secret after the overlap", sign(t, jwt.SigningMethodHS256, []byte(older), claims(time.Hour), nil), rotated(now), now.Add(30*time.Second + RotationOverlap + time.Second), false},
		{"previous secret without kid within the overlap", sign(t, jwt.SigningMethodHS256, []byte(older), claims(time.Hour), nil), rotated(now), now.Add(time.Minute), true},
		// A rotated-out secret validates what it signed before the
		// rotation, and nothing it signs after.
		{"previous secret, minted after the rotation", prevLater, rotated(now), now.Add(3 * time.Minute), false},
		{"previous secret, minted after the rotation, without kid", sign(t, jwt.SigningMethodHS256, []byte(older), jwt.MapClaims{"sub": "alice1234", "iat": now.Add(2 * time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()}, nil), rotated(now), now.Add(3 * time.Minute), false},
		{"previous secret, no iat", sign(t, jwt.SigningMethodHS256, []byte(older), jwt.MapClaims{"sub": "alice1234", "exp": now.Add(time.Hour).Unix()}, nil), rotated(now), now.Add(time.Minute), false},
		{"current secret, minted after the rotation", good2, rotated(now), now.Add(2 * time.Minute), true},
		// RFC 7519 NumericDate: a number, never a string.
		{"exp as a string", sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice1234", "iat": now.Unix(), "exp": fmt.Sprint(now.Add(time.Minute).Unix())}, nil), Keys{Current: secret}, now, false},
		{"nbf as a string", sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice1234", "exp": now.Add(time.Minute).Unix(), "nbf": fmt.Sprint(now.Unix())}, nil), Keys{Current: secret}, now, false},
		{"iat as a string", sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice1234", "exp": now.Add(time.Minute).Unix(), "iat": fmt.Sprint(now.Unix())}, nil), Keys{Current: secret}, now, false},
		{"exp with a fraction", sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice1234", "exp": float64(now.Add(time.Minute).Unix()) + 0.5}, nil), Keys{Current: secret}, now, true},
		{"garbage", "not.a.token", Keys{Current: secret}, now, false},
		{"empty", "", Keys{Current: secret}, now, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub, err := Verify(c.tok, c.keys, c.at)
			if c.valid && (err != nil || sub != "alice1234") {
				t.Fatalf("refused: %v (sub %q)", err, sub)
			}
			if !c.valid && err == nil {
				t.Fatalf("accepted (sub %q)", sub)
			}
		})
	}
}

func TestMintBounds(t *testing.T) {
	if _, _, err := Mint(secret, "u", 25*time.Hour, time.Now()); err == nil {
		t.Fatal("a 25 h token was minted")
	}
	tok, exp, err := Mint(secret, "alice1234", PortalTTL, time.Now())
	if err != nil || time.Until(exp) > PortalTTL || strings.Contains(tok, secret) {
		t.Fatal("mint", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	now := time.Now()
	tok, _, _ := Mint(secret, "alice1234", PortalTTL, now)
	k := Keys{Current: secret}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(tok, k, now); err != nil {
			b.Fatal(err)
		}
	}
}
