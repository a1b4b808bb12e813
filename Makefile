# sipdesk — build and test targets. `make test` is the test command of the README.
GO       ?= go
PG_DSN   ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

.PHONY: lint build run test test-unit test-e2e test-cluster test-browser test-hostile vet bench bench-sip bench-sip-short contract docs

build:
	$(GO) build -o bin/sipdesk ./cmd/sipdesk

run:
	$(GO) run ./cmd/sipdesk serve

# golangci-lint v2 with .golangci.yml (built from the Go module proxy).
# Installed into bin/tools once; a download that hangs is cut after 5
# minutes and tried again (the module proxy sometimes stalls).
GOLANGCI ?= bin/tools/golangci-lint
$(GOLANGCI):
	@for i in 1 2 3; do GOBIN=$(CURDIR)/bin/tools timeout 300 $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 && exit 0; echo "golangci-lint install failed, retrying"; done; exit 1
lint: $(GOLANGCI)
	$(GOLANGCI) run ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# The unit layer: every package, with the race detector. The store
# conformance suite also runs on PostgreSQL when SIPDESK_TEST_POSTGRES is set.
test-unit:
	$(GO) test -race -count=1 ./...

test: vet test-unit

# End-to-end suites with real SIP peers (sipp, baresip): slower, own target.
test-e2e:
	$(GO) test -race -tags e2e -count=1 -timeout 20m ./internal/edge/...
	$(GO) test -race -tags e2e -count=1 -timeout 10m -run 'Propagation|CallerIDAgree|ConnectionSnippet' ./cmd/sipdesk/

# The portal in headless Chromium (Debian chromium + playwright-core from npm).
test-browser:
	cd e2e && npm ci --no-audit --no-fund && node run.mjs && node sms.mjs && node security.mjs && node ops.mjs && node records.mjs && node passkeys.mjs

# Hostile input: kill -9 during writes, the portal's outside attacks (issue 14),
# and every fuzz target for a bounded time.
test-hostile:
	$(GO) test -race -tags hostile -count=1 ./cmd/sipdesk/
	$(GO) test -race -tags hostile -count=1 -run Hostile ./internal/web/
	$(GO) test -race -tags hostile -count=1 -timeout 10m ./internal/edge/
	GO=$(GO) scripts/fuzz.sh 20

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# SIP load: sipdesk against Kamailio with ../shared/bench (sipp, kamailio);
# the table goes to bench/out/<time>/table.md (docs/PERFORMANCE.md).
bench-sip:
	bench/sipdesk.sh

# The same workloads for a few seconds each; fails unless all have 0 failures.
bench-sip-short:
	bench/sipdesk.sh --short --no-kamailio

# The Contract checks from the outside (needs ../shared/checks).
contract:
	../shared/checks/contract.sh

# Several edges and a portal on one PostgreSQL as real processes, with a
# TCP proxy per edge that the tests cut or freeze (needs sipp, socat).
test-cluster:
	SIPDESK_TEST_POSTGRES=$${SIPDESK_TEST_POSTGRES:-$(PG_DSN)} $(GO) test -race -tags 'e2e cluster' -count=1 -timeout 30m -run '^TestCluster' ./internal/edge/

# Pictures of the docs from their text sources (Graphviz: apt-get install
# graphviz); the SVGs are committed, so nothing else needs Graphviz.
docs:
	dot -Tsvg docs/cluster.dot -o docs/cluster.svg
