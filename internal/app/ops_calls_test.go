package app

import "testing"

func TestURIUser(t *testing.T) {
	for in, want := range map[string]string{
		"<sip:+4930123456@sipdesk.local;user=phone>": "+4930123456",
		"sip:+15551230001@sipdesk.local":             "+15551230001",
		"SIPS:441234@h":                              "441234",
		"tel:+15551230001":                           "+15551230001",
		"+15551230001":                               "+15551230001",
	} {
		if got := uriUser(in); got != want {
			t.Errorf("uriUser(%q) = %q, want %q", in, got, want)
		}
	}
}
