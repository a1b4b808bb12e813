// Package policytest has a fake policy.Policy for tests of the protocol
// layers (registrar, b2bua) without a store or sockets.
package policytest

import (
	"context"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
)

// Fake is a policy.Policy whose answers are func fields; a nil field takes
// the default: an empty configuration, every call admitted, nothing
// recorded, every binding write succeeding, no stored bindings.
type Fake struct {
	ConfigFunc         func() *policy.Snapshot
	AdmitCallFunc      func(ctx context.Context, c policy.CallInfo) error
	ReleaseCallFunc    func(ctx context.Context, c policy.CallInfo)
	SaveDialogFunc     func(callID string, d policy.Dialog)
	RecordFunc         func(key any, rec sipdesk.CallRecord, final bool)
	SaveBindingsFunc   func(c policy.BindingChange) error
	PostBindingsFunc   func(c policy.BindingChange, after func(error))
	StoredBindingsFunc func(ctx context.Context, accountID int64) ([]*sipdesk.Registration, error)
	// RegisterBindingsFunc nil: the change is taken and the result is its
	// Puts.
	RegisterBindingsFunc func(ctx context.Context, c policy.BindingChange, maxContacts int) ([]*sipdesk.Registration, error)
}

var _ policy.Policy = (*Fake)(nil)

var empty = policy.NewSnapshot(0, nil, nil, nil, nil)

// Config calls ConfigFunc, else returns an empty snapshot.
func (f *Fake) Config() *policy.Snapshot {
	if f.ConfigFunc != nil {
		return f.ConfigFunc()
	}
	return empty
}

// AdmitCall calls AdmitCallFunc, else admits.
func (f *Fake) AdmitCall(ctx context.Context, c policy.CallInfo) error {
	if f.AdmitCallFunc != nil {
		return f.AdmitCallFunc(ctx, c)
	}
	return nil
}

// ReleaseCall calls ReleaseCallFunc, else does nothing.
func (f *Fake) ReleaseCall(ctx context.Context, c policy.CallInfo) {
	if f.ReleaseCallFunc != nil {
		f.ReleaseCallFunc(ctx, c)
	}
}

// SaveDialog calls SaveDialogFunc, else does nothing.
func (f *Fake) SaveDialog(callID string, d policy.Dialog) {
	if f.SaveDialogFunc != nil {
		f.SaveDialogFunc(callID, d)
	}
}

// Record calls RecordFunc, else records nothing.
func (f *Fake) Record(key any, rec sipdesk.CallRecord, final bool) {
	if f.RecordFunc != nil {
		f.RecordFunc(key, rec, final)
	}
}

// SaveBindings calls SaveBindingsFunc, else succeeds.
func (f *Fake) SaveBindings(c policy.BindingChange) error {
	if f.SaveBindingsFunc != nil {
		return f.SaveBindingsFunc(c)
	}
	return nil
}

// PostBindings calls PostBindingsFunc, else reports success to after at
// once.
func (f *Fake) PostBindings(c policy.BindingChange, after func(error)) {
	if f.PostBindingsFunc != nil {
		f.PostBindingsFunc(c, after)
		return
	}
	if after != nil {
		after(nil)
	}
}

// StoredBindings calls StoredBindingsFunc, else returns none.
func (f *Fake) StoredBindings(ctx context.Context, accountID int64) ([]*sipdesk.Registration, error) {
	if f.StoredBindingsFunc != nil {
		return f.StoredBindingsFunc(ctx, accountID)
	}
	return nil, nil
}

// RegisterBindings calls RegisterBindingsFunc, else returns c's Puts.
func (f *Fake) RegisterBindings(ctx context.Context, c policy.BindingChange, maxContacts int) ([]*sipdesk.Registration, error) {
	if f.RegisterBindingsFunc != nil {
		return f.RegisterBindingsFunc(ctx, c, maxContacts)
	}
	return c.Puts, nil
}
