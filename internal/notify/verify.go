package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// The receiver's side of the webhook, quoted in docs/OPERATIONS.md
// ("Verification messages"); TestRecipeInDocs keeps the two the same.

// recipe:start

// VerifyWebhook checks a sipdesk webhook request: timestamp and signature
// are the X-Sipdesk-Timestamp and X-Sipdesk-Signature headers, body the raw
// request body. A request older than maxAge (5 minutes is a good value) is
// refused, so a captured request cannot be replayed later; within that time
// drop a message_id you have already seen (a retry carries the same one).
func VerifyWebhook(secret []byte, timestamp, signature string, body []byte, now time.Time, maxAge time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if age := now.Sub(time.Unix(ts, 0)); age > maxAge || age < -maxAge {
		return errors.New("timestamp out of range: replayed or clock skew")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return errors.New("bad signature")
	}
	return nil
}

// recipe:end
