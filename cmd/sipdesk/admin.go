package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/config"
)

const adminUsage = `Usage: sipdesk admin [--data DIR | --database DSN] [--sip-domain REALM] COMMAND

Commands:
  customer create --email E --password P --phone +E164   verified trial customer + first SIP account (JSON)
  customer list
  customer verify-phone --customer ID                    verify the signup phone by hand (support; audited)
  caller-id verify --customer ID --number +E164          verify a Caller ID number by hand (support; audited)
  token create --customer ID [--name NAME]               new API token (printed once)
  topup --customer ID --amount N                         record a top-up: trial → paid
  channel-limit --customer ID --set N                    set the account-wide channel limit
  ticket list [--status open|approved|declined]
  ticket approve ID
  ticket decline ID --message TEXT
  sip-account approve ID                                 in_process → active (reviewed IP accounts)
  did assign --number +E164 --sip-account ID             route a number to a SIP account
  operator create --email E --password P --role admin|support|readonly
                                                         staff for the operator console (JSON with the TOTP
                                                         secret for an authenticator app, shown once)
  operator token create --operator ID [--name NAME]      operator API token, sdo_… (printed once)
  node list                                              every node: role, addresses, version, heartbeat,
                                                         live calls, bindings, state (alive|draining|dead)

It works on the same data folder or database while serve runs; the running
edge picks changes up within 2 seconds.
`

func admin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, rest, err := config.ParseAdmin(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, adminUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sipdesk admin:", err)
		return 2
	}
	if len(rest) == 0 {
		fmt.Fprint(stderr, adminUsage)
		return 2
	}
	log := newLogger(io.Discard, "error")
	db, _, err := openStore(ctx, cfg.Store, log)
	if err != nil {
		fmt.Fprintln(stderr, "sipdesk admin:", err)
		return 1
	}
	defer db.Close()
	svc := app.New(db, app.Options{Realm: cfg.SIPDomain, PaidChannelLimit: cfg.PaidChannelLimit,
		AllowPrivateIPs: cfg.AllowPrivateIPs, BaseURL: cfg.BaseURL, Log: log})
	err = runAdmin(ctx, svc, rest, stdout)
	var usageErr *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "sipdesk admin: %v\n\n%s", err, adminUsage)
		return 2
	default:
		fmt.Fprintln(stderr, "sipdesk admin:", sipdesk.ErrorMessage(err))
		if sipdesk.ErrorCode(err) == sipdesk.EInternal {
			fmt.Fprintln(stderr, "cause:", err)
		}
		return 1
	}
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

