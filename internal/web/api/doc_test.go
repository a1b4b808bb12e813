package api

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
)

// TestErrorTableDocumented keeps the error table of docs/API.md in step with
// sipdesk's code table: every API code is documented with its status.
func TestErrorTableDocumented(t *testing.T) {
	b, err := os.ReadFile("../../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([0-9]{3})")
	documented := map[string]int{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		documented[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(documented) < 20 {
		t.Fatalf("read only %d rows of the error table", len(documented))
	}
	for code, status := range documented {
		if got := sipdesk.HTTPStatus(code); got != status {
			t.Errorf("docs/API.md: %s answers %d, the code table says %d", code, status, got)
		}
	}
	var missing []string
	for _, r := range sipdesk.CodeTable() {
		if _, ok := documented[r.Code]; r.HTTP != 0 && !ok {
			missing = append(missing, r.Code)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/API.md does not document %s", strings.Join(missing, ", "))
	}
}

// TestOpenAPIErrorCodes: the error code enum of openapi.json is the API codes
// of the code table (and the router's method_not_allowed).
func TestOpenAPIErrorCodes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Error struct {
							Properties struct {
								Code struct {
									Enum []string `json:"enum"`
								} `json:"code"`
							} `json:"properties"`
						} `json:"error"`
					} `json:"properties"`
				} `json:"Error"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	enum := doc.Components.Schemas.Error.Properties.Error.Properties.Code.Enum
	want := []string{"method_not_allowed"}
	for _, r := range sipdesk.CodeTable() {
		if r.HTTP != 0 {
			want = append(want, r.Code)
		}
	}
	slices.Sort(enum)
	slices.Sort(want)
	if !slices.Equal(enum, want) {
		t.Errorf("openapi.json error codes %v, the code table's %v", enum, want)
	}
}
