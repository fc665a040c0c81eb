#!/usr/bin/env bash
# Memory bound of hearth-broker (rumqttd): MESSAGES messages from 1 publisher
# over 10 topics to 1 subscriber holding 10 filters (one per topic), with the
# broker's VmRSS/VmHWM (/proc/PID/status) before and after each run. RUNS runs
# go to the same broker process; every run uses new topic names (the bench
# puts its run id in them), so run 2 shows what 10 more filters cost.
# Produces the "memory bound" table in docs/benchmarks.md.
#
# Usage: [QOS=0|1] [MESSAGES=1000000] [RUNS=2] [SEGMENT_SIZE=bytes] [SEGMENT_COUNT=n] \
#        [MAX_PAYLOAD_SIZE=bytes] bench/scripts/broker-memory.sh
# Unset sizes keep the broker defaults (1 MiB x 4 segments per filter,
# 256 KiB payloads; a segment must be larger than max_payload_size).
# Needs: python3, `cargo build --release -p hearth-broker -p hearth-bench`.
set -euo pipefail

QOS=${QOS:-0}
MESSAGES=${MESSAGES:-1000000}
RUNS=${RUNS:-2}
here=$(cd "$(dirname "$0")/../.." && pwd)
bench="$here/target/release/hearth-bench"
hbroker="$here/target/release/hearth-broker"
for b in "$bench" "$hbroker"; do
    [ -x "$b" ] || { echo "build first: cargo build --release -p hearth-broker -p hearth-bench" >&2; exit 1; }
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$work"' EXIT

env_args=("HEARTH_BROKER__LISTEN=127.0.0.1:$port")
[ -n "${SEGMENT_SIZE:-}" ] && env_args+=("HEARTH_BROKER__SEGMENT_SIZE=$SEGMENT_SIZE")
[ -n "${SEGMENT_COUNT:-}" ] && env_args+=("HEARTH_BROKER__SEGMENT_COUNT=$SEGMENT_COUNT")
[ -n "${MAX_PAYLOAD_SIZE:-}" ] && env_args+=("HEARTH_BROKER__MAX_PAYLOAD_SIZE=$MAX_PAYLOAD_SIZE")
env "${env_args[@]}" "$hbroker" >"$work/broker.log" 2>&1 &
pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
mem() { awk '/^VmRSS|^VmHWM/ {sub(":", "", $1); printf "%s=%.1fMB ", $1, $2/1024}' "/proc/$pid/status"; }

echo "# hearth-broker ${env_args[*]:1}; QoS $QOS, $MESSAGES messages, 10 topics, 1 subscriber x 10 filters; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# before: $(mem)"
for run in $(seq "$RUNS"); do
    "$bench" broker --url "mqtt://127.0.0.1:$port" --publishers 1 --subscribers 1 --topics 10 \
        --messages "$MESSAGES" --qos "$QOS" --timeout 300 --json >"$work/run.json"
    python3 - "$work/run.json" "$run" "$(mem)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); l = r["latency"]
print(f'# run {sys.argv[2]}: delivered {r["delivered"]:,} of {r["expected"]:,}, lost {r["lost"]:,}, '
      f'{r["delivered_per_sec"]:,.0f} msgs/s, p50 {l["p50_ns"]/1e6:.2f} ms, max {l["max_ns"]/1e6:.2f} ms; after: {sys.argv[3]}')
PY
done