func runAdmin(ctx context.Context, svc *app.Service, args []string, out io.Writer) error {
	name := args[0]
	if len(args) > 1 && (name == "customer" || name == "token" || name == "ticket" || name == "sip-account" || name == "did" || name == "caller-id" || name == "node" || name == "operator") {
		name += " " + args[1]
		args = args[2:]
		if name == "operator token" && len(args) > 0 && args[0] == "create" {
			name, args = "operator token create", args[1:]
		}
	} else {
		args = args[1:]
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	str := func(n string) *string { return fs.String(n, "", "") }
	id := func(n string) *int64 { return fs.Int64(n, 0, "") }
	parse := func(required ...string) error {
		if err := fs.Parse(args); err != nil {
			return usagef("%s: %v", name, err)
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, r := range required {
			if !set[r] {
				return usagef("%s: --%s is required", name, r)
			}
		}
		return nil
	}
	// positional ID (ticket approve 3, sip-account approve 7), flags after it
	positionalID := func() (int64, error) {
		if len(args) == 0 {
			return 0, usagef("%s: an ID is required", name)
		}
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || n <= 0 {
			return 0, usagef("%s: %q is not an ID", name, args[0])
		}
		args = args[1:]
		return n, nil
	}
	switch name {
	case "customer create":
		email, pass, phone := str("email"), str("password"), str("phone")
		if err := parse("email", "password", "phone"); err != nil {
			return err
		}
		c, first, err := svc.CreateVerifiedCustomer(ctx, *email, *pass, *phone)
		if err != nil {
			return err
		}
		return printJSON(out, map[string]any{
			"customer_id": c.ID,
			"sip_account": map[string]any{"id": first.Account.ID, "username": first.Account.Username, "password": first.Password},
		})
	case "customer list":
		if err := parse(); err != nil {
			return err
		}
		cs, err := svc.Customers(ctx)
		if err != nil {
			return err
		}
		items := []map[string]any{}
		for _, c := range cs {
			items = append(items, map[string]any{"id": c.ID, "email": c.Email, "billing_state": c.BillingState,
				"channel_limit": c.ChannelLimit, "sip_account_quota": c.SIPAccountQuota, "verified_phone": c.VerifiedPhone})
		}
		return printJSON(out, items)
	case "customer verify-phone":
		cid := id("customer")
		if err := parse("customer"); err != nil {
			return err
		}
		first, err := svc.OperatorVerifyPhone(ctx, *cid)
		if err != nil {
			return err
		}
		return printJSON(out, map[string]any{
			"customer_id": *cid, "billing_state": sipdesk.BillingTrial,
			"sip_account": map[string]any{"id": first.Account.ID, "username": first.Account.Username, "password": first.Password},
		})
	case "caller-id verify":
		cid, number := id("customer"), str("number")
		if err := parse("customer", "number"); err != nil {
			return err
		}
		n, err := svc.OperatorVerifyCallerID(ctx, *cid, *number)
		if err != nil {
			return err
		}
		return printJSON(out, map[string]any{"customer_id": n.CustomerID, "id": n.ID, "number": n.Number, "verified": n.Verified})
	case "token create":
		cid, tname := id("customer"), str("name")
		if err := parse("customer"); err != nil {
			return err
		}
		tok, err := svc.CreateAPIToken(ctx, *cid, *tname, app.ActorOperator)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, tok)
		return nil
	case "topup":
		cid, amount := id("customer"), str("amount")
		if err := parse("customer", "amount"); err != nil {
			return err
		}
		cents, err := parseAmount(*amount)
		if err != nil {
			return err
		}
		c, err := svc.TopUp(ctx, *cid, cents)
		if err != nil {
			return err
		}
		return printJSON(out, map[string]any{"customer_id": c.ID, "billing_state": c.BillingState, "channel_limit": c.ChannelLimit})
	case "channel-limit":
		cid, set := id("customer"), fs.Int("set", 0, "")
		if err := parse("customer", "set"); err != nil {
			return err
		}
		c, err := svc.SetChannelLimit(ctx, *cid, *set)
		if err != nil {
			return err
		}
		return printJSON(out, map[string]any{"customer_id": c.ID, "channel_limit": c.ChannelLimit})
	case "ticket list":
		status := str("status")
		if err := parse(); err != nil {
			return err
		}
		ts, err := svc.Tickets(ctx, 0, sipdesk.TicketStatus(*status))
		if err != nil {
			return err
		}
		items := []map[string]any{}
		for _, t := range ts {
			items = append(items, ticketJSON(t))
		}
		return printJSON(out, items)
	case "ticket approve", "ticket decline":
		tid, err := positionalID()
		if err != nil {
			return err
		}
		msg := str("message")
		approve := name == "ticket approve"
		req := []string{}
		if !approve {
			req = append(req, "message")
		}
		if err := parse(req...); err != nil {
			return err
		}
		t, err := svc.DecideTicket(ctx, tid, approve, *msg)
		if err != nil {
			return err
		}
		return printJSON(out, ticketJSON(t))
	case "sip-account approve":
		sid, err := positionalID()
		if err != nil {
			return err
		}
		if err := parse(); err != nil {
			return err
		}
		a, err := svc.ApproveSIPAccount(ctx, sid)
		if err != nil {
			return err
		}
		return printJSON(out, map[string]any{"id": a.ID, "status": a.Status, "held_for_review": a.HeldForReview})
	case "did assign":
		number, sid := str("number"), id("sip-account")
		if err := parse("number", "sip-account"); err != nil {
			return err
		}
		d, err := svc.AssignDID(ctx, *number, *sid)
		if err != nil {
			return err
		}
		return printJSON(out, map[string]any{"number": d.Number, "sip_account_id": d.SIPAccountID, "customer_id": d.CustomerID})
	case "operator create":
		email, pass, role := str("email"), str("password"), str("role")
		if err := parse("email", "password", "role"); err != nil {
			return err
		}
		n, err := svc.OpsCreateOperator(ctx, app.ShellOperator, *email, *pass, sipdesk.OperatorRole(*role))
		if err != nil {
			return err
		}
		return printJSON(out, map[string]any{"operator_id": n.Operator.ID, "totp_secret": n.TOTPSecret})
	case "operator token create":
		oid, tname := id("operator"), str("name")
		if err := parse("operator"); err != nil {
			return err
		}
		tok, err := svc.OpsCreateOperatorToken(ctx, app.ShellOperator, *oid, *tname)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, tok)
		return nil
	case "node list":
		if err := parse(); err != nil {
			return err
		}
		ns, err := svc.NodeList(ctx)
		if err != nil {
			return err
		}
		items := []map[string]any{}
		for _, n := range ns {
			items = append(items, map[string]any{"name": n.Name, "role": n.Role, "state": n.State,
				"sip_addr": n.SIPAddr, "http_addr": n.HTTPAddr, "version": n.Version, "heartbeat": n.Heartbeat,
				"live_calls": n.LiveCalls, "bindings": n.Bindings, "applied_config_version": n.AppliedVersion})
		}
		return printJSON(out, items)
	}
	return usagef("unknown command %q", strings.TrimSpace(name))
}

// parseAmount reads a money amount like "50" or "50.25" into cents.
func parseAmount(s string) (int64, error) { return app.ParseAmount(s) }

func ticketJSON(t *sipdesk.Ticket) map[string]any {
	return map[string]any{"id": t.ID, "customer_id": t.CustomerID, "kind": t.Kind, "wanted": t.Wanted,
		"reason": t.Reason, "status": t.Status, "message": t.Message, "created_at": t.CreatedAt}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
