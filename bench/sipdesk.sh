#!/usr/bin/env bash
# make bench-sip: sipdesk against Kamailio with the shared SIP harness
# (../shared/bench/run-kamailio.sh), same data, same machine, one run.
#
#   bench/sipdesk.sh                 full run (about an hour), prints the table
#   bench/sipdesk.sh --short         CI: a few seconds per workload, sipdesk only;
#                                    fails unless every workload has 0 failed calls
#   options: --no-kamailio  --no-rss  --workloads "register limit call ipcall"
#            --only LIST    run only these parts, e.g. --only tcp,tls,steady
#                           (register limit call ipcall rss tcp tls steady
#                           steady-tcp steady-tls; the default is all)
#            --devices N    devices of the steady-state workload [10000]
#            --step-secs S  --pprof (CPU + allocs profiles of sipdesk under load)
#            --trace        with --pprof: a 3 s execution trace too, and its
#                           scheduler-wait and blocking profiles (the tail)
#            --reg-rates L  --call-rates L  --ip-rates L   rates of the UDP ladders
#            --t-reg-rates L  --t-call-rates L   rates of the TCP/TLS ladders
#            --out DIR      --harness PATH  --no-doc  (-h: this text)
#
# Transports (bench/kamailio/kamailio-tcp.cfg for Kamailio, the same
# self-signed certificate for both servers, made here with openssl):
#   tcp, tls     the REGISTER and digest-call ladders over TCP / TLS, one
#                connection per sipp client (-t t1 / -t l1)
#   steady-tcp, steady-tls   10,000 registered devices, one connection each
#                (-t tn / -t ln), refreshing every 60 s with an OPTIONS
#                keepalive every 20 s, for 3 minutes; server CPU per second
#                and memory (bench/scenarios/steady.xml)
# TLS needs a sipp built with TLS (Debian's sip-tester has none): SIPP_TLS,
# else `sipp` if it has TLS, else bench/out/sipp-tls/sipp.
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
SHORT=0 KAM=1 RSS=1 PPROF=0 TRACE=0 DOC=1
ALL_WORKLOADS="register limit call ipcall"
WORKLOADS=$ALL_WORKLOADS
TRANSPORTS="tcp tls"         # ladders over TCP / TLS
STEADY="tcp tls"             # steady-state workload over TCP / TLS
ONLY=0
T_REG_RATES="1000 2000 4000 6000 8000 10000"
T_CALL_RATES="500 1000 1500 2000 2500 3000"
DEVICES=10000 KA_MS=20000 PINGS=2 CYCLES=3 RAMP=500
RAMP_TLS=100                 # sipp makes its TLS handshakes one at a time, in its main loop
TLS_PORT=5063 KAM_TCP_PORT=5072 KAM_TLS_PORT=5073
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
    --trace) TRACE=1; shift ;;
    --no-doc) DOC=0; shift ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --only)
        ONLY=1 WORKLOADS="" TRANSPORTS="" STEADY="" RSS=0
        for w in ${2//,/ }; do
            case "$w" in
            register|limit|call|ipcall) WORKLOADS="$WORKLOADS $w" ;;
            rss) RSS=1 ;;
            tcp|tls) TRANSPORTS="$TRANSPORTS $w" ;;
            steady) STEADY="tcp tls" ;;
            steady-tcp|steady-tls) STEADY="$STEADY ${w#steady-}" ;;
            *) echo "unknown part $w in --only" >&2; exit 2 ;;
            esac
        done
        WORKLOADS=${WORKLOADS# }; TRANSPORTS=${TRANSPORTS# }; STEADY=${STEADY# }
        shift 2 ;;
    --devices) DEVICES=$2; shift 2 ;;
    --step-secs) STEP_SECS=$2; shift 2 ;;
    --reg-rates) REG_RATES=$2; shift 2 ;;
    --call-rates) CALL_RATES=$2; shift 2 ;;
    --ip-rates) IP_RATES=$2; shift 2 ;;
    --t-reg-rates) T_REG_RATES=$2; shift 2 ;;
    --t-call-rates) T_CALL_RATES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --harness) HARNESS=$2; shift 2 ;;
    -h|--help) sed -n 2,40p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [ "$SHORT" = 1 ]; then
    KAM=0 STEP_SECS=2 BINDINGS=2000 PPROF=0
    REG_RATES="200" CALL_RATES="100" IP_RATES="100"
    T_REG_RATES="200" T_CALL_RATES="100"
    # 1,000 devices, a 6 s cycle (two pings 2 s apart, then the refresh), 3 cycles
    [ "$DEVICES" = 10000 ] && DEVICES=1000
    KA_MS=2000 RAMP=500 RAMP_TLS=250
