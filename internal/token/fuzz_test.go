package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: Verify never panics and never accepts a token that is not
// HS256-signed with one of the account's usable keys, checked here with an
// HMAC computed independently of the JWT library; an accepted token has a
// subject, an exp no further than MaxTTL away and is not expired.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	good, _, _ := Mint(secret, "alice1234", PortalTTL, now)
	prev, _, _ := Mint(older, "alice1234", PortalTTL, now)
	long, _, _ := Mint(secret, "alice1234", MaxTTL, now)
	seed := func(m jwt.SigningMethod, key any, claims jwt.MapClaims, hdr map[string]any) string {
		tok := jwt.NewWithClaims(m, claims)
		for k, v := range hdr {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	c := jwt.MapClaims{"sub": "alice1234", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	hdrNone := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	body := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice1234","exp":1800000060}`))
	for _, s := range []string{
		good, prev, long, good + "x", strings.ToUpper(good), good[:len(good)-1],
		hdrNone + "." + body + ".", hdrNone + "." + body,
		seed(jwt.SigningMethodHS384, []byte(secret), c, nil),
		seed(jwt.SigningMethodHS256, []byte("wrong-secret-wrong-secret-wrong!"), c, nil),
		seed(jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice1234"}, nil),
		seed(jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "", "exp": now.Add(time.Minute).Unix()}, nil),
		seed(jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "a", "exp": now.Add(48 * time.Hour).Unix()}, nil),
		seed(jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "a", "exp": 1e300}, nil),
		seed(jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "a", "exp": now.Add(time.Minute).Unix(), "nbf": now.Add(time.Hour).Unix()}, nil),
		seed(jwt.SigningMethodHS256, []byte(older), c, map[string]any{"kid": KeyID(secret)}),
		seed(jwt.SigningMethodHS256, []byte(secret), c, map[string]any{"kid": 5}),
		"", ".", "..", "a.b.c", "Bearer " + good,
	} {
		f.Add(s, int64(0))
		f.Add(s, int64(20*time.Minute/time.Second))
	}
	keys := AccountKeys(secret, older, now.Add(RotationOverlap))
	f.Fuzz(func(t *testing.T, raw string, offset int64) {
		at := now.Add(time.Duration(offset%(7*24*3600)) * time.Second)
		sub, err := Verify(raw, keys, at)
		if err != nil {
			if err != ErrInvalid || sub != "" {
				t.Fatalf("refusal %q, %v: want \"\", ErrInvalid", sub, err)
			}
			return
		}
		usable := []string{secret}
		if at.Before(keys.PreviousUntil) {
			usable = append(usable, older)
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts", len(parts))
		}
		sig, derr := base64.RawURLEncoding.DecodeString(parts[2])
		signed := false
		for _, k := range usable {
			m := hmac.New(sha256.New, []byte(k))
			m.Write([]byte(parts[0] + "." + parts[1]))
			signed = signed || derr == nil && hmac.Equal(m.Sum(nil), sig)
		}
		if !signed {
			t.Fatalf("accepted %q, which no usable key signed", raw)
		}
		var hdr struct {
			Alg string `json:"alg"`
		}
		var claims struct {
			Sub string  `json:"sub"`
			Exp float64 `json:"exp"`
		}
		hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
		cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
		if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "HS256" {
			t.Fatalf("accepted header %q", hb)
		}
		if json.Unmarshal(cb, &claims) != nil || claims.Sub == "" || claims.Sub != sub || claims.Exp == 0 {
			t.Fatalf("accepted claims %q as %q", cb, sub)
		}
		exp := time.Unix(int64(claims.Exp), 0)
		if at.After(exp.Add(Skew+time.Second)) || exp.Sub(at) > MaxTTL+Skew+time.Second {
			t.Fatalf("accepted exp %v at %v", exp, at)
		}
	})
}
