package store

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sipdesk/sipdesk"
)

func notFound(what string) error {
	return &sipdesk.Error{Code: sipdesk.ENotFound, Message: what + " not found"}
}

// uniqueConstraint describes one unique index: the columns SQLite names in its
// message ("UNIQUE constraint failed: t.a, t.b"), the index name PostgreSQL
// reports, and the field and message of the conflict error.
type uniqueConstraint struct {
	sqlite  string
	pg      string
	field   string
	message string
}

var uniqueConstraints = []uniqueConstraint{
	{"customers.email", "customers_email_key", "email", "email is already used by another account"},
	{"api_tokens.hash", "api_tokens_hash_key", "token", "token already exists"},
	{"sip_accounts.customer_id, sip_accounts.name", "sip_accounts_name_key", "name", "name is already used by another SIP account"},
	{"sip_accounts.username", "sip_accounts_username_key", "username", "username is already used by another SIP account"},
	{"caller_id_numbers.customer_id, caller_id_numbers.number", "caller_id_numbers_number_key", "number", "number is already on the list"},
	{"credential_resets.token_hash", "credential_resets_token_hash_key", "token", "token already exists"},
	{"sip_account_rules.sip_account_id, sip_account_rules.rule_id", "sip_account_rules_pkey", "rule_ids", "a Caller ID rule is selected twice"},
	{"sip_account_ips.sip_account_id, sip_account_ips.position", "sip_account_ips_pkey", "allowed_ips", "an address is listed twice"},
	{"dids.number", "dids_pkey", "number", "number is already routed"},
	{"nodes.name", "nodes_pkey", "name", "node name is already used"},
	{"passkeys.credential_id", "passkeys_credential_key", "passkey", "this passkey is already registered"},
}

// mapErr turns the engines' unique and foreign key violations into sipdesk
// errors and returns any other error unchanged.
func (db *DB) mapErr(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			msg := se.Error()
			cols := msg
			if i := strings.LastIndex(msg, "constraint failed: "); i >= 0 {
				cols = msg[i+len("constraint failed: "):]
			}
			if i := strings.Index(cols, " ("); i >= 0 { // "(2067)" suffix
				cols = cols[:i]
			}
			for _, u := range uniqueConstraints {
				if cols == u.sqlite {
					return conflict(u)
				}
			}
			return &sipdesk.Error{Code: sipdesk.EConflict, Message: "already exists"}
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return missingRef()
		}
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			for _, u := range uniqueConstraints {
				if pe.ConstraintName == u.pg {
					return conflict(u)
				}
			}
			return &sipdesk.Error{Code: sipdesk.EConflict, Message: "already exists"}
		case "23503": // foreign_key_violation
			return missingRef()
		}
	}
	return err
}

func conflict(u uniqueConstraint) error {
	return &sipdesk.Error{Code: sipdesk.EConflict, Field: u.field, Message: u.message}
}

func missingRef() error {
	return &sipdesk.Error{Code: sipdesk.EInvalid, Message: "refers to a record that does not exist"}
}

// retryable reports whether a transaction failed on a transient conflict and
// may simply be run again.
func (db *DB) retryable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}
