package policy_test

import (
	"context"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
)

// A version counts as applied only once OnChange (the registrar dropping
// what it invalidated) has returned: whoever waits for it, a test or the
// cluster console, sees its effects.
func TestAppliedVersionAfterOnChange(t *testing.T) {
	st := openStore(t)
	e := policy.New(st, policy.Options{})
	if v := e.AppliedVersion(); v != -1 {
		t.Fatalf("AppliedVersion before the first load: %d, want -1", v)
	}
	if err := e.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	v0 := e.AppliedVersion()
	if v0 < 0 {
		t.Fatalf("AppliedVersion after the first load: %d", v0)
	}
	if err := st.Update(t.Context(), func(tx sipdesk.Tx) error { _, err := tx.BumpConfigVersion(); return err }); err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	e.OnChange(func(context.Context, *policy.Snapshot, *policy.Snapshot) { close(inside); <-release })
	done := make(chan error, 1)
	go func() { done <- e.Refresh(context.Background()) }()
	<-inside
	if e.Config().Version() <= v0 {
		t.Fatalf("snapshot version %d during OnChange, want above %d", e.Config().Version(), v0)
	}
	if v := e.AppliedVersion(); v != v0 {
		t.Fatalf("AppliedVersion %d while OnChange runs, want %d", v, v0)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := e.AppliedVersion(); v != e.Config().Version() {
		t.Fatalf("AppliedVersion %d after OnChange, want %d", v, e.Config().Version())
	}
}
