package sipdesk

import "time"

// Audit actions: what the audit log records.
const (
	AuditUsernameRevealed  = "sip_account.username_revealed"
	AuditSIPAccountCreated = "sip_account.created"
	AuditSIPAccountUpdated = "sip_account.updated"
	AuditSIPAccountDeleted = "sip_account.deleted"
	AuditCredentialsChange = "sip_account.credentials_changed"
	AuditCredentialReset   = "sip_account.credential_reset_sent"
	AuditAuthTypeChanged   = "sip_account.auth_type_changed"
	AuditStatusChanged     = "sip_account.status_changed"
	AuditJWTChanged        = "sip_account.jwt_changed"
	AuditCallerIDChanged   = "sip_account.caller_id_changed"
	AuditSIPAccountApprove = "sip_account.approved"
	AuditChannelLimit      = "customer.channel_limit_changed"
	AuditTopUp             = "customer.topped_up"
	AuditTicketDecided     = "ticket.decided"
	AuditTokenCreated      = "api_token.created"
	AuditRuleChanged       = "caller_id_rule.changed"
	AuditPhoneVerified     = "customer.phone_verified_by_operator"
	AuditCallerIDVerified  = "caller_id_number.verified_by_operator"
	AuditDIDAssigned       = "did.assigned"
	AuditDIDUnassigned     = "did.unassigned"
	// AuditPasswordGuessing is written by an edge when too many failed
	// passwords for a SIP account start its guard (only recent sources
	// accepted); the SIP Accounts page shows it as a notice.
	AuditPasswordGuessing = "sip_account.password_guessing"
)

// AuditEntry is one line of the append-only audit log. Detail never holds a
// secret.
type AuditEntry struct {
	ID           int64
	CustomerID   int64
	SIPAccountID int64 // 0 when none
	Actor        string
	Action       string
	Detail       string
	At           time.Time
}

// Sign-in audit actions (internal/app/security.go).
const (
	AuditLogin           = "customer.login"
	AuditLoginFailed     = "customer.login_failed"
	AuditPasswordChanged = "customer.password_changed"
	AuditPasswordReset   = "customer.password_reset"
	AuditTOTPEnabled     = "customer.totp_enabled"
	AuditTOTPDisabled    = "customer.totp_disabled"
	AuditRecoveryUsed    = "customer.recovery_code_used"
	AuditSessionRevoked  = "customer.session_revoked"
	AuditPasskeyAdded    = "customer.passkey_added"
	AuditPasskeyRemoved  = "customer.passkey_removed"
	AuditPasskeyUsed     = "customer.passkey_used"
)

// Audit actions of the operators' own management (customer 0).
const (
	AuditOperatorCreated = "operator.created"
	AuditOperatorToken   = "operator.token_created"
)

// AuditFilter selects audit entries, newest first (at, then id).
type AuditFilter struct {
	CustomerID   int64    // 0: every customer
	Actions      []string // any of these actions; none: all
	Since, Until time.Time
	After        *AuditKey // keyset paging: the entries after this one
	Limit        int
}

// AuditKey is an audit entry's place in the listing order.
type AuditKey struct {
	At time.Time
	ID int64
}
