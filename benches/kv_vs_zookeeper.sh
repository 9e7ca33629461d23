#!/usr/bin/env bash
# Write throughput of the replicated key-value store against Java ZooKeeper
# 3.8's setData, same machine, same run (issue 14 item 8).
#
#   benches/kv_vs_zookeeper.sh [ROUNDS] [SECONDS]      (defaults 3 and 10)
#
# Starts a 3-node zkfle store (target/release/examples/replicated_kv, ports
# 14001-14033) and a 3-peer Java ZooKeeper ensemble (../shared/tools/
# zk-ensemble.sh, ports 14101-14123), both with their data under one
# mktemp -d on the same disk, tickTime 2000 / initLimit 10 / syncLimit 5.
# Then, ROUNDS times, alternating: `zkfle bench kv` (4 connections x 64
# pipelined SETs to the leader) and benches/kv/ZkSetBench.java (javac'd at
# bench time against the ZooKeeper jar: 4 sessions x 64 outstanding async
# setData), WARMUP s (default 5) of load first, then SECONDS measured each.
# Both count a write once the leader acknowledged it (a quorum logged it
# durably, fsync on, and it committed). Prints one line per round and stops
# only the processes it started (by pid / through
# zk-ensemble.sh). It also prints the CPU use (% of one core) of the three
# servers over each measured span and of the client over its whole run, and,
# with `perf` available (tracepoints, root), the fdatasync+fsync calls per
# second of the three servers together ("fsyncs/s"), which shows how many
# writes share one fsync. Env: CONNS, WINDOW, VALUE_BYTES, WARMUP, PERF=0
# (no fsync count), KEEP=1 keeps the dir.
set -euo pipefail
ROUNDS=${1:-3}
SECS=${2:-10}
CONNS=${CONNS:-4}
WINDOW=${WINDOW:-64}
VALUE_BYTES=${VALUE_BYTES:-16}
WARMUP=${WARMUP:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ZKE=${ZK_ENSEMBLE:-$ROOT/../shared/tools/zk-ensemble.sh}
cd "$ROOT"
cargo build --release --quiet --bin zkfle --example replicated_kv
ZKFLE=$ROOT/target/release/zkfle
KVBIN=$ROOT/target/release/examples/replicated_kv
WORK=$(mktemp -d "${TMPDIR:-/tmp}/zkfle-kvbench.XXXXXX")
PIDS=()
export ZK_CLIENT_BASE=14100 ZK_QUORUM_BASE=14110 ZK_ELECTION_BASE=14120
export ZK_DIR=$WORK/java ZK_TICK=2000 ZK_INIT=10 ZK_SYNC=5
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    "$ZKE" stop >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

# zkfle store.
for sid in 1 2 3; do
    mkdir -p "$WORK/kv$sid"
    {
        echo "tickTime=2000"; echo "initLimit=10"; echo "syncLimit=5"
        echo "dataDir=$WORK/kv$sid"
        echo "clientPort=$((14030 + sid))"; echo "clientPortAddress=127.0.0.1"
        echo "4lw.commands.whitelist=*"
        for s in 1 2 3; do
            echo "server.$s=127.0.0.1:$((14010 + s)):$((14020 + s))"
            echo "kvAddress.$s=127.0.0.1:$((14000 + s))"
        done
    } >"$WORK/kv$sid.cfg"
done
for sid in 1 2 3; do
    RUST_LOG=warn "$KVBIN" "$WORK/kv$sid.cfg" --myid $sid 2>"$WORK/kv$sid.log" &
    PIDS+=($!)
done
leader=""
for _ in $(seq 1 300); do
    for sid in 1 2 3; do
        if "$ZKFLE" 4lw 127.0.0.1:$((14030 + sid)) mntr 2>/dev/null | grep -q $'zk_server_state\tleader'; then
            leader=$sid
        fi
    done
    [ -n "$leader" ] && break
    sleep 0.1
done
[ -n "$leader" ] || { echo "no zkfle leader within 30 s" >&2; exit 1; }

# Java ZooKeeper ensemble.
"$ZKE" start 3 >"$WORK/java-start.log" 2>&1
"$ZKE" wait >>"$WORK/java-start.log" 2>&1
JAVA_CP=/usr/share/java/zookeeper.jar
for j in zookeeper-jute slf4j-api slf4j-nop netty-handler netty-transport netty-common netty-buffer netty-resolver netty-codec netty-transport-native-unix-common; do
    [ -r /usr/share/java/$j.jar ] && JAVA_CP="$JAVA_CP:/usr/share/java/$j.jar"
done
# Compiled once (javac), so each round's JVM starts without compiling.
mkdir -p "$WORK/classes"
javac -nowarn -d "$WORK/classes" -cp "$JAVA_CP" "$ROOT/benches/kv/ZkSetBench.java"
JCONNECT=127.0.0.1:14101,127.0.0.1:14102,127.0.0.1:14103

# Over the measured span (started now, it skips the warm-up): the CPU use
# of each given pid in % of one core (user + system, from /proc) into
# "$out.cpu", and with perf the fdatasync+fsync calls per second of all of
# them together into "$out" ("-" without perf).
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
count_fsyncs() {
    local pids=$1 out=$2
    (
        sleep "$WARMUP"
        declare -A t0
        for p in ${pids//,/ }; do t0[$p]=$(cpu_ticks "$p"); done
        if [ "${PERF:-1}" != 0 ] && command -v perf >/dev/null; then
            perf stat -x, -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$pids" -- sleep "$SECS" 2>"$out.raw" >/dev/null || true
            awk -F, -v s="$SECS" '$1 ~ /^[0-9]+$/ { n += $1 } END { printf "%.0f\n", n / s }' "$out.raw" >"$out"
        else
            sleep "$SECS"
            echo - >"$out"
        fi
        cpu=""
        for p in ${pids//,/ }; do
            cpu="$cpu $(( ($(cpu_ticks "$p") - ${t0[$p]}) * 100 / HZ / SECS ))%"
        done
        echo "$cpu" >"$out.cpu"
    ) &
    FS_PID=$!
}
ZPIDS=$(IFS=,; echo "${PIDS[*]}")
# The clients' CPU share over their whole run (warm-up included) from
# /usr/bin/time; "?" without it.
timed() {
    local out=$1
    shift
    if [ -x /usr/bin/time ]; then /usr/bin/time -f %P -o "$out" "$@"; else "$@"; fi
}
JPIDS=$(cat "$ZK_DIR"/node1/pid "$ZK_DIR"/node2/pid "$ZK_DIR"/node3/pid | paste -sd,)

echo "# $(date -u +%FT%TZ) load $(cut -d" " -f1-3 /proc/loadavg); $CONNS connections x $WINDOW outstanding, ${SECS}s measured, ${VALUE_BYTES}-byte values; zkfle leader sid $leader"
for r in $(seq 1 "$ROUNDS"); do
    timed "$WORK/zclient.cpu" "$ZKFLE" bench kv --kv 127.0.0.1:14001,127.0.0.1:14002,127.0.0.1:14003 \
        --connections "$CONNS" --window "$WINDOW" --duration "$SECS" --warmup "$WARMUP" \
        --value-size "$VALUE_BYTES" >"$WORK/zout" &
    CPID=$!
    count_fsyncs "$ZPIDS" "$WORK/zfsync"
    wait "$CPID"
    out=$(cat "$WORK/zout")
    z_rate=$(sed -n 's/^writes_per_sec //p' <<<"$out")
    z_p50=$(sed -n 's/^p50_us //p' <<<"$out")
    z_p99=$(sed -n 's/^p99_us //p' <<<"$out")
    z_err=$(sed -n 's/^errors //p' <<<"$out")
    wait "$FS_PID"
    z_fs=$(cat "$WORK/zfsync")
    z_cpu="$(cat "$WORK/zfsync.cpu") $(tail -1 "$WORK/zclient.cpu" 2>/dev/null || echo ?)"
    timed "$WORK/jclient.cpu" java -cp "$WORK/classes:$JAVA_CP" ZkSetBench "$JCONNECT" "$CONNS" "$WINDOW" "$SECS" "$WARMUP" \
        "$VALUE_BYTES" >"$WORK/jout" 2>>"$WORK/java-client.log" &
    CPID=$!
    count_fsyncs "$JPIDS" "$WORK/jfsync"
    wait "$CPID"
    out=$(cat "$WORK/jout")
    j_rate=$(sed -n 's/^writes_per_sec //p' <<<"$out")
    j_p50=$(sed -n 's/^p50_us //p' <<<"$out")
    j_p99=$(sed -n 's/^p99_us //p' <<<"$out")
    j_err=$(sed -n 's/^errors //p' <<<"$out")
    wait "$FS_PID"
    j_fs=$(cat "$WORK/jfsync")
    j_cpu="$(cat "$WORK/jfsync.cpu") $(tail -1 "$WORK/jclient.cpu" 2>/dev/null || echo ?)"
    ratio=$(awk -v a="$z_rate" -v b="$j_rate" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }')
    echo "round $r cpu (sid 1, 2, 3, client; % of one core): zkfle$z_cpu | zookeeper$j_cpu"
    echo "round $r: zkfle $z_rate writes/s p50 ${z_p50}us p99 ${z_p99}us errors $z_err fsyncs/s $z_fs | zookeeper $j_rate writes/s p50 ${j_p50}us p99 ${j_p99}us errors $j_err fsyncs/s $j_fs | ratio ${ratio}x"
done
