package api

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true, "trace": true}

type openAPIDocument struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas    map[string]any `json:"schemas"`
		Parameters map[string]struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

type openAPIOperation struct {
	OperationID string            `json:"operationId"`
	Security    *[]map[string]any `json:"security"`
	Parameters  []struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	RequestBody json.RawMessage            `json:"requestBody"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

func loadOpenAPI(t *testing.T) openAPIDocument {
	t.Helper()
	var doc openAPIDocument
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// TestOpenAPIMatchesRoutes keeps the document and the router in step: every
// registered route is documented with its method, every documented operation
// is registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	a := New(nil, nil)
	registered := map[string]bool{}
	for _, r := range a.Routes() {
		key := strings.ToLower(r.Method) + " " + r.Pattern
		if registered[key] {
			t.Errorf("route %s registered twice", key)
		}
		registered[key] = true
		if _, ok := doc.Paths[r.Pattern][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s is not in openapi.json", r.Method, r.Pattern)
		}
	}
	documented := 0
	for path, item := range doc.Paths {
		for method := range item {
			if !httpMethods[method] {
				continue
			}
			documented++
			if !registered[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which is not registered", strings.ToUpper(method), path)
			}
		}
	}
	if documented != len(registered) {
		t.Errorf("%d documented operations, %d routes", documented, len(registered))
	}
	if len(registered) < 30 {
		t.Errorf("only %d routes", len(registered))
	}
}

var pathParamRE = regexp.MustCompile(`\{([a-z_]+)\}`)

func TestOpenAPIDocumentIsComplete(t *testing.T) {
	doc := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	if s := doc.Components.SecuritySchemes["bearer"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("bearer security scheme: %+v", s)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearer"] == nil {
		t.Errorf("global security is not bearer: %v", doc.Security)
	}
	for _, s := range []string{"Account", "SIPAccount", "Rule", "CallerIDNumber", "Ticket", "Error", "Simulation", "APIToken", "AuditEntry"} {
		if doc.Components.Schemas[s] == nil {
			t.Errorf("schema %s missing", s)
		}
	}
	ids := map[string]bool{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !httpMethods[method] {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			name := strings.ToUpper(method) + " " + path
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: missing or duplicate operationId %q", name, op.OperationID)
			}
			ids[op.OperationID] = true
			ok := false
			for code := range op.Responses {
				ok = ok || strings.HasPrefix(code, "2")
			}
			if !ok {
				t.Errorf("%s: no 2xx response", name)
			}
			if (method == "post" || method == "put" || method == "patch") && op.RequestBody == nil && !bodylessPosts[path] {
				t.Errorf("%s: no request body", name)
			}
			declared := map[string]bool{}
			for _, p := range op.Parameters {
				if p.Ref != "" {
					c, found := doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
					if !found {
						t.Errorf("%s: dangling %s", name, p.Ref)
					}
					p.Name, p.In = c.Name, c.In
				}
				if p.In == "path" {
					declared[p.Name] = true
				}
			}
			for _, m := range pathParamRE.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s: path parameter %s not declared", name, m[1])
				}
			}
		}
	}
	// Every $ref points at something.
	refs := regexp.MustCompile(`"\$ref":\s*"#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(string(openAPIDoc), -1)
	var all map[string]any
	json.Unmarshal(openAPIDoc, &all)
	comps := all["components"].(map[string]any)
	for _, r := range refs {
		kind, _ := comps[r[1]].(map[string]any)
		if kind == nil || kind[r[2]] == nil {
			t.Errorf("dangling $ref %s/%s", r[1], r[2])
		}
	}
}

// POST routes that take no body.
var bodylessPosts = map[string]bool{
	"/api/v1/sip-accounts/{id}/reveal-username":  true,
	"/api/v1/sip-accounts/{id}/credential-reset": true,
	"/api/v1/sip-accounts/{id}/softphone-token":  true,
	"/api/v1/caller-ids/{id}/call-me":            true,
	"/api/v1/tokens":                             true, // the name is optional
}

// TestOpenAPISecurityMatchesAuth checks that the routes the document marks
// public are the only ones that answer without a token.
func TestOpenAPISecurityMatchesAuth(t *testing.T) {
	doc := loadOpenAPI(t)
	e := newEnv(t)
	for _, r := range e.api.Routes() {
		var op openAPIOperation
		json.Unmarshal(doc.Paths[r.Pattern][strings.ToLower(r.Method)], &op)
		public := op.Security != nil && len(*op.Security) == 0
		path := strings.NewReplacer("{id}", "1", "{token}", "x").Replace(r.Pattern)
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, httptest.NewRequest(r.Method, path, strings.NewReader("{}")))
		challenged := rec.Code == 401 && strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer")
		if public == challenged {
			t.Errorf("%s %s: documented public=%v, answered %d without a token", r.Method, r.Pattern, public, rec.Code)
		}
	}
}
