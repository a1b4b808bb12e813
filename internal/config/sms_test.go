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
		"kannel and webhook": {"--sms-kannel", "http://k/", "--sms-webhook", "http://w/"},
	} {
		if _, err := ParseServe(args); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
