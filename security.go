package sipdesk

import "time"

// PasswordReset is a pending "forgot password" link: single use, 30
// minutes, only its hash is stored (like CredentialReset).
type PasswordReset struct {
	ID         int64
	CustomerID int64
	TokenHash  string
	ExpiresAt  time.Time
	UsedAt     time.Time
	CreatedAt  time.Time
}

// TOTP is a customer's authenticator app (RFC 6238). Secret is the base32
// shared secret (encrypted at rest); it is pending until EnabledAt is set
// (the customer entered a first code). LastStep is the last time step a
// code was accepted for, so a code is never accepted twice.
type TOTP struct {
	CustomerID int64
	Secret     string
	EnabledAt  time.Time
	LastStep   int64
}

// Enabled reports whether logins ask for the code.
func (t *TOTP) Enabled() bool { return t != nil && !t.EnabledAt.IsZero() }

// SecurityTx is the part of a Tx for sign-in security: sessions of a
// customer, forgotten-password links, the authenticator and recovery codes
// (internal/store/security.go).
type SecurityTx interface {
	Sessions(customerID int64, now time.Time) ([]*Session, error) // live ones, newest first
	DeleteSessionByID(customerID, id int64) error                 // ENotFound when none
	// DeleteCustomerSessions ends every session of the customer but the
	// one with keepHash ("" ends all) and returns how many ended.
	DeleteCustomerSessions(customerID int64, keepHash string) (int, error)

	InsertPasswordReset(r *PasswordReset) error
	// UsePasswordReset marks an unused link used (one claimer wins, else
	// EConflict) and returns it; ENotFound for an unknown hash.
	UsePasswordReset(hash string, at time.Time) (*PasswordReset, error)
	PasswordResetByHash(hash string) (*PasswordReset, error)

	TOTP(customerID int64) (*TOTP, error) // ENotFound when none
	SaveTOTP(t *TOTP) error               // insert or replace
	DeleteTOTP(customerID int64) error    // not the recovery codes (a passkey may keep them)
	// UseTOTPStep records step as used unless it (or a later one) was:
	// EConflict then, so one code logs in once.
	UseTOTPStep(customerID, step int64) error
	// ReplaceRecoveryCodes stores the hashes of a new set, dropping the old.
	ReplaceRecoveryCodes(customerID int64, hashes []string) error
	// UseRecoveryCode marks an unused code used; ENotFound when none.
	UseRecoveryCode(customerID int64, hash string, at time.Time) error
	RecoveryCodesLeft(customerID int64) (int, error)
}

// Passkey is a customer's WebAuthn credential: a second factor after the
// password and, being discoverable, a way to log in without it. Only the
// public key is stored. SignCount is the authenticator's counter at the
// last use (a lower one later means a cloned key: refused); Flags are the
// authenticator data flags of registration (backup eligibility must not
// change).
type Passkey struct {
	ID           int64
	CustomerID   int64
	CredentialID []byte
	PublicKey    []byte
	SignCount    uint32
	Transports   []string
	Flags        uint8
	AAGUID       []byte
	Name         string
	CreatedAt    time.Time
	LastUsedAt   time.Time
}

// PasskeyTx is the part of a Tx for passkeys (internal/store/passkey.go).
type PasskeyTx interface {
	// InsertPasskey sets ID; a credential id already stored is EConflict.
	InsertPasskey(p *Passkey) error
	Passkeys(customerID int64) ([]*Passkey, error) // oldest first
	// PasskeyByCredential finds a credential by its id (any customer);
	// ENotFound when none.
	PasskeyByCredential(credentialID []byte) (*Passkey, error)
	// UsePasskey records a login: the new counter and time, only if the
	// counter moved forward (or both are 0, authenticators without one);
	// EConflict otherwise, so one assertion never counts twice.
	UsePasskey(id int64, signCount uint32, at time.Time) error
	DeletePasskey(customerID, id int64) error // ENotFound when none
}
