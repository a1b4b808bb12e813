package config

import "testing"

// The SMS secrets come from the environment (so they stay out of ps), and
// two gateways at once are refused.
func TestSMSFlags(t *testing.T) {
	t.Setenv("SIPDESK_SMS_KANNEL_PASSWORD", "from-env")
	t.Setenv("SIPDESK_SMS_WEBHOOK_SECRET", "")
	c, err := ParseServe([]string{"--sms-kannel", "http://127.0.0.1:13013/cgi-bin/sendsms", "--sms-kannel-user", "sipdesk", "--sms-from", "sipdesk"})
	if err != nil {
		t.Fatal(err)
	}
	if c.SMS.KannelPassword != "from-env" || c.SMS.KannelUser != "sipdesk" || c.SMS.From != "sipdesk" {
		t.Fatalf("SMS config: %+v", c.SMS)
	}
	for name, args := range map[string][]string{
		"kannel and webhook":           {"--sms-kannel", "http://k/", "--sms-webhook", "http://w/"},
		"voice, no carrier":            {"--voice-calls"},
		"voice on an edge, no carrier": {"--role", "edge", "--voice-calls"},
	} {
		if _, err := ParseServe(args); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// --voice-calls on a --role all node with a carrier is accepted; so is it on
// a portal (which only offers the call: an edge places it) without one.
func TestVoiceFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--role", "portal", "--voice-calls", "--database", "postgres://db/sipdesk"},
		{"--role", "edge", "--voice-calls", "--carrier", "sip:203.0.113.5:5060", "--database", "postgres://db/sipdesk"},
	} {
		if _, err := ParseServe(args); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
	c, err := ParseServe([]string{"--voice-calls", "--voice-from", "+15550100", "--carrier", "sip:203.0.113.5:5060"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.SMS.Voice || c.SMS.VoiceFrom != "+15550100" {
		t.Fatalf("voice config: %+v", c.SMS)
	}
}
