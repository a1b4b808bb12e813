package sipdesk

import (
	"errors"
	"fmt"
)

// Error codes shared by every surface. The API maps them to HTTP statuses and
// the edge to SIP responses; the names are part of the public contract.
const (
	EInvalid            = "invalid"              // a field breaks a rule
	ENotFound           = "not_found"            // missing, or another customer's
	EConflict           = "conflict"             // unique name/username/IP clash
	EUnauthorized       = "unauthorized"         // no or wrong credentials
	EForbidden          = "forbidden"            // authenticated but not allowed
	EQuotaExceeded      = "quota_exceeded"       // SIP account quota reached
	ETrialLocked        = "trial_locked"         // trial accounts cannot do this
	EAccountInactive    = "account_inactive"     // SIP account is inactive
	EAccountNotReady    = "account_not_ready"    // SIP account is in process
	ECustomerSuspended  = "customer_suspended"   // the provider suspended the customer account
	ESourceNotAllowed   = "source_not_allowed"   // source outside the IP ACL
	ETechPrefixRequired = "tech_prefix_required" // shared IP without prefix
	EChannelLimit       = "channel_limit_reached"
	EChannelCap         = "channel_cap_reached"
	EInvalidNumber      = "invalid_number"
	EInvalidToken       = "invalid_token"
	EJWTNotEnabled      = "jwt_not_enabled"
	ERateLimited        = "rate_limited"
	EUnavailable        = "unavailable"
	ENotImplemented     = "not_implemented"
	EInternal           = "internal"
)

// Error is a domain error: a code from the list above, the field it concerns
// (empty when none) and a message fit to show a customer.
type Error struct {
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EInvalid error naming the field and the rule it broke.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for
// any other error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorField returns the field named by err, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// ErrorMessage returns the customer-facing message of err; internal errors get
// a generic text so nothing of the implementation leaks.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}
