package sipdesk

import (
	"errors"
	"testing"
	"time"
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

// TestUsableAtEdge: an active account whose auth settings are being applied
// stays usable at the edges; new, held, or inactive ones in process do not.
func TestUsableAtEdge(t *testing.T) {
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		a    SIPAccount
		want string
	}{
		{"active", SIPAccount{Status: StatusActive}, ""},
		{"auth change in process", SIPAccount{Status: StatusInProcess, PrevStatus: StatusActive, CreatedAt: created, UpdatedAt: created.Add(time.Hour)}, ""},
		{"new account in process", SIPAccount{Status: StatusInProcess, PrevStatus: StatusActive, CreatedAt: created, UpdatedAt: created}, EAccountNotReady},
		{"held for review", SIPAccount{Status: StatusInProcess, PrevStatus: StatusActive, HeldForReview: true, CreatedAt: created, UpdatedAt: created.Add(time.Hour)}, EAccountNotReady},
		{"inactive in process", SIPAccount{Status: StatusInProcess, PrevStatus: StatusInactive, CreatedAt: created, UpdatedAt: created.Add(time.Hour)}, EAccountNotReady},
		{"inactive", SIPAccount{Status: StatusInactive}, EAccountInactive},
	} {
		if got := ErrorCode(c.a.UsableAtEdge()); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
