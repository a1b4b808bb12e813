package sipdesk

import "time"

// VerificationMessage is a verification code on its way to a phone: queued
// by the service in the transaction that issues the code, then delivered by
// internal/notify through a channel (Kannel, a webhook, a voice call), with
// retries. The code is kept (encrypted at rest) only while a retry may need
// it: it is dropped once the gateway took the message or it is given up.
type VerificationMessage struct {
	ID         int64
	PublicID   string // the message id gateways see, the same on every retry
	CustomerID int64
	NumberID   int64  // the Caller ID number (the signup phone is one too)
	Channel    string // kannel, webhook, voice, none
	Purpose    string // PurposeSignup or PurposeCallerID
	To         string // E.164
	Code       string // "" once sent or given up
	State      MessageState
	Attempts   int
	NextAt     time.Time // queued: next try (a claimed message: the claim's end)
	LastError  string    // why the last try failed ("" after a success)
	ReportHash string    // hash of the delivery report token of the last try
	ExpiresAt  time.Time // the code's expiry: no try after it
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// MessageState is where a verification message is.
type MessageState string

// Message states. Queued messages are tried until sent or given up; a
// delivery report moves a sent message to delivered or undelivered.
const (
	MessageQueued      MessageState = "queued"
	MessageSent        MessageState = "sent"        // the gateway took it
	MessageDelivered   MessageState = "delivered"   // the phone got it (delivery report)
	MessageUndelivered MessageState = "undelivered" // the gateway could not deliver it (delivery report)
	MessageFailed      MessageState = "failed"      // given up: retries exhausted or a permanent error
	MessageReplaced    MessageState = "replaced"    // a newer code for the same number superseded it
)

// Verification message purposes.
const (
	PurposeSignup   = "signup"
	PurposeCallerID = "caller_id"
)

// Failing reports whether the customer should be told the code did not
// reach them: a try failed (a retry may still be pending) or it was given up.
func (m *VerificationMessage) Failing() bool {
	switch m.State {
	case MessageFailed, MessageUndelivered:
		return true
	case MessageQueued:
		return m.LastError != ""
	}
	return false
}
