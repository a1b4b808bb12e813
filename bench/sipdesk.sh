#!/usr/bin/env bash
# make bench-sip: sipdesk against Kamailio with the shared SIP harness
# (../shared/bench/run-kamailio.sh), same data, same machine, one run.
#
#   bench/sipdesk.sh                 full run (about 20 minutes), prints the table
#   bench/sipdesk.sh --short         CI: a few seconds per workload, sipdesk only;
#                                    fails unless every workload has 0 failed calls
#   options: --no-kamailio  --no-rss  --workloads "register limit call ipcall"
#            --step-secs S  --pprof (CPU + allocs profiles of sipdesk under load)
#            --out DIR      --harness PATH  --no-doc
#
# A full run (every workload, Kamailio and the RSS step) also writes its
# table into docs/PERFORMANCE.md, between the bench-sip markers; the
# analysis around it is written by hand.
#
# sipdesk runs pinned to CPU 0 (`taskset -c 0`), sipp on CPU 1 (the
# harness's default pinning), both with 10,000 digest users in realm
# bench.local provisioned by bench/provision from gen-users.sh's files.
#
# The IP trunk (127.0.0.1:5084) and the digest callers (127.0.0.1, other
# ports) share one address: the trunk's IP account is provisioned at
# 127.0.0.1:5084 (an address:port entry, matched exactly before address-only
# entries), so every workload runs against one data folder.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench/run-kamailio.sh}
SHORT=0 KAM=1 RSS=1 PPROF=0 DOC=1
ALL_WORKLOADS="register limit call ipcall"
WORKLOADS=$ALL_WORKLOADS
STEP_SECS=8
REG_RATES="500 1000 2000 3000 4000 5000 6000 7000 8000 9000 10000 12000"
CALL_RATES="500 750 1000 1500 2000 2400 2800 3200 3600 4000"
IP_RATES="500 750 1000 1500 2000 2400 2800 3200 3600 4000"
SIP_PORT=5062 HTTP_PORT=18089 PPROF_PORT=16060
BINDINGS=100000
OUT=""

while [ $# -gt 0 ]; do
    case "$1" in
    --short) SHORT=1; shift ;;
    --no-kamailio) KAM=0; shift ;;
    --no-rss) RSS=0; shift ;;
    --pprof) PPROF=1; shift ;;
    --no-doc) DOC=0; shift ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --step-secs) STEP_SECS=$2; shift 2 ;;
    --reg-rates) REG_RATES=$2; shift 2 ;;
    --call-rates) CALL_RATES=$2; shift 2 ;;
    --ip-rates) IP_RATES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --harness) HARNESS=$2; shift 2 ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [ "$SHORT" = 1 ]; then
    KAM=0 STEP_SECS=2 BINDINGS=2000 PPROF=0
    REG_RATES="200" CALL_RATES="100" IP_RATES="100"
fi

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
[ -x "$HARNESS" ] || die "harness not found: $HARNESS"
SHARED=$(cd "$(dirname "$HARNESS")" && pwd)
command -v sipp >/dev/null || die "sipp not found (apt-get install sip-tester)"
[ "$KAM" = 0 ] || command -v kamailio >/dev/null || die "kamailio not found (apt-get install kamailio kamailio-sqlite-modules), or --no-kamailio"

[ -n "$OUT" ] || OUT=$ROOT/bench/out/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
DATA=$ROOT/bench/out/data
log "results in $OUT"

# ------------------------------------------------------------ build, data
( cd "$ROOT" && go build -o "$OUT/sipdesk" ./cmd/sipdesk && go build -o "$OUT/provision" ./bench/provision ) || die "build failed"
if [ ! -s "$DATA/users.csv" ] || [ ! -s "$DATA/trunk_addrs.csv" ]; then
    mkdir -p "$DATA"
    TRUNK_PORT=5084 REALM=bench.local "$SHARED/gen-users.sh" 10000 1000 "$DATA" || die "gen-users failed"
fi
"$OUT/provision" -data "$OUT/db" -in "$DATA" || die "provision failed"

