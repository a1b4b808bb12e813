package app

import (
	"crypto/subtle"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP (RFC 6238) as authenticator apps use it: SHA-1, 6 digits, 30 s
// steps. A code is accepted for its own step and one step either side
// (clock drift); the caller records the step so a code works once.
const (
	totpPeriod = 30
	totpSkew   = 1
)

var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// NewTOTPSecret returns a new random base32 TOTP secret (160 bits) for
// an authenticator app.
func NewTOTPSecret(account string) (string, error) {
	k, err := totpKey(account, nil)
	if err != nil {
		return "", err
	}
	return k.Secret(), nil
}

// totpKey is the key an authenticator app enrols for account (operators
// and customers alike): secret, or a new random one (160 bits) when nil,
// with its otpauth:// URL.
func totpKey(account string, secret []byte) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{Issuer: "sipdesk", AccountName: account, Period: totpPeriod, Secret: secret})
}

// TOTPCode is the code of secret at t (tests, scripts).
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm})
}

// totpStep returns the time step whose code equals code, trying now's step
// and totpSkew steps either side, or -1 when none matches.
func totpStep(secret, code string, now time.Time) int64 {
	if len(code) != int(totpOpts.Digits) {
		return -1
	}
	step := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		want, err := hotp.GenerateCodeCustom(secret, uint64(step+d), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step + d
		}
	}
	return -1
}
