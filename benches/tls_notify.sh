#!/usr/bin/env bash
# benches/tls_notify.sh - notification throughput of zkfle and Java 3.8, with
# and without quorum TLS (issue 15 Performance, issue 18 item 3), in one run,
# each against the leader of a settled 3-peer ensemble whose zoo.cfg also
# lists server.100 and server.101 as observers that never run (the tool
# connects as sid 100, and as 101 for its second connection). Certificates:
# `zkfle bench tls-stores` (ECDSA P-256, IP:127.0.0.1), the same files for
# both implementations.
#
#   benches/tls_notify.sh            # from the repository root
#   RUNS=5 DUR=5 MODES="w1 w64 w64x2 lat" SIZES="44 40" \
#     IMPLS="zkfle-plain java-plain" benches/tls_notify.sh
#
# MODES: w<W> = window W, one connection; w<W>x<C> = window W on each of C
# connections; lat = --mode latency (window 1, p50/p99). WINDOWS="1 64" is
# still accepted and means MODES="w1 w64". IMPLS: any of zkfle-plain,
# zkfle-tls, java-plain, java-tls (default: zkfle-plain zkfle-tls java-tls).
#
# Prints one line per measurement:
#   notify impl=<zkfle|java> tls=<on|off> size=<40|44> window=<W> conns=<C> run=<i> per_sec=<N> lost=<L> [p50_us=<P> p99_us=<Q>]
# and `uptime` before, after each mode and at the end (lines starting with
# #, as are the unrecorded warm-up runs; WARMUP=0 skips those). Java 3.8
# logs two INFO lines per 40-byte notification ("Backward compatibility
# mode"), so compare Java with --size 44; the 40-byte figures measure its
# logging. Java's log level
# is zk-ensemble.sh's ZK_LOG_LEVEL (default INFO, to its log file).
#
# Each measurement holds `flock $LOCK` (default /tmp/zkfle-bench.lock).
# Ports: BASE (default 20000) + 50 per implementation, in IMPLS order of
# the table zkfle-plain, zkfle-tls, java-tls, java-plain: client +1..3,
# quorum +11..13, election +21..23, sid 100 +31/+32, sid 101 +33/+34.
# Stops only what it started.
set -eu

ZKFLE=${ZKFLE:-target/release/zkfle}
S=${ZK_ENSEMBLE:-../shared/tools/zk-ensemble.sh}
RUNS=${RUNS:-3}
DUR=${DUR:-5}
if [ -z "${MODES:-}" ]; then
    MODES=""
    for w in ${WINDOWS:-64}; do MODES+="w$w "; done
fi
SIZES=${SIZES:-44}
IMPLS=${IMPLS:-"zkfle-plain zkfle-tls java-tls"}
BASE=${BASE:-20000}
# Every measurement holds this lock, which other timing runs on the machine
# (election benchmarks) take too; nothing else is done under it.
LOCK=${LOCK:-/tmp/zkfle-bench.lock}

# base_of IMPL: the first port of IMPL's block.
base_of() {
    case $1 in
        zkfle-plain) echo "$BASE" ;;
        zkfle-tls) echo $((BASE + 50)) ;;
        java-tls) echo $((BASE + 100)) ;;
        java-plain) echo $((BASE + 150)) ;;
        *) echo "unknown IMPLS entry $1" >&2; return 2 ;;
    esac
}

W=$(mktemp -d /tmp/tls-notify-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && { kill -KILL "$p"; wait "$p"; } 2>/dev/null || true; done
    for impl in java-tls java-plain; do
        local b
        b=$(base_of $impl)
        if [ -d "$W/$impl" ]; then ZK_DIR=$W/$impl ZK_CLIENT_BASE=$b ZK_QUORUM_BASE=$((b + 10)) \
            ZK_ELECTION_BASE=$((b + 20)) bash "$S" stop >/dev/null 2>&1 || true; fi
    done
    rm -rf "$W"
}
trap cleanup EXIT

fourlw() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf '%s' '$2' >&3 && cat <&3" 2>/dev/null || true; }
mode() { fourlw "$1" srvr | sed -n 's/^Mode: //p'; }
# wait_leader BASE: prints the sid whose client port BASE+sid says leader,
# once sids 1..3 all serve (60 s at most).
wait_leader() {
    local base=$1 t sid m leader n
    for t in $(seq 1 1200); do
        leader=""; n=0
        for sid in 1 2 3; do
            m=$(mode $((base + sid)))
            case "$m" in leader) leader=$sid; n=$((n + 1)) ;; follower) n=$((n + 1)) ;; esac
        done
        if [ "$n" = 3 ] && [ -n "$leader" ]; then echo "$leader"; return 0; fi
        sleep 0.05
    done
    echo "no leader on client ports $((base + 1))..$((base + 3))" >&2
    return 1
}

mkdir -p "$W/certs"
TLS_LINES=$("$ZKFLE" bench tls-stores --dir "$W/certs")

