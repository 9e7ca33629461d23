#!/usr/bin/env bash
# benches/tls_notify.sh - notification throughput with quorum TLS (issue 15
# Performance): zkfle plaintext, zkfle TLS and Java 3.8 TLS, one after the
# other in one run, each against the leader of a settled 3-peer ensemble
# whose zoo.cfg also lists server.100 as an observer that never runs (the
# tool connects as sid 100). Certificates: `zkfle bench tls-stores`
# (ECDSA P-256, IP:127.0.0.1), the same files for both implementations.
#
#   benches/tls_notify.sh            # from the repository root
#   RUNS=5 DUR=5 WINDOWS="1 64" SIZES="40 44" benches/tls_notify.sh
#
# Prints one line per measurement:
#   notify impl=<zkfle|java> tls=<on|off> size=<40|44> window=<W> run=<i> per_sec=<N> lost=<L>
# Java 3.8 logs two INFO lines per 40-byte notification, so compare Java
# with --size 44 (SIZES). Ports: zkfle plaintext 20401..20603 and
# 20450/20460 (sid 100), zkfle TLS 20001..20203 and 20050/20060, Java
# 20701..20903 and 20950/20960. Stops only what it started.
set -eu

ZKFLE=${ZKFLE:-target/release/zkfle}
S=${ZK_ENSEMBLE:-../shared/tools/zk-ensemble.sh}
RUNS=${RUNS:-3}
DUR=${DUR:-5}
WINDOWS=${WINDOWS:-64}
SIZES=${SIZES:-44}
IMPLS=${IMPLS:-"zkfle-plain zkfle-tls java-tls"}
ZB=20400
ZB_TLS=20000
JB=20700

W=$(mktemp -d /tmp/tls-notify-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && { kill -KILL "$p"; wait "$p"; } 2>/dev/null || true; done
    if [ -d "$W/zk" ]; then ZK_DIR=$W/zk ZK_CLIENT_BASE=$JB ZK_QUORUM_BASE=$((JB + 100)) \
        ZK_ELECTION_BASE=$((JB + 200)) bash "$S" stop >/dev/null 2>&1 || true; fi
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

# one IMPL TLS(on|off) TARGET_ELECTION_PORT CFG_FOR_TLS SIZE WINDOW RUN
one() {
    local impl=$1 tls=$2 port=$3 cfg=$4 size=$5 w=$6 run=$7 out per lost
    local extra=()
    [ "$tls" = on ] && extra=(--tls "$cfg")
    out=$("$ZKFLE" bench notify --peer "127.0.0.1:$port" --sid 100 --window "$w" \
        --size "$size" --duration "$DUR" "${extra[@]}" 2>&1) || { echo "$out" >&2; return 1; }
    per=$(sed -n 's/^notifications_per_sec //p' <<<"$out")
    lost=$(sed -n 's/^sent .* lost \([0-9]*\) .*/\1/p' <<<"$out")
    echo "notify impl=$impl tls=$tls size=$size window=$w run=$run per_sec=$per lost=$lost"
}

# zkfle_ensemble on|off BASE: starts 3 peers (plus sid 100 listed as an
# observer that never runs); prints "PORT CFG" of the leader's election
# port and sid 100's zoo.cfg.
zkfle_ensemble() {
    local tls=$1 zb=$2 d=$W/zkfle-$1 sid servers=""
    for sid in 1 2 3; do servers+="server.$sid=127.0.0.1:$((zb + 100 + sid)):$((zb + 200 + sid))"$'\n'; done
    servers+="server.100=127.0.0.1:$((zb + 50)):$((zb + 60)):observer"$'\n'
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

java_tls() {
    export ZK_DIR=$W/zk ZK_CLIENT_BASE=$JB ZK_QUORUM_BASE=$((JB + 100)) ZK_ELECTION_BASE=$((JB + 200))
    export ZK_EXTRA_CFG="server.100=127.0.0.1:$((JB + 250)):$((JB + 260)):observer
$TLS_LINES"
    ZK_SIZE=3 bash "$S" start >/dev/null
}

echo "# $(date -u +%FT%TZ) $(uptime)"
# All three ensembles up at once (idle peers cost next to nothing), then
# the measurements interleaved run by run, so drifting load on this
# shared machine hits every implementation alike.
declare -A PORT CFG
for impl in $IMPLS; do
    case $impl in
        zkfle-plain) zkfle_ensemble off $ZB ;;
        zkfle-tls) zkfle_ensemble on $ZB_TLS ;;
        java-tls) java_tls ;;
        *) echo "unknown IMPLS entry $impl" >&2; exit 2 ;;
    esac
done
for impl in $IMPLS; do
    case $impl in
        zkfle-plain) l=$(wait_leader $ZB); PORT[$impl]=$((ZB + 200 + l)); CFG[$impl]=$W/zkfle-off/zoo100.cfg ;;
        zkfle-tls) l=$(wait_leader $ZB_TLS); PORT[$impl]=$((ZB_TLS + 200 + l)); CFG[$impl]=$W/zkfle-on/zoo100.cfg ;;
        # The client reads sid 100's stores from a Java zoo.cfg (it lists sid 100).
        java-tls) l=$(wait_leader $JB); PORT[$impl]=$((JB + 200 + l)); CFG[$impl]=$(bash "$S" cfg 1) ;;
    esac
done
for size in $SIZES; do
    for w in $WINDOWS; do
        for run in $(seq 1 "$RUNS"); do
            for impl in $IMPLS; do
                case $impl in
                    zkfle-plain) one zkfle off "${PORT[$impl]}" "${CFG[$impl]}" "$size" "$w" "$run" ;;
                    zkfle-tls) one zkfle on "${PORT[$impl]}" "${CFG[$impl]}" "$size" "$w" "$run" ;;
                    java-tls) one java on "${PORT[$impl]}" "${CFG[$impl]}" "$size" "$w" "$run" ;;
                esac
            done
        done
    done
done
echo "# done $(date -u +%FT%TZ) $(uptime)"
