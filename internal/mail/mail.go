// Package mail delivers the outbox over SMTP. Without SMTP the outbox is the
// dev mailbox (/dev/mail) and nothing is delivered.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
)

// SMTP sends mail through one SMTP server, given as
// smtp://user:pass@host:port (STARTTLS when offered) or smtps://… (TLS).
type SMTP struct {
	addr, host string
	implicit   bool
	auth       smtp.Auth
	from       string
}

// NewSMTP parses an SMTP URL. The sender address is the from query value,
// else sipdesk@<host>.
func NewSMTP(raw string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("--smtp must look like smtp://user:pass@host:port")
	}
	s := &SMTP{host: u.Hostname(), implicit: u.Scheme == "smtps"}
	port := u.Port()
	if port == "" {
		port = map[bool]string{true: "465", false: "587"}[s.implicit]
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		pass, _ := u.User.Password()
		s.auth = smtp.PlainAuth("", u.User.Username(), pass, s.host)
	}
	s.from = u.Query().Get("from")
	if s.from == "" {
		s.from = "sipdesk@" + s.host
	}
	return s, nil
}

// Send delivers one message as multipart text + HTML.
func (s *SMTP) Send(ctx context.Context, m *sipdesk.Mail) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	var err error
	if s.implicit {
		conn, err = tls.DialWithDialer(&d, "tcp", s.addr, &tls.Config{ServerName: s.host})
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok && !s.implicit {
		if err := c.StartTLS(&tls.Config{ServerName: s.host}); err != nil {
			return err
		}
	}
	if s.auth != nil {
		if err := c.Auth(s.auth); err != nil {
			return err
		}
	}
	if err := c.Mail(s.from); err != nil {
		return err
	}
	if err := c.Rcpt(m.To); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(compose(s.from, m)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// compose builds the RFC 5322 message.
func compose(from string, m *sipdesk.Mail) []byte {
	var b strings.Builder
	boundary := randomHex(12)
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", from)
	hdr("To", m.To)
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", m.CreatedAt.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", fmt.Sprintf("<%d.%s@sipdesk>", m.ID, randomHex(6)))
	hdr("MIME-Version", "1.0")
	part := func(ctype, body string) {
		b.WriteString("--" + boundary + "\r\n")
		b.WriteString("Content-Type: " + ctype + "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		q := quotedprintable.NewWriter(&b)
		_, _ = q.Write([]byte(body)) // into a bytes.Buffer: cannot fail
		q.Close()
		b.WriteString("\r\n")
	}
	if m.HTML == "" {
		hdr("Content-Type", "text/plain; charset=utf-8")
		hdr("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		q := quotedprintable.NewWriter(&b)
		_, _ = q.Write([]byte(m.Text)) // into a bytes.Buffer: cannot fail
		q.Close()
		return []byte(b.String())
	}
	hdr("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	part("text/plain", m.Text)
	part("text/html", m.HTML)
	b.WriteString("--" + boundary + "--\r\n")
	return []byte(b.String())
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Sender delivers one message.
type Sender interface {
	Send(ctx context.Context, m *sipdesk.Mail) error
}

// Deliver sends the outbox through s every interval until ctx is done.
// A message is claimed (marked sent) before it is sent so two nodes never
// send it twice; a failed send is released for the next round.
func Deliver(ctx context.Context, st sipdesk.Store, s Sender, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		deliverOnce(ctx, st, s, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func deliverOnce(ctx context.Context, st sipdesk.Store, s Sender, log *slog.Logger) {
	var ms []*sipdesk.Mail
	if err := st.View(ctx, func(tx sipdesk.Tx) (err error) { ms, err = tx.UnsentMails(20); return err }); err != nil {
		log.Warn("outbox unreadable", "err", err)
		return
	}
	for _, m := range ms {
		err := st.Update(ctx, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m.ID, time.Now()) })
		if err != nil {
			continue // another node claimed it
		}
		if strings.HasPrefix(m.To, "sms:") {
			redact(ctx, st, m.ID, log) // no SMS gateway: the code went to the log when it was made
			continue
		}
		if err := s.Send(ctx, m); err != nil {
			log.Warn("mail not sent, will retry", "mail", m.ID, "err", err)
			if err := st.Update(ctx, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m.ID, time.Time{}) }); err != nil {
				log.Warn("mail retry not recorded", "mail", m.ID, "err", err)
			}
			continue
		}
		log.Info("mail sent", "mail", m.ID, "subject", m.Subject)
		redact(ctx, st, m.ID, log)
	}
}

// redact drops a delivered mail's bodies: a reset link or a code must not
// stay readable in the outbox.
func redact(ctx context.Context, st sipdesk.Store, id int64, log *slog.Logger) {
	if err := st.Update(ctx, func(tx sipdesk.Tx) error { return tx.RedactMail(id) }); err != nil {
		log.Warn("delivered mail not redacted", "mail", id, "err", err)
	}
}
