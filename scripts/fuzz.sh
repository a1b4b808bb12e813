#!/bin/sh
# Run every fuzz target for a bounded time, one after another, and fail on
# the first finding. Usage: scripts/fuzz.sh [SECONDS]   (default 20)
#
# A finding is written by Go to <package>/testdata/fuzz/<Target>/<hash>:
# commit it with the fix, so that plain `go test` replays it from then on.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-20}
GO=${GO:-go}

# package  target — keep in step with the Fuzz functions (checked below).
targets="
. FuzzNormalizeNumber
. FuzzParseAllowedIPs
. FuzzValidateFields
. FuzzCallerIDRule
. FuzzChooseCallerID
./internal/token FuzzVerify
./internal/web/api FuzzAPIBodies
./internal/media FuzzParseAudio
./internal/edge/auth FuzzParseCredentials
./internal/edge/sipmsg FuzzBearerToken
./internal/edge/policy FuzzDialedNumber
./internal/edge/b2bua FuzzSessionTimer
./internal/edge/sipmsg FuzzValidate
./internal/edge/transport FuzzNormOrigin
./internal/edge/shield FuzzAddrMatcher
"

# Every Fuzz function must be listed.
listed=$(printf '%s\n' "$targets" | awk 'NF {print $2}' | sort)
found=$(grep -rEo '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' --include='*_test.go' . \
	| sed -E 's/^.*:func (Fuzz[A-Za-z0-9_]+).*/\1/' | sort)
missing=$(printf '%s\n' "$found" | grep -vxF "$listed" || true)
if [ -n "$missing" ]; then
	echo "fuzz.sh: targets not listed here: $missing" >&2
	exit 1
fi

status=0
printf '%s\n' "$targets" | while read -r pkg target; do
	[ -n "$pkg" ] || continue
	echo "== $target ($pkg, ${secs}s)"
	run() { $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "${secs}s" -parallel "${FUZZ_PARALLEL:-2}" "$pkg" >"${TMPDIR:-/tmp}/fuzz.$$.log" 2>&1; }
	# A loaded machine can end a run with "context deadline exceeded" and
	# no input found (a worker slow to stop at -fuzztime): run it again.
	ok=0
	run && ok=1
	if [ $ok = 0 ] && grep -q 'context deadline exceeded' "${TMPDIR:-/tmp}/fuzz.$$.log" &&
		[ -z "$(git status --porcelain -- "$pkg/testdata/fuzz/$target")" ]; then
		echo "fuzz.sh: $target stopped on its deadline with no finding; running it again"
		run && ok=1
	fi
	if [ $ok = 0 ]; then
		cat "${TMPDIR:-/tmp}/fuzz.$$.log"
		echo "fuzz.sh: $target found a failure (input saved under $pkg/testdata/fuzz/$target/)" >&2
		rm -f "${TMPDIR:-/tmp}/fuzz.$$.log"
		exit 1
	fi
	grep -E '^fuzz: elapsed' "${TMPDIR:-/tmp}/fuzz.$$.log" | tail -1
	rm -f "${TMPDIR:-/tmp}/fuzz.$$.log"
done || status=1
exit $status