fi

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
[ -x "$HARNESS" ] || die "harness not found: $HARNESS"
SHARED=$(cd "$(dirname "$HARNESS")" && pwd)
command -v sipp >/dev/null || die "sipp not found (apt-get install sip-tester)"
[ "$KAM" = 0 ] || command -v kamailio >/dev/null || die "kamailio not found (apt-get install kamailio kamailio-sqlite-modules), or --no-kamailio"
case " $TRANSPORTS $STEADY " in
*" tls "*)
    [ "$KAM" = 0 ] || [ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || ls /usr/lib/*/kamailio/modules/tls.so >/dev/null 2>&1 \
        || die "Kamailio's tls module not found (apt-get install kamailio-tls-modules), or --no-kamailio"
    has_tls() { case "$("$1" -v 2>&1)" in *-TLS*) return 0 ;; esac; return 1; }   # sipp -v exits 1
    SIPP_TLS=${SIPP_TLS:-}
    if [ -z "$SIPP_TLS" ]; then
        if has_tls sipp; then SIPP_TLS=$(command -v sipp)
        elif [ -x "$ROOT/bench/out/sipp-tls/sipp" ]; then SIPP_TLS=$ROOT/bench/out/sipp-tls/sipp; fi
    fi
    if [ -z "$SIPP_TLS" ] || ! has_tls "$SIPP_TLS"; then
        # No Debian package has a sipp with TLS, so a CI run skips these
        # workloads too, loudly; the edge's TLS listener has its own tests.
        msg="the TLS workloads need a sipp built with TLS (Debian's sip-tester has none; SIPp 3.7 or later built with -DUSE_SSL=1): set SIPP_TLS"
        echo "bench: SKIPPING the TLS workloads: $msg" >&2
        TRANSPORTS=${TRANSPORTS//tls/} STEADY=${STEADY//tls/}
    fi ;;
esac

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
# one self-signed certificate for both servers' TLS (sipp does not verify it);
# ECDSA P-256, what current servers and phones use (an RSA-2048 signature per
# handshake costs the server several times more)
CERT=$OUT/certs/cert.pem KEY=$OUT/certs/key.pem
mkdir -p "$OUT/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj /CN=bench.local \
    -addext subjectAltName=DNS:bench.local,IP:127.0.0.1 -keyout "$KEY" -out "$CERT" 2>/dev/null || die "openssl failed"

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
    # another run on this machine would share the ports (and the load)
    ss -Hlun "src 127.0.0.1:$SIP_PORT" | grep -q . && die "UDP 127.0.0.1:$SIP_PORT is in use (another bench run?)"
    local env=()
    [ "$PPROF" = 1 ] && env=(SIPDESK_PPROF_ADDR=127.0.0.1:$PPROF_PORT)
    env "${env[@]}" taskset -c 0 "$OUT/sipdesk" serve --data "$1" --role all --sip 127.0.0.1:$SIP_PORT \
        --sip-tls 127.0.0.1:$TLS_PORT --sip-tls-cert "$CERT" --sip-tls-key "$KEY" \
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
    PATH=${SIPP_DIR:-}${SIPP_DIR:+:}$PATH "$HARNESS" --data "$DATA" --out "$OUT/$name" --step-secs "$STEP_SECS" \
        --reg-rates "$REG_RATES" --call-rates "$CALL_RATES" --ip-rates "$IP_RATES" "$@" > "$OUT/$name.txt" 2>&1
    tail -n +1 "$OUT/$name/results.csv" 2>/dev/null | sed 1d
}
profile() {   # profile NAME: CPU and allocation profiles while the harness runs
    [ "$PPROF" = 1 ] || return 0
    ( sleep 25
      if [ "$TRACE" = 1 ]; then
          # Where goroutines waited: for a CPU (sched), on locks and
          # channels (sync), in system calls (syscall); `go tool trace FILE`
          # shows the rest.
          ( curl -s -o "$OUT/$1.trace" "http://127.0.0.1:$PPROF_PORT/debug/pprof/trace?seconds=3"
            for k in sched sync syscall; do
                go tool trace -pprof="$k" "$OUT/$1.trace" > "$OUT/$1.$k.pprof" 2>/dev/null
            done ) &
      fi
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

# ------------------------------------------------------------ TCP and TLS
# The REGISTER and digest-call ladders over one TCP or TLS connection per
# sipp client (-t t1 / -t l1), through the shared harness (SIPP_EXTRA,
# KAMAILIO_EXTRA). The IP trunk stays on UDP: its account is an exact
# address:port, and a TCP client's source port is ephemeral.
TLS_ARGS=(-tls_cert "$CERT" -tls_key "$KEY")
# a free UDP port on 127.0.0.1 for a sipp control socket: the harness's fixed
# 8890 is taken now and then by other sipps on a shared machine (they default
# to 8888 and up), and sipp exits when it cannot bind it
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
[ -n "${SIPP_TLS:-}" ] && SIPP_TLS_DIR=$OUT/sipp-tls && mkdir -p "$SIPP_TLS_DIR" && ln -sf "$SIPP_TLS" "$SIPP_TLS_DIR/sipp"
transport_ladders() {   # transport_ladders tcp|tls
    local t=$1 extra rpid=""
    if [ "$t" = tcp ]; then extra="-t t1"; else extra="-t l1 ${TLS_ARGS[*]}"; fi
    extra="$extra -cp $(free_port)"
    start_srv "$OUT/db" "$t"
    if [ "$t" = tls ]; then
        # the harness probes its --target over UDP; sipdesk's TLS port has none
        mkdir -p "$OUT/probe-tls"
        ( cd "$OUT/probe-tls" && exec taskset -c 1 sipp -sf "$ROOT/bench/scenarios/options_uas.xml" -i 127.0.0.1 -bind_local \
            -p "$TLS_PORT" -ci 127.0.0.1 -cp 8896 -mp 6950 -timeout 3600s -nostdin > sipp.out 2>&1 ) &
        rpid=$!
        sleep 0.5
    fi
    log "sipdesk over $t: register call"
    local port=$SIP_PORT; [ "$t" = tls ] && port=$TLS_PORT
    SIPP_DIR=$([ "$t" = tls ] && echo "$SIPP_TLS_DIR") SIPP_EXTRA=$extra \
        harness "sipdesk-$t" --target 127.0.0.1:$port --server-pid "$SRV" --uas-scenario uas_b2bua.xml \
        --workloads "register call" --reg-rates "$T_REG_RATES" --call-rates "$T_CALL_RATES" >/dev/null
    awk '/^VmHWM|^VmRSS/{printf "%s %s ", $1, $2} END{print ""}' "/proc/$SRV/status" > "$OUT/sipdesk-$t-mem.txt"
    [ -n "$rpid" ] && { kill "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null; }
    stop_srv
    if [ "$KAM" = 1 ]; then
        log "kamailio over $t: register call"
        local kx="-f $ROOT/bench/kamailio/kamailio-tcp.cfg" kport=$KAM_TCP_PORT
        [ "$t" = tls ] && kx="$kx -A WITH_TLS -A TLS_CERT=\"$CERT\" -A TLS_KEY=\"$KEY\"" kport=$KAM_TLS_PORT
        SIPP_DIR=$([ "$t" = tls ] && echo "$SIPP_TLS_DIR") SIPP_EXTRA=$extra KAMAILIO_EXTRA=$kx \
            harness "kamailio-$t" --kamailio-port "$kport" --workloads "register call" \
            --reg-rates "$T_REG_RATES" --call-rates "$T_CALL_RATES" >/dev/null
    fi
}
for t in $TRANSPORTS; do transport_ladders "$t"; done

# ------------------------------------------------------------ steady state
# DEVICES registered devices, one connection each (-t tn / -t ln: a sipp
# call is a device and keeps its socket until it ends), started at RAMP/s;
# each pings (OPTIONS) every KA_MS, PINGS times, then refreshes its
# registration, CYCLES times. Sampled every second: the server's CPU (all its
# processes, % of one core), its memory and its established connections.
KPID=""
start_kamailio() {   # start_kamailio tcp|tls PORT DIR: Kamailio as the harness starts it, with kamailio-tcp.cfg
    local t=$1 port=$2 d=$3 tls=()
    mkdir -p "$d"
    cat "$SHARED/kamailio/schema.sql" "$DATA/provision.sql" | python3 -c \
        'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.stdin.read()); c.commit()' "$d/bench.sqlite" \
        || die "kamailio database"
    [ "$t" = tls ] && tls=(-A WITH_TLS -A "TLS_CERT=\"$CERT\"" -A "TLS_KEY=\"$KEY\"")
    taskset -c 0 kamailio -DD -E -f "$ROOT/bench/kamailio/kamailio-tcp.cfg" -A "SIP_PORT=$port" \
        -A "DBURL=\"sqlite://$d/bench.sqlite\"" -A "UAS_URI=\"sip:127.0.0.1:5090\"" -A "CTL_SOCK=\"unix:$d/kamailio_ctl\"" \
        "${tls[@]}" -Y "$d" -P "$d/kamailio.pid" -m 1024 -M 16 -x tlsf -n 4 > "$d/kamailio.log" 2>&1 &
    KPID=$!
    for _ in $(seq 50); do
        [ -S "$d/kamailio_ctl" ] && return 0
        kill -0 "$KPID" 2>/dev/null || { tail "$d/kamailio.log" >&2; die "kamailio exited"; }
        sleep 0.2
    done
}
stop_kamailio() {
    [ -n "$KPID" ] || return 0
    kill -TERM "$KPID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$KPID" 2>/dev/null; wait "$KPID" 2>/dev/null; KPID=""
}
trap 'stop_srv; stop_kamailio' EXIT
HZ=$(getconf CLK_TCK)
# sample PID PORT FILE: one line a second until killed: time, CPU ticks of
# the process and its children, sums over them of PSS (Kamailio's processes
# share memory: PSS counts it once), VmRSS and VmHWM, established
# connections to PORT, processes
sample() {
    local pid=$1 port=$2 f=$3 p t m r h
    echo "time,ticks,pss_kb,rss_kb,hwm_kb,conns,procs" > "$f"
    while kill -0 "$pid" 2>/dev/null; do
        t=0 m=0 r=0 h=0 n=0
        for p in "$pid" $(ps -o pid= --ppid "$pid" 2>/dev/null); do
            n=$((n + 1))
            t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
            m=$((m + $(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
            r=$((r + $(awk '/^VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
            h=$((h + $(awk '/^VmHWM/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
        done
        echo "$(date +%s.%N),$t,$m,$r,$h,$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l),$n" >> "$f"
        sleep 1
    done
}
steady() {   # steady tcp|tls sipdesk|kamailio
    local t=$1 srv=$2 d=$OUT/steady-$1-$2 pid port tflag sp rc
    mkdir -p "$d"
    if [ "$srv" = sipdesk ]; then
        start_srv "$OUT/db" "steady-$t"; pid=$SRV
        port=$SIP_PORT; [ "$t" = tls ] && port=$TLS_PORT
    else
        port=$KAM_TCP_PORT; [ "$t" = tls ] && port=$KAM_TLS_PORT
        start_kamailio "$t" "$port" "$d/kamailio"; pid=$KPID
        sleep 1
    fi
    # Expires: twice the refresh interval, at least 120 s (servers' minimum is 60 s)
    local expires=$(( KA_MS * (PINGS + 1) * 2 / 1000 )); [ "$expires" -ge 120 ] || expires=120
    sed -e "s/@CYCLES@/$CYCLES/; s/@KEEPALIVES@/$PINGS/; s/@KEEPALIVE_MS@/$KA_MS/; s/@EXPIRES@/$expires/g" \
        "$ROOT/bench/scenarios/steady.xml" > "$d/steady.xml"
    local sipp_bin=sipp extra=()
    if [ "$t" = tcp ]; then tflag=tn; else tflag=ln; sipp_bin=$SIPP_TLS extra=("${TLS_ARGS[@]}"); fi
    local ramp=$RAMP; [ "$t" = tls ] && ramp=$RAMP_TLS
    local run_s=$(( DEVICES / ramp + CYCLES * (PINGS + 1) * KA_MS / 1000 ))
    printf 'devices=%s\nramp=%s\nkeepalive_ms=%s\npings=%s\ncycles=%s\nrun_s=%s\nhz=%s\n' \
        "$DEVICES" "$ramp" "$KA_MS" "$PINGS" "$CYCLES" "$run_s" "$HZ" > "$d/info.txt"
    log "steady state over $t, $srv: $DEVICES devices, ${run_s} s"
    sample "$pid" "$port" "$d/samples.csv" & sp=$!
    ( cd "$d" && taskset -c 1 "$sipp_bin" 127.0.0.1:$port -sf "$d/steady.xml" -inf "$DATA/users.csv" -key domain bench.local \
        -t $tflag "${extra[@]}" -i 127.0.0.1 -bind_local -ci 127.0.0.1 -cp "$(free_port)" -mp 6800 \
        -r "$ramp" -rp 1000 -m "$DEVICES" -l "$DEVICES" -max_socket $((DEVICES + 100)) \
        -watchdog_major_maxtriggers 1000 -watchdog_minor_maxtriggers 100000 \
        -timeout $((run_s + 60))s -recv_timeout 10000 -nostdin \
        -trace_stat -stf stat.csv -fd 5 -trace_rtt -rtt_freq 1 -trace_err -error_file errors.log \
        -trace_screen -screen_file screen.log > sipp.out 2> sipp.err )
    rc=$?
    echo "$rc" > "$d/rc"
    kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null
    if [ "$srv" = sipdesk ]; then stop_srv; else stop_kamailio; fi
    sleep 2
}
for t in $STEADY; do
    steady "$t" sipdesk
    [ "$KAM" = 1 ] && steady "$t" kamailio
done

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
    # (--short only checks that the bindings are made: 5 s, to stay within CI's budget)
    if [ "$SHORT" = 1 ]; then sleep 5; else sleep 130; fi
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
python3 - "$OUT" "$SHORT" "$KAM" <<'PY'
import csv, glob, os, sys
out, short, kam = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
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
def steady(t, srv):
    """The steady-state run of transport t on server srv, or None."""
    d = os.path.join(out, f"steady-{t}-{srv}")
    if not os.path.exists(os.path.join(d, "info.txt")): return None
    info = dict(l.strip().split("=", 1) for l in open(os.path.join(d, "info.txt")) if "=" in l)
    res = dict(devices=int(info["devices"]), rc=open(os.path.join(d, "rc")).read().strip() if os.path.exists(os.path.join(d, "rc")) else "?")
    st = list(csv.DictReader(open(os.path.join(d, "stat.csv")), delimiter=";")) if os.path.exists(os.path.join(d, "stat.csv")) else []
    res["ok"] = int(st[-1]["SuccessfulCall(C)"]) if st else 0
    res["failed"] = int(st[-1]["FailedCall(C)"]) if st else res["devices"]
    rt = {"1": [], "2": []}
    for p in glob.glob(os.path.join(d, "*_rtt.csv")):
        for r in csv.reader(open(p), delimiter=";"):
            if len(r) == 3 and r[2] in rt: rt[r[2]].append(float(r[1]))
    def pct(v, q):
        if not v: return None
        v = sorted(v); return v[min(len(v) - 1, int(len(v) * q))]
    for k, name in (("1", "reg"), ("2", "opt")):
        res[name] = len(rt[k]); res[name + "_p50"] = pct(rt[k], 0.5); res[name + "_p99"] = pct(rt[k], 0.99)
    sm = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(open(os.path.join(d, "samples.csv")))]
    if len(sm) < 3: return res
    hz, t0 = float(info["hz"]), sm[0]["time"]
    ramp = res["devices"] / float(info["ramp"])
    lo, hi = t0 + ramp + 3, t0 + float(info["run_s"]) - 2   # all connected .. before the first device ends
    win = [r for r in sm if lo <= r["time"] <= hi]
    per_s = [100 * (b["ticks"] - a["ticks"]) / hz / (b["time"] - a["time"]) for a, b in zip(win, win[1:])]
    if len(win) > 1:
        res["cpu_mean"] = 100 * (win[-1]["ticks"] - win[0]["ticks"]) / hz / (win[-1]["time"] - win[0]["time"])
        res["cpu_max"] = max(per_s)
        res["win_s"] = win[-1]["time"] - win[0]["time"]
        res["rss_start"], res["rss_end"] = win[0]["pss_kb"], win[-1]["pss_kb"]
    ru = [r for r in sm if r["time"] <= lo]
    if len(ru) > 1: res["cpu_ramp"] = 100 * (ru[-1]["ticks"] - ru[0]["ticks"]) / hz / (ru[-1]["time"] - ru[0]["time"])
    reqs = 2 * res["reg"] + res["opt"]
    res["us_per_req"] = 1e6 * (sm[-1]["ticks"] - sm[0]["ticks"]) / hz / reqs if reqs else None
    res["conns"] = max(int(r["conns"]) for r in sm)
    res["rss"], res["hwm"] = sm[-1]["pss_kb"], max(r["hwm_kb"] for r in sm)
    res["procs"] = int(sm[-1]["procs"])
    return res
def steady_ok(r):
    return r is not None and r["rc"] == "0" and r["failed"] == 0 and r["ok"] == r["devices"]

lines = []
if short:
    bad = [r for r in sd if f(r["failed_pct"]) != 0.0]
    for r in sd: lines.append(f'{r["workload"]:8} {r["offered_rate"]:>5}/s  {r["successful"]}/{r["calls"]} ok  failed {r["failed_pct"]}%  p99 {r["p99_ms"]} ms')
    for t in ("tcp", "tls"):
        for r in rows(f"sipdesk-{t}"):
            if f(r["failed_pct"]) != 0.0: bad.append(r)
            lines.append(f'{r["workload"] + "/" + t:12} {r["offered_rate"]:>5}/s  {r["successful"]}/{r["calls"]} ok  failed {r["failed_pct"]}%  p99 {r["p99_ms"]} ms')
        s = steady(t, "sipdesk")
        if s is None: continue
        if not steady_ok(s): bad.append(s)
        lines.append(f'steady/{t}   {s["ok"]}/{s["devices"]} devices ok (sipp rc {s["rc"]}), {s["reg"]} registrations p99 {s["reg_p99"]} ms, '
                     f'{s["opt"]} OPTIONS p99 {s["opt_p99"]} ms, {s.get("conns", 0)} connections, CPU {s.get("cpu_mean", 0):.0f}% of a core')
    lim = os.path.join(out, "sipdesk-all", "limit.txt")
    if os.path.exists(lim): lines.append(open(lim).read().strip())
    print("\n".join(lines))
    sys.exit(1 if bad or (os.path.exists(lim) and "PASS" not in open(lim).read()) else 0)
names = {"register": "REGISTER (digest 401)", "call": "INVITE digest (407) + limit + Caller ID", "ipcall": "INVITE from IP trunk + limit"}
over = {"": "", "tcp": " over TCP (one connection)", "tls": " over TLS (one connection)"}
sections = [(w, "", sd, km) for w in ["register", "call", "ipcall"]]
sections += [(w, t, rows(f"sipdesk-{t}"), rows(f"kamailio-{t}")) for t in ("tcp", "tls") for w in ("register", "call")]
for w, t, sdr, kmr in sections:
    a, b = summary(sdr, w), summary(kmr, w)
    if not a and not b: continue
    lines.append(f"\n### {names[w]}{over[t]}\n")
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
def kb(v): return "-" if v is None else f"{v/1024:,.1f} MiB"
def num(v, d=0, unit=""): return "-" if v is None else f"{v:,.{d}f}{unit}"
def rat(x, y): return "-" if x is None or y is None or not y else f"{x/y:.2f}"
for t in ("tcp", "tls"):
    a, b = steady(t, "sipdesk"), steady(t, "kamailio")
    if not a and not b: continue
    g = lambda s, k: s.get(k) if s else None
    n = (a or b)["devices"]
    lines.append(f"\n### Steady state over {t.upper()}: {n:,} registered devices, one connection each\n")
    lines.append("| | sipdesk | Kamailio | sipdesk/Kamailio |")
    lines.append("|---|---|---|---|")
    lines.append(f"| devices that ran to the end / failed | {num(g(a,'ok'))} / {num(g(a,'failed'))} | {num(g(b,'ok'))} / {num(g(b,'failed'))} | |")
    lines.append(f"| connections at the server (peak) | {num(g(a,'conns'))} | {num(g(b,'conns'))} | |")
    lines.append(f"| registrations (p50 / p99 ms) | {num(g(a,'reg'))} ({num(g(a,'reg_p50'))} / {num(g(a,'reg_p99'))}) | {num(g(b,'reg'))} ({num(g(b,'reg_p50'))} / {num(g(b,'reg_p99'))}) | |")
    lines.append(f"| OPTIONS keepalives (p50 / p99 ms) | {num(g(a,'opt'))} ({num(g(a,'opt_p50'))} / {num(g(a,'opt_p99'))}) | {num(g(b,'opt'))} ({num(g(b,'opt_p50'))} / {num(g(b,'opt_p99'))}) | |")
    lines.append(f"| CPU while connecting, % of one core | {num(g(a,'cpu_ramp'), 1)} | {num(g(b,'cpu_ramp'), 1)} | {rat(g(a,'cpu_ramp'), g(b,'cpu_ramp'))} |")
    lines.append(f"| CPU in the steady state, mean % of one core ({num(g(a,'win_s'))} s) | {num(g(a,'cpu_mean'), 1)} | {num(g(b,'cpu_mean'), 1)} | {rat(g(a,'cpu_mean'), g(b,'cpu_mean'))} |")
    lines.append(f"| CPU in the steady state, busiest second | {num(g(a,'cpu_max'), 1)} | {num(g(b,'cpu_max'), 1)} | {rat(g(a,'cpu_max'), g(b,'cpu_max'))} |")
    lines.append(f"| CPU µs per request (whole run, connecting included) | {num(g(a,'us_per_req'))} | {num(g(b,'us_per_req'))} | {rat(g(a,'us_per_req'), g(b,'us_per_req'))} |")
    lines.append(f"| memory when all are connected → at the end (PSS) | {kb(g(a,'rss_start'))} → {kb(g(a,'rss_end'))} | {kb(g(b,'rss_start'))} → {kb(g(b,'rss_end'))} | {rat(g(a,'rss_end'), g(b,'rss_end'))} |")
    lines.append(f"| peak memory (VmHWM; Kamailio: summed over its {num(g(b,'procs'))} processes) | {kb(g(a,'hwm'))} | {kb(g(b,'hwm'))} | {rat(g(a,'hwm'), g(b,'hwm'))} |")
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
for t in ("tcp", "tls"):
    full(f"sipdesk over {t.upper()}", rows(f"sipdesk-{t}"))
    full(f"Kamailio over {t.upper()}", rows(f"kamailio-{t}"))
print("\n".join(lines))
PY
}
report | tee "$OUT/table.md"
rc=${PIPESTATUS[0]}
log "table: $OUT/table.md"

# ------------------------------------------------------------ docs
# Only a full run stands for the whole comparison in the doc.
if [ "$rc" = 0 ] && [ "$DOC" = 1 ] && [ "$SHORT" = 0 ] && [ "$KAM" = 1 ] && [ "$RSS" = 1 ] && [ "$WORKLOADS" = "$ALL_WORKLOADS" ] \
    && [ "$TRANSPORTS" = "tcp tls" ] && [ "$STEADY" = "tcp tls" ]; then
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
