// Package sipdesk holds the domain of the SIP account platform: customers,
// SIP accounts, Caller ID rules, channel limits, tickets and their rules.
// It does no I/O; the store, the API, the portal, the CLI and the SIP edge
// all call it so that each rule lives in exactly one place.
package sipdesk
