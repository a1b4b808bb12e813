package sipdesk

import (
	"errors"
	"testing"
)

func TestSIPAccountUsable(t *testing.T) {
	for _, tt := range []struct {
		status Status
		code   string
	}{
		{StatusActive, ""},
		{StatusInProcess, EAccountNotReady},
		{StatusInactive, EAccountInactive},
		{"", EAccountInactive},
		{"bogus", EAccountInactive},
	} {
		t.Run(string(tt.status), func(t *testing.T) {
			err := (&SIPAccount{Status: tt.status}).Usable()
			if got := ErrorCode(err); got != tt.code {
				t.Fatalf("Usable() code %q, want %q", got, tt.code)
			}
			var e *Error
			if err != nil && (!errors.As(err, &e) || e.Message == "") {
				t.Fatalf("Usable() = %#v, want an *Error with a message", err)
			}
		})
	}
	// An in_process account is not usable whatever status it returns to.
	a := &SIPAccount{Status: StatusActive}
	a.MarkInProcess(3)
	if ErrorCode(a.Usable()) != EAccountNotReady {
		t.Fatalf("in process: %v", a.Usable())
	}
	a.Applied(3)
	if a.Usable() != nil {
		t.Fatalf("applied: %v", a.Usable())
	}
}
