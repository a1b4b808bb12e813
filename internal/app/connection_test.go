package app_test

import (
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// TestConnection: the endpoints as configured, per account the masked
// username or the addresses and prefix, snippets with the real host, port
// and domain and placeholders for the secrets; another customer's account
// is not found.
func TestConnection(t *testing.T) {
	f := newFixture(t, app.Options{Realm: "voice.example.com", SIP: app.Endpoints{Host: "sip.example.com", UDPPort: 5070, TLSPort: 5071, WSSURL: "wss://sip.example.com:8443"}})
	c, first, _ := f.svc.CreateVerifiedCustomer(f.ctx, "cn@example.com", secPass, "+15551230041")
	other, _, _ := f.svc.CreateVerifiedCustomer(f.ctx, "cn2@example.com", secPass, "+15551230042")
	f.svc.TopUp(f.ctx, c.ID, 5000)
	ip, err := f.svc.CreateSIPAccount(f.ctx, c.ID, app.SIPAccountInput{Name: "PBX", AuthType: sipdesk.AuthIP, AllowedIPs: []string{"8.8.4.4"}, TechPrefix: "1234"}, app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := f.svc.Connection(f.ctx, c.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Domain != "voice.example.com" || conn.Host != "sip.example.com" || conn.RegisterInterval != 300 || len(conn.Accounts) != 2 {
		t.Fatalf("connection: %+v", conn)
	}
	var names []string
	for _, tr := range conn.Transports {
		names = append(names, tr.Name+" "+tr.URI)
	}
	if got := strings.Join(names, ", "); got != "udp sip:sip.example.com:5070, tcp sip:sip.example.com:5070;transport=tcp, tls sips:sip.example.com:5071, wss wss://sip.example.com:8443" {
		t.Fatalf("transports: %s", got)
	}
	pw, err := f.svc.Connection(f.ctx, c.ID, first.Account.ID)
	if err != nil {
		t.Fatal(err)
	}
	a := pw.Accounts[0]
	if a.Username != sipdesk.MaskUsername(first.Account.Username) || a.Username == first.Account.Username {
		t.Fatalf("username not masked: %q", a.Username)
	}
	for _, s := range a.Snippets {
		if strings.Contains(s.Text, first.Account.Username) || strings.Contains(s.Text, first.Password) {
			t.Fatalf("%s snippet holds a secret:\n%s", s.ID, s.Text)
		}
		for _, want := range []string{"sip.example.com", "5070", "voice.example.com", app.PlaceholderPassword} {
			if !strings.Contains(s.Text, want) {
				t.Errorf("%s snippet lacks %q:\n%s", s.ID, want, s.Text)
			}
		}
	}
	ipc, err := f.svc.Connection(f.ctx, c.ID, ip.Account.ID)
	if err != nil {
		t.Fatal(err)
	}
	b := ipc.Accounts[0]
	if b.TechPrefix != "1234" || len(b.IPs) != 1 || b.IPs[0] != "8.8.4.4/32" || b.DialFormat != "sip:1234<number in E.164 without +>@sip.example.com" {
		t.Fatalf("IP account: %+v", b)
	}
	if !strings.Contains(b.Snippets[0].Text, "Dial(PJSIP/1234${EXTEN}@sipdesk)") {
		t.Fatalf("asterisk IP snippet:\n%s", b.Snippets[0].Text)
	}
	if _, err := f.svc.Connection(f.ctx, other.ID, ip.Account.ID); sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		t.Fatalf("another customer's account: %v", err)
	}
}
