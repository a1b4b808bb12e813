package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Kannel sends SMS through Kannel's smsbox HTTP interface (sendsms), asking
// for delivery reports on the message's report URL.
type Kannel struct {
	endpoint       string // http://host:13013/cgi-bin/sendsms
	user, password string
	from           string
	client         *http.Client
	reportMask     string
}

// NewKannel checks the sendsms URL (the path defaults to /cgi-bin/sendsms).
// The password goes into the request's query, as sendsms wants it, and into
// nothing else: errors never carry the URL.
func NewKannel(raw, user, password, from string) (*Kannel, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return nil, errors.New("--sms-kannel must look like http://host:13013/cgi-bin/sendsms (credentials in --sms-kannel-user and --sms-kannel-password)")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/cgi-bin/sendsms"
	}
	if user == "" || password == "" {
		return nil, errors.New("--sms-kannel needs --sms-kannel-user and --sms-kannel-password (or SIPDESK_SMS_KANNEL_PASSWORD)")
	}
	// 1 delivered, 2 undelivered, 16 rejected by the SMSC.
	return &Kannel{endpoint: u.String(), user: user, password: password, from: from, client: &http.Client{}, reportMask: "19"}, nil
}

// Name is "kannel".
func (k *Kannel) Name() string { return "kannel" }

// Send asks Kannel to send m. Kannel answers 202 "0: Accepted for delivery"
// (or "3: Queued for later delivery" while its SMSC is down: it keeps the
// message); 4xx is a refusal that a retry cannot fix.
func (k *Kannel) Send(ctx context.Context, m Message) error {
	q := url.Values{
		"username": {k.user}, "password": {k.password}, "to": {m.To}, "text": {m.Text}, "charset": {"UTF-8"},
	}
	if k.from != "" {
		q.Set("from", k.from)
	}
	if m.ReportURL != "" {
		q.Set("dlr-mask", k.reportMask)
		q.Set("dlr-url", m.ReportURL+"?type=%d") // Kannel puts the report type in %d
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return Permanent(errors.New("bad Kannel request"))
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("kannel: %w", plainError(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	answer := strings.TrimSpace(string(b))
	switch {
	case resp.StatusCode/100 == 2 && (strings.HasPrefix(answer, "0:") || strings.HasPrefix(answer, "3:")):
		return nil
	case resp.StatusCode/100 == 4:
		return Permanent(fmt.Errorf("kannel refused the message: %d %s", resp.StatusCode, truncate(answer, 120)))
	default:
		return fmt.Errorf("kannel: %d %s", resp.StatusCode, truncate(answer, 120))
	}
}