# ------------------------------------------------------------ sipdesk
SRV=""
stop_srv() {
    [ -n "$SRV" ] || return 0
    kill -TERM "$SRV" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; SRV=""
}
trap 'stop_srv' EXIT
trap 'exit 130' INT TERM
start_srv() {   # start_srv DATADIR NAME
    stop_srv
    local env=()
    [ "$PPROF" = 1 ] && env=(SIPDESK_PPROF_ADDR=127.0.0.1:$PPROF_PORT)
    env "${env[@]}" taskset -c 0 "$OUT/sipdesk" serve --data "$1" --role all --sip 127.0.0.1:$SIP_PORT \
        --http 127.0.0.1:$HTTP_PORT --sip-domain bench.local --carrier sip:127.0.0.1:5090 \
        --carrier-addrs 127.0.0.1:5090 --allow-private-ips --node bench --log-level warn --challenge-rate 0 \
        > "$OUT/sipdesk-$2.log" 2>&1 &
    SRV=$!
    for _ in $(seq 100); do
        ss -Hlun "sport = :$SIP_PORT" 2>/dev/null | grep -q . && break
        kill -0 "$SRV" 2>/dev/null || { tail "$OUT/sipdesk-$2.log" >&2; die "sipdesk exited"; }
        sleep 0.1
    done
    sleep 1
}
harness() {   # harness OUTNAME [harness args]
    local name=$1; shift
    "$HARNESS" --data "$DATA" --out "$OUT/$name" --step-secs "$STEP_SECS" \
        --reg-rates "$REG_RATES" --call-rates "$CALL_RATES" --ip-rates "$IP_RATES" "$@" > "$OUT/$name.txt" 2>&1
    tail -n +1 "$OUT/$name/results.csv" 2>/dev/null | sed 1d
}
profile() {   # profile NAME: CPU and allocation profiles while the harness runs
    [ "$PPROF" = 1 ] || return 0
    ( sleep 25
      curl -s -o "$OUT/$1.cpu.pprof" "http://127.0.0.1:$PPROF_PORT/debug/pprof/profile?seconds=20"
      curl -s -o "$OUT/$1.allocs.pprof" "http://127.0.0.1:$PPROF_PORT/debug/pprof/allocs" ) &
}

if [ -n "$WORKLOADS" ]; then
    start_srv "$OUT/db" sipdesk
    log "sipdesk: $WORKLOADS"
    profile sipdesk-all
    harness sipdesk-all --target 127.0.0.1:$SIP_PORT --server-pid "$SRV" --uas-scenario uas_b2bua.xml --workloads "$WORKLOADS" >/dev/null
    # peak and current RSS of sipdesk after the ladders (memory under calls)
    awk '/^VmHWM|^VmRSS/{printf "%s %s ", $1, $2} END{print ""}' "/proc/$SRV/status" > "$OUT/sipdesk-mem.txt"
    stop_srv
fi
if [ "$KAM" = 1 ] && [ -n "$WORKLOADS" ]; then
    log "kamailio: $WORKLOADS"
    harness kamailio --workloads "$WORKLOADS" >/dev/null
fi

