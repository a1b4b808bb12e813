package mail

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/store"
)

// inbox is an in-process SMTP server that keeps what it receives.
type inbox struct {
	mu   sync.Mutex
	msgs []string
	rcpt []string
}

func (b *inbox) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &session{b: b}, nil }

type session struct{ b *inbox }

func (s *session) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.rcpt = append(s.b.rcpt, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	d, err := io.ReadAll(r)
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.msgs = append(s.b.msgs, string(d))
	return err
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func TestDeliverOverSMTP(t *testing.T) {
	box := &inbox{}
	srv := gosmtp.NewServer(box)
	srv.Domain = "127.0.0.1"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ctx := context.Background()
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir(), SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Update(ctx, func(tx sipdesk.Tx) error {
		if err := tx.InsertMail(&sipdesk.Mail{To: "a@example.com", Subject: "Edit the credentials", Text: "link: http://x/?token=abc", HTML: `<a href="http://x/?token=abc">Edit Credentials</a>`}); err != nil {
			return err
		}
		return tx.InsertMail(&sipdesk.Mail{To: "sms:+15551230001", Subject: "code", Text: "123456"})
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSMTP("smtp://" + ln.Addr().String() + "?from=noreply@provider.test")
	if err != nil {
		t.Fatal(err)
	}
	deliverOnce(ctx, st, s, slog.New(slog.DiscardHandler))

	box.mu.Lock()
	defer box.mu.Unlock()
	if len(box.msgs) != 1 || box.rcpt[0] != "a@example.com" {
		t.Fatalf("delivered %d messages to %v, want the one email (the SMS stays out of SMTP)", len(box.msgs), box.rcpt)
	}
	m := box.msgs[0]
	for _, want := range []string{"From: noreply@provider.test", "Subject: Edit the credentials", "multipart/alternative", "Edit Credentials"} {
		if !strings.Contains(m, want) {
			t.Errorf("message lacks %q:\n%s", want, m)
		}
	}
	var unsent []*sipdesk.Mail
	st.View(ctx, func(tx sipdesk.Tx) (err error) { unsent, err = tx.UnsentMails(0); return err })
	if len(unsent) != 0 {
		t.Fatalf("%d mails left unsent", len(unsent))
	}
}

func TestFailedSendIsRetried(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir(), SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Update(ctx, func(tx sipdesk.Tx) error {
		return tx.InsertMail(&sipdesk.Mail{To: "a@example.com", Subject: "s", Text: "t"})
	})
	// Nothing listens on this port: the send fails and the mail stays queued.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	s, _ := NewSMTP("smtp://" + addr)
	deliverOnce(ctx, st, s, slog.New(slog.DiscardHandler))
	var unsent []*sipdesk.Mail
	st.View(ctx, func(tx sipdesk.Tx) (err error) { unsent, err = tx.UnsentMails(0); return err })
	if len(unsent) != 1 {
		t.Fatalf("a failed mail must stay queued, %d queued", len(unsent))
	}
}

func TestNewSMTPRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "http://x", "smtp://", "mail.example.com:25"} {
		if _, err := NewSMTP(u); err == nil {
			t.Errorf("NewSMTP(%q) accepted", u)
		}
	}
}
