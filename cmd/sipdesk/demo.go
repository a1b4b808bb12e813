package main

import (
	"context"
	"log/slog"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// demoData creates a demo customer on first start, so a newcomer has
// something to look at. Its credentials go to the log once.
func demoData(ctx context.Context, svc *app.Service, log *slog.Logger) error {
	cs, err := svc.Customers(ctx)
	if err != nil || len(cs) > 0 {
		return err
	}
	const email, pass = "demo@example.com", "Demo-Password-2026"
	c, first, err := svc.CreateVerifiedCustomer(ctx, email, pass, "+15550100001")
	if err != nil {
		return err
	}
	tok, err := svc.CreateAPIToken(ctx, c.ID, "demo", app.ActorSystem)
	if err != nil {
		return err
	}
	if _, err := svc.CreateSIPAccount(ctx, c.ID, app.SIPAccountInput{Name: "Office PBX", AuthType: sipdesk.AuthIP,
		AllowedIPs: []string{"198.51.100.10"}}, app.ActorSystem); err != nil && sipdesk.ErrorCode(err) != sipdesk.EInvalid {
		return err
	}
	// The demo prints its own throwaway credentials so a newcomer can log in.
	log.Info("demo customer created", "email", email, "portal_password", pass, "api_token", tok,
		"sip_username", first.Account.Username, "sip_password", first.Password)
	return nil
}
