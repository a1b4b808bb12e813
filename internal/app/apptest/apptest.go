// Package apptest helps tests of other packages drive the service as a
// customer would.
package apptest

import (
	"context"
	"fmt"
	"regexp"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

var signupLink = regexp.MustCompile(`token=([A-Za-z0-9_-]+)`)

// Signup signs a customer up through the emailed link, as the portal does:
// Signup, then ConfirmSignup with the token of the latest mail in st.
func Signup(ctx context.Context, svc *app.Service, st sipdesk.Store, email, password, phone string) (*sipdesk.Customer, error) {
	if err := svc.Signup(ctx, email, password, phone); err != nil {
		return nil, err
	}
	var ms []*sipdesk.Mail
	if err := st.View(ctx, func(tx sipdesk.Tx) (err error) { ms, err = tx.Mails(1); return err }); err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no signup mail")
	}
	tok := signupLink.FindStringSubmatch(ms[0].Text)
	if tok == nil {
		return nil, fmt.Errorf("no signup link in the mail")
	}
	return svc.ConfirmSignup(ctx, tok[1])
}
