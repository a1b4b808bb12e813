package sipmsg

import (
	"os"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
)

// TestRefusalsDocumented keeps docs/refusals.md in step with the table in
// code. Regenerate with: go test ./internal/edge/sipmsg -run TestRefusalsDocumented -update-docs
func TestRefusalsDocumented(t *testing.T) {
	const path = "../../../docs/refusals.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	table := RefusalsMarkdown()
	if !strings.Contains(string(b), table) {
		t.Fatalf("docs/refusals.md does not contain the table of refusal.go; it should contain:\n%s", table)
	}
}

func TestRefusalForError(t *testing.T) {
	for code, want := range map[string]Refusal{
		sipdesk.EChannelLimit: RefuseChannelLimit, sipdesk.EChannelCap: RefuseChannelCap,
		sipdesk.EAccountInactive: RefuseInactive, sipdesk.EInternal: RefuseUnavailable,
	} {
		if got := RefusalForError(&sipdesk.Error{Code: code}); got != want {
			t.Errorf("%s: got %v want %v", code, got, want)
		}
	}
	for _, r := range refusalOrder {
		if _, ok := Refusals[r]; !ok {
			t.Errorf("refusal %d has no row", r)
		}
	}
}