# ------------------------------------------------------------ RSS per binding
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
if [ "$RSS" = 1 ]; then
    start_srv "$OUT/db" rss
    per=$(( BINDINGS / 10000 )); [ "$per" -ge 1 ] || per=1
    n=$(( BINDINGS < 10000 ? BINDINGS : 10000 ))
    r0=$(rss_kb "$SRV")
    mkdir -p "$OUT/rss"
    for i in $(seq 0 $((per - 1))); do
        ( cd "$OUT/rss" && taskset -c 1 sipp 127.0.0.1:$SIP_PORT -sf "$SHARED/scenarios/register_auth.xml" -inf "$DATA/users.csv" \
            -key domain bench.local -i 127.0.0.1 -bind_local -p $((5100 + i)) -ci 127.0.0.1 -cp 8895 -mp 6900 \
            -r 2000 -rp 1000 -m "$n" -timeout 60s -recv_timeout 5000 -default_behaviors all,-bye -nostdin \
            -trace_stat -stf stat-$i.csv -fd 1 > sipp-$i.out 2>&1 )
    done
    sleep 5
    r1=$(rss_kb "$SRV")
    # steady state: every finished transaction gone, and the Go runtime's
    # periodic GC (every 2 min when idle) and scavenger have run
    sleep 130
    r2=$(rss_kb "$SRV")
    if [ "$PPROF" = 1 ]; then
        curl -s -o "$OUT/rss.heap.pprof" "http://127.0.0.1:$PPROF_PORT/debug/pprof/heap?gc=1"
        curl -s -o "$OUT/rss.heap.txt" "http://127.0.0.1:$PPROF_PORT/debug/pprof/heap?debug=1"
    fi
    ok=0
    for f in "$OUT"/rss/stat-*.csv; do
        ok=$((ok + $(awk -F';' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next}{s=$c["SuccessfulCall(C)"]}END{print s+0}' "$f")))
    done
    echo "$ok $r0 $r1 $r2" > "$OUT/rss.txt"
    stop_srv
fi

# ------------------------------------------------------------ table
report() {
python3 - "$OUT" "$SHORT" <<'PY'
import csv, os, sys
out, short = sys.argv[1], sys.argv[2] == "1"
def rows(name):
    p = os.path.join(out, name, "results.csv")
    return list(csv.DictReader(open(p))) if os.path.exists(p) else []
sd = rows("sipdesk-all")
km = rows("kamailio")
def f(x):
    try: return float(x)
    except: return None
def summary(rs, w):
    rs = [r for r in rs if r["workload"] == w]
    if not rs: return None
    clean = [r for r in rs if r["status"].startswith("ok") and f(r["failed_pct"]) < 0.1 and int(r["retrans"]) == 0]
    okr = [r for r in rs if r["status"].startswith("ok")]
    best = max(clean, key=lambda r: int(r["offered_rate"])) if clean else None
    bok = max(okr, key=lambda r: int(r["offered_rate"])) if okr else None
    cpu = {int(r["offered_rate"]): f(r["server_cpu_us_per_call"]) for r in rs}
    return dict(best=best, ok=bok, cpu=cpu, rows=rs)
def fmt(v, d=0):
    return "-" if v is None else (f"{v:,.{d}f}")
lines = []
if short:
    bad = [r for r in sd if f(r["failed_pct"]) != 0.0]
    for r in sd: lines.append(f'{r["workload"]:8} {r["offered_rate"]:>5}/s  {r["successful"]}/{r["calls"]} ok  failed {r["failed_pct"]}%  p99 {r["p99_ms"]} ms')
    lim = os.path.join(out, "sipdesk-all", "limit.txt")
    if os.path.exists(lim): lines.append(open(lim).read().strip())
    print("\n".join(lines))
    ws = set(r["workload"] for r in sd)
    sys.exit(1 if bad or (os.path.exists(lim) and "PASS" not in open(lim).read()) else 0)
names = {"register": "REGISTER (digest 401)", "call": "INVITE digest (407) + limit + Caller ID", "ipcall": "INVITE from IP trunk + limit"}
for w in ["register", "call", "ipcall"]:
    a, b = summary(sd, w), summary(km, w)
    if not a and not b: continue
    lines.append(f"\n### {names[w]}\n")
    lines.append("| | sipdesk | Kamailio | sipdesk/Kamailio |")
    lines.append("|---|---|---|---|")
    def rate(s, k):
        return int(s[k]["offered_rate"]) if s and s[k] else None
    def ratio(x, y, inv=False):
        if x is None or y is None or x == 0 or y == 0: return "-"
        return f"{(y/x if inv else x/y):.2f}"
    ra, rb = rate(a, "best"), rate(b, "best")
    lines.append(f"| highest clean rate (<0.1% failed, 0 retrans, p99≤100 ms) | {fmt(ra)}/s | {fmt(rb)}/s | {ratio(ra, rb)} |")
    oa, ob = rate(a, "ok"), rate(b, "ok")
    lines.append(f"| highest `ok` rate (harness (b): <1% failed) | {fmt(oa)}/s | {fmt(ob)}/s | {ratio(oa, ob)} |")
    for r in (500, 1000, 2000):
        ca = a["cpu"].get(r) if a else None
        cb = b["cpu"].get(r) if b else None
        lines.append(f"| server CPU µs/op at {r}/s | {fmt(ca)} | {fmt(cb)} | {ratio(ca, cb)} |")
    def lat(s):
        r = s["best"] or s["ok"] if s else None
        return f'{r["p50_ms"]} / {r["p99_ms"]} ms at {r["offered_rate"]}/s' if r else "-"
    lines.append(f"| p50 / p99 at the clean rate | {lat(a)} | {lat(b)} | |")
    half = None
    if a and a["best"]:
        h = int(a["best"]["offered_rate"]) / 2
        cands = [r for r in a["rows"] if int(r["offered_rate"]) <= h]
        if cands:
            half = max(cands, key=lambda r: int(r["offered_rate"]))
    if half is not None:
        lines.append(f'| sipdesk p99 at ≤ half the clean rate | {half["p99_ms"]} ms at {half["offered_rate"]}/s | | |')
lim_s = os.path.join(out, "sipdesk-all", "limit.txt")
lim_k = os.path.join(out, "kamailio", "limit.txt")
if os.path.exists(lim_s): lines.append("\nlimit check, sipdesk: " + open(lim_s).read().strip())
if os.path.exists(lim_k): lines.append("limit check, Kamailio: " + open(lim_k).read().strip())
rp = os.path.join(out, "rss.txt")
if os.path.exists(rp):
    v = list(map(int, open(rp).read().split()))
    ok, r0, r1 = v[:3]
    lines.append(f"\nRSS with {ok:,} live bindings, 5 s after the last REGISTER: {r1/1024:.1f} MiB (before: {r0/1024:.1f} MiB); {(r1-r0)*1024/max(ok,1):,.0f} bytes per binding")
    if len(v) > 3:
        lines.append(f"RSS 135 s after the last REGISTER (idle: the runtime's periodic GC ran): {v[3]/1024:.1f} MiB; {(v[3]-r0)*1024/max(ok,1):,.0f} bytes per binding")
mp = os.path.join(out, "sipdesk-mem.txt")
if os.path.exists(mp):
    lines.append(f"sipdesk memory after the ladders (kB): {open(mp).read().strip()}")
def full(name, rs):
    if not rs: return
    lines.append(f"\n{name}: every step (workload, offered/s, failed %, achieved/s, p50/p99 ms, srv %, srv µs/op, uac %, uas %, oth %, retrans, status)\n")
    lines.append("```")
    for r in rs:
        lines.append(f'{r["workload"]:8} {r["offered_rate"]:>6} {r["failed_pct"]:>6} {r["achieved_rate"]:>6} {r["p50_ms"]:>4}/{r["p99_ms"]:<5} {r["server_cpu_pct"]:>4} {r["server_cpu_us_per_call"]:>5} {r["uac_cpu_pct"]:>4} {r["uas_cpu_pct"]:>4} {r["other_cpu_pct"]:>4} {r["retrans"]:>6} {r["status"]}')
    lines.append("```")
full("sipdesk", sd)
full("Kamailio", km)
print("\n".join(lines))
PY
}
report | tee "$OUT/table.md"
rc=${PIPESTATUS[0]}
log "table: $OUT/table.md"

# ------------------------------------------------------------ docs
# Only a full run stands for the whole comparison in the doc.
if [ "$rc" = 0 ] && [ "$DOC" = 1 ] && [ "$SHORT" = 0 ] && [ "$KAM" = 1 ] && [ "$RSS" = 1 ] && [ "$WORKLOADS" = "$ALL_WORKLOADS" ]; then
    python3 - "$ROOT/docs/PERFORMANCE.md" "$OUT" "${OUT#"$ROOT"/}" "$STEP_SECS" "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)" \
        "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)" "$(kamailio -v 2>/dev/null | awk 'NR==1{print $3}')" <<'PY' || rc=1
import sys
doc, out, shown, step, rev, cpu, kam = sys.argv[1:8]
begin, end = "<!-- bench-sip:begin -->", "<!-- bench-sip:end -->"
text = open(doc).read()
if begin not in text or end not in text:
    sys.exit(f"bench: {doc} has no {begin} … {end} section")
table = open(out + "/table.md").read().strip()
head = (f"Written by `make bench-sip` from `{shown}` "
        f"(commit {rev or '?'}; {step} s steps; CPU: {cpu or '?'}; Kamailio {kam or '?'}).\n\n")
pre, rest = text.split(begin, 1)
post = rest.split(end, 1)[1]
open(doc, "w").write(pre + begin + "\n" + head + table + "\n" + end + post)
print(f"bench: {doc} updated")
PY
fi
exit "$rc"