# one IMPL TLS(on|off) TARGET_ELECTION_PORT CFG_FOR_TLS SIZE MODE RUN
one() {
    local impl=$1 tls=$2 port=$3 cfg=$4 size=$5 m=$6 run=$7 out per lost w c p50 p99 lat=""
    local extra=()
    [ "$tls" = on ] && extra+=(--tls "$cfg")
    case $m in
        lat) w=1; c=1; extra+=(--mode latency) ;;
        w*x*) w=${m#w}; c=${w#*x}; w=${w%x*} ;;
        w*) w=${m#w}; c=1 ;;
        *) echo "unknown MODES entry $m" >&2; return 2 ;;
    esac
    out=$(flock "$LOCK" "$ZKFLE" bench notify --peer "127.0.0.1:$port" --sid 100 --window "$w" --connections "$c" \
        --size "$size" --duration "$DUR" "${extra[@]}" 2>&1) || { echo "$out" >&2; return 1; }
    per=$(sed -n 's/^notifications_per_sec //p' <<<"$out")
    lost=$(sed -n 's/^sent .* lost \([0-9]*\) .*/\1/p' <<<"$out")
    if [ "$m" = lat ]; then
        p50=$(sed -n 's/^latency_us p50 \([0-9]*\) .*/\1/p' <<<"$out")
        p99=$(sed -n 's/^latency_us .* p99 \([0-9]*\) .*/\1/p' <<<"$out")
        lat=" p50_us=$p50 p99_us=$p99"
    fi
    echo "notify impl=$impl tls=$tls size=$size window=$w conns=$c run=$run per_sec=$per lost=$lost$lat"
}

observers() { # BASE: the zoo.cfg lines of the two sids the tool connects as
    printf 'server.100=127.0.0.1:%s:%s:observer\nserver.101=127.0.0.1:%s:%s:observer' \
        $(($1 + 31)) $(($1 + 32)) $(($1 + 33)) $(($1 + 34))
}

# zkfle_ensemble on|off BASE: starts 3 peers (plus sids 100 and 101 listed
# as observers that never run).
zkfle_ensemble() {
    local tls=$1 zb=$2 d=$W/zkfle-$1 sid servers=""
    for sid in 1 2 3; do servers+="server.$sid=127.0.0.1:$((zb + 10 + sid)):$((zb + 20 + sid))"$'\n'; done
    servers+="$(observers "$zb")"$'\n'
    for sid in 1 2 3 100; do
        mkdir -p "$d/node$sid"; echo "$sid" > "$d/node$sid/myid"
        {
            echo "tickTime=2000"; echo "initLimit=10"; echo "syncLimit=5"
            echo "dataDir=$d/node$sid"; echo "clientPort=$((zb + sid))"
            echo "clientPortAddress=127.0.0.1"; echo "4lw.commands.whitelist=*"
            printf '%s' "$servers"
            if [ "$tls" = on ]; then printf '%s\n' "$TLS_LINES"; fi
        } > "$d/zoo$sid.cfg"
    done
    for sid in 3 2 1; do
        RUST_LOG=warn "$ZKFLE" run "$d/zoo$sid.cfg" 2>"$d/sid$sid.log" &
        PIDS+=($!)
    done
}

# java_ensemble on|off BASE: three Java 3.8 peers by zk-ensemble.sh.
java_ensemble() {
    local tls=$1 b=$2 impl=java-plain extra
    [ "$tls" = on ] && impl=java-tls
    extra=$(observers "$b")
    [ "$tls" = on ] && extra+=$'\n'"$TLS_LINES"
    ZK_DIR=$W/$impl ZK_CLIENT_BASE=$b ZK_QUORUM_BASE=$((b + 10)) ZK_ELECTION_BASE=$((b + 20)) \
        ZK_EXTRA_CFG="$extra" ZK_SIZE=3 bash "$S" start >/dev/null
}

echo "# $(date -u +%FT%TZ) $(uptime)"
echo "# java log level: ${ZK_LOG_LEVEL:-INFO} (zk-ensemble.sh ZK_LOG_LEVEL)"
# All ensembles up at once (idle peers cost next to nothing), then the
# measurements interleaved run by run, so drifting load on this shared
# machine hits every implementation alike.
declare -A PORT CFG TLS IMPL
for impl in $IMPLS; do
    b=$(base_of "$impl")
    case $impl in
        zkfle-plain) zkfle_ensemble off "$b" ;;
        zkfle-tls) zkfle_ensemble on "$b" ;;
        java-tls) java_ensemble on "$b" ;;
        java-plain) java_ensemble off "$b" ;;
    esac
done
for impl in $IMPLS; do
    b=$(base_of "$impl")
    l=$(wait_leader "$b")
    PORT[$impl]=$((b + 20 + l))
    TLS[$impl]=off; IMPL[$impl]=${impl%-*}
    case $impl in *-tls) TLS[$impl]=on ;; esac
    case $impl in
        zkfle-*) CFG[$impl]=$W/zkfle-${TLS[$impl]}/zoo100.cfg ;;
        # The client reads sid 100's stores from a Java zoo.cfg (it lists sid 100).
        java-*) CFG[$impl]=$(ZK_DIR=$W/$impl ZK_CLIENT_BASE=$b bash "$S" cfg 1) ;;
    esac
done
# One unrecorded window-64 run per implementation first: Java's JIT
# compiles its reply path during the first seconds (its first run was
# 2-3x slower than the rest without this).
if [ "${WARMUP:-1}" = 1 ]; then
    for impl in $IMPLS; do
        DUR=2 one "${IMPL[$impl]}" "${TLS[$impl]}" "${PORT[$impl]}" "${CFG[$impl]}" 44 w64 0 | sed 's/^/# warmup /'
    done
fi
for size in $SIZES; do
    for m in $MODES; do
        for run in $(seq 1 "$RUNS"); do
            for impl in $IMPLS; do
                one "${IMPL[$impl]}" "${TLS[$impl]}" "${PORT[$impl]}" "${CFG[$impl]}" "$size" "$m" "$run"
            done
        done
        echo "# after size=$size mode=$m $(date -u +%T) $(uptime)"
    done
done
echo "# done $(date -u +%FT%TZ) $(uptime)"
