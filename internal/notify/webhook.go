package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Webhook headers: the signature covers timestamp + "." + body.
const (
	HeaderTimestamp = "X-Sipdesk-Timestamp"
	HeaderSignature = "X-Sipdesk-Signature"
)

// Webhook posts messages as signed JSON to any gateway: the body is
// {"to","text","message_id","purpose"}, X-Sipdesk-Timestamp the Unix time
// of the try and X-Sipdesk-Signature "sha256=" + hex HMAC-SHA256 over
// timestamp + "." + body with the shared secret. Every try is signed anew;
// the message_id stays the same, so the receiver drops repeats by it.
type Webhook struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// NewWebhook checks the URL and the secret (at least 16 characters).
func NewWebhook(raw, secret string) (*Webhook, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("--sms-webhook must be an http:// or https:// URL")
	}
	if len(secret) < 16 {
		return nil, errors.New("--sms-webhook needs --sms-webhook-secret (or SIPDESK_SMS_WEBHOOK_SECRET) of at least 16 characters")
	}
	return &Webhook{url: raw, secret: []byte(secret), client: &http.Client{}, now: time.Now}, nil
}

// Name is "webhook".
func (w *Webhook) Name() string { return "webhook" }

type webhookBody struct {
	To        string `json:"to"`
	Text      string `json:"text"`
	MessageID string `json:"message_id"`
	Purpose   string `json:"purpose"`
}

// Send posts m once. 2xx is success; 408, 425, 429 and 5xx (and no answer
// in time) are retried; other answers are refusals.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(webhookBody{To: m.To, Text: m.Text, MessageID: m.ID, Purpose: m.Purpose})
	if err != nil {
		return Permanent(err)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(errors.New("bad webhook request"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", plainError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // drain for reuse; the answer is the status
	switch c := resp.StatusCode; {
	case c/100 == 2:
		return nil
	case c == 408 || c == 425 || c == 429 || c/100 == 5:
		return fmt.Errorf("webhook: %d", c)
	default:
		return Permanent(fmt.Errorf("webhook refused the message: %d", c))
	}
}

// Sign is the X-Sipdesk-Signature value of a body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
