#!/bin/sh
# Calls every operator API route with curl against a fresh `sipdesk serve`
# and checks the status of each answer: the role that may act gets 2xx, a
# readonly token gets 403 on every action, no token gets 401. Prints each
# command and its status. Usage: scripts/ops-api-curl.sh
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
go build -o "$work/sipdesk" ./cmd/sipdesk
sd() { "$work/sipdesk" admin --data "$work/data" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

http=$(port)
B="http://127.0.0.1:$http"
"$work/sipdesk" serve --data "$work/data" --http "127.0.0.1:$http" --sip "127.0.0.1:$(port)" --log-level warn >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "$B/healthz" >/dev/null && break; sleep 0.1; done

cust=$(sd customer create --email curl@example.com --password 'Portal-Pass-123' --phone +15551230009)
C=$(echo "$cust" | json "['customer_id']")
S=$(echo "$cust" | json "['sip_account']['id']")
SDK=$(sd token create --customer "$C")
tok() { sd operator token create --operator "$(sd operator create --email "$1@example.com" --password 'Operator-Pass-123' --role "$1" | json "['operator_id']")"; }
RO=$(tok readonly)
SUP=$(tok support)
ADM=$(tok admin)

fail=0
# check WANT TOKEN METHOD PATH [BODY]: one curl, its status against WANT.
check() {
	want=$1 token=$2 method=$3 path=$4 body=${5:-}
	set -- -s -o "$work/out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token"
	[ -n "$body" ] && set -- "$@" -H 'Content-Type: application/json' -d "$body"
	got=$(curl "$@" "$B/api/ops/v1$path")
	[ "$got" = "$want" ] && mark=ok || { mark=FAIL; fail=1; }
	printf '%-4s %s  curl -X %s %s%s  (%s token)\n' "$mark" "$got" "$method" "/api/ops/v1$path" "${body:+ -d '$body'}" "$(role "$token")"
	[ "$mark" = ok ] || cat "$work/out"
}
role() { case $1 in "$RO") echo readonly ;; "$SUP") echo support ;; "$ADM") echo admin ;; *) echo no ;; esac; }

# Tickets the customer opens through the customer API.
T1=$(curl -s -H "Authorization: Bearer $SDK" -H 'Content-Type: application/json' -d '{"kind":"sip_accounts","wanted":20,"reason":"branches"}' "$B/api/v1/tickets" | json "['id']")

check 401 ""   GET  "/customers"
check 200 "$RO" GET "/customers?q=curl@"
check 200 "$RO" GET "/customers/$C"
check 403 "$RO" POST "/customers/$C/topups" '{"amount": 50}'
check 403 "$SUP" POST "/customers/$C/topups" '{"amount": 50}'
check 201 "$ADM" POST "/customers/$C/topups" '{"amount": 50}'
check 403 "$RO" PUT "/customers/$C/channel-limit" '{"channel_limit": 12}'
check 200 "$ADM" PUT "/customers/$C/channel-limit" '{"channel_limit": 12}'
T2=$(curl -s -H "Authorization: Bearer $SDK" -H 'Content-Type: application/json' -d '{"kind":"channel_limit","wanted":30,"reason":"campaign"}' "$B/api/v1/tickets" | json "['id']")
check 200 "$RO" GET "/tickets?status=open"
check 403 "$RO" POST "/tickets/$T1/approve" '{"message": "ok"}'
check 200 "$SUP" POST "/tickets/$T1/approve" '{"message": "Enjoy"}'
check 403 "$RO" POST "/tickets/$T2/decline" '{"message": "no"}'
check 200 "$SUP" POST "/tickets/$T2/decline" '{"message": "Not this month"}'
check 200 "$RO" GET "/calls/active"
# A hang-up (no call is live here: the e2e test TestSippOperatorHangUp ends a real one).
check 403 "$RO" DELETE "/calls/active/a84b4c76e66710%4010.0.0.5"
check 404 "$SUP" DELETE "/calls/active/a84b4c76e66710%4010.0.0.5"
grep -q '"code":"not_found"' "$work/out" || { echo "FAIL the hang-up of no call is not not_found"; fail=1; }
check 200 "$RO" GET "/nodes"
check 403 "$RO" POST "/dids" "{\"number\": \"+15550100777\", \"sip_account_id\": $S}"
check 403 "$SUP" POST "/dids" "{\"number\": \"+15550100777\", \"sip_account_id\": $S}"
check 200 "$ADM" POST "/dids" "{\"number\": \"+15550100777\", \"sip_account_id\": $S}"
check 422 "$ADM" POST "/dids" "{\"number\": \"12ab\", \"sip_account_id\": $S}"
check 200 "$RO" GET "/dids?q=curl@example.com"
grep -q '"number":"+15550100777"' "$work/out" || { echo "FAIL the DID is not listed"; fail=1; }
check 403 "$RO" DELETE "/dids/+15550100777"
check 204 "$ADM" DELETE "/dids/+15550100777"
check 404 "$ADM" DELETE "/dids/+15550100777"
check 403 "$RO" POST "/customers/$C/suspend" '{"reason": "unpaid invoices"}'
check 200 "$SUP" POST "/customers/$C/suspend" '{"reason": "unpaid invoices"}'
check 409 "$SUP" POST "/customers/$C/suspend" '{"reason": "unpaid invoices"}'
check 403 "$RO" POST "/customers/$C/unsuspend"
check 200 "$SUP" POST "/customers/$C/unsuspend"
check 200 "$RO" GET "/bans"
check 403 "$RO" DELETE "/bans/203.0.113.9"
check 404 "$SUP" DELETE "/bans/203.0.113.9"
[ $fail = 0 ] && echo "every route answered as documented" || { echo "some routes did not answer as documented"; exit 1; }
