#!/usr/bin/env bash
# Builds a sipp with TLS (-t l1 / -t ln) into bench/out/sipp-tls/sipp for the
# TLS workloads of bench/sipdesk.sh: Debian's sip-tester is built without TLS.
# SIPp 3.7.7: 3.6.1's TLS client stops at the first handshake with OpenSSL 3
# ("Problem EAGAIN on socket"). Needs git, cmake, g++, libssl-dev and
# libncurses-dev.
#
#   bench/sipp-tls.sh            clone https://github.com/SIPp/sipp (tag v3.7.7)
#   SIPP_SRC=DIR bench/sipp-tls.sh   build from a checkout already on disk
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=$ROOT/bench/out/sipp-tls
TAG=v3.7.7
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${SIPP_SRC:-}" ]; then
    git clone -q "$SIPP_SRC" "$work/src"
else
    git clone -q https://github.com/SIPp/sipp "$work/src"
fi
git -C "$work/src" checkout -q "$TAG"
# sipp sleeps 200 ms before retrying a TLS handshake or read that is still in
# progress, so it opens about 5 TLS connections a second; 1 ms (up to 2,000
# times) lets it connect 10,000 devices in the steady-state workload
sed -i 's/^#define SIPP_SSL_RETRY_TIMEOUT 200000/#define SIPP_SSL_RETRY_TIMEOUT 1000/; s/^#define SIPP_SSL_MAX_RETRIES 10$/#define SIPP_SSL_MAX_RETRIES 2000/' \
    "$work/src/include/socket.hpp"
grep -q '^#define SIPP_SSL_RETRY_TIMEOUT 1000' "$work/src/include/socket.hpp" || { echo "sipp-tls: socket.hpp changed upstream" >&2; exit 1; }
mkdir -p "$work/src/b"
# the build writes version.h only inside a git work tree; a clone is one, but
# the generator looks for .git in the build folder
printf '#define SIPP_VERSION VERSION\n#define VERSION "%s"\n' "$TAG" > "$work/src/b/version.h"
( cd "$work/src/b" && cmake .. -DUSE_SSL=1 -DUSE_PCAP=0 -DUSE_SCTP=0 -DUSE_GSL=0 >/dev/null && make -j"$(nproc)" sipp >/dev/null )
mkdir -p "$DEST"
cp "$work/src/b/sipp" "$DEST/sipp"
"$DEST/sipp" -v 2>&1 | grep -m1 SIPp
