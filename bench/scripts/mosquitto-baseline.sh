#!/usr/bin/env bash
# Reproduces the "hearth-bench broker against Mosquitto (baseline)" table in
# docs/benchmarks.md: starts Mosquitto on a free loopback port, runs each
# scenario RUNS times with --json, and prints one markdown row per scenario
# (the run with the median msgs/s, plus the min-max range over all runs).
#
# Usage: bench/scripts/mosquitto-baseline.sh [extra mosquitto.conf lines...]
#   e.g. bench/scripts/mosquitto-baseline.sh 'set_tcp_nodelay true' 'max_queued_messages 0'
# Needs: mosquitto, python3, and `cargo build --release -p hearth-bench` done.
set -euo pipefail

RUNS=${RUNS:-3}
here=$(cd "$(dirname "$0")/../.." && pwd)
bench="$here/target/release/hearth-bench"
[ -x "$bench" ] || { echo "build first: cargo build --release -p hearth-bench" >&2; exit 1; }
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$mosquitto" ] || { echo "install mosquitto: apt-get install -y mosquitto" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
# `mosquitto -h` exits non-zero after printing its version.
version=$("$mosquitto" -h 2>&1 | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' || true)
broker_pid=
trap '[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null; rm -rf "$work"' EXIT
if [ "$#" -eq 0 ]; then
    # Mosquitto's own defaults, as a user who just installed it gets them:
    # without a config file it listens on loopback only.
    "$mosquitto" -p "$port" >"$work/mosquitto.log" 2>&1 &
    label="mosquitto $version (defaults)"
else
    { echo "listener $port 127.0.0.1"; echo "allow_anonymous true"; printf '%s\n' "$@"; } >"$work/mosquitto.conf"
    "$mosquitto" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
    label="mosquitto $version ($(printf '%s; ' "$@" | sed 's/; $//'))"
fi
broker_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

url="mqtt://127.0.0.1:$port"
# name | flags (100k messages in total per scenario)
scenarios=(
    "1->1 QoS 0, max rate|--publishers 1 --messages 100000 --qos 0"
    "10->1 QoS 0, max rate|--publishers 10 --messages 10000 --qos 0"
    "1->1 QoS 1, max rate|--publishers 1 --messages 100000 --qos 1"
    "10->1 QoS 1, max rate|--publishers 10 --messages 10000 --qos 1"
    "1->1 QoS 0, 10k msgs/s|--publishers 1 --messages 100000 --qos 0 --rate 10000"
    "10->1 QoS 1, 10 x 1k msgs/s|--publishers 10 --messages 10000 --qos 1 --rate 1000"
)
for s in "${scenarios[@]}"; do
    name=${s%%|*}
    flags=${s#*|}
    echo "# $bench broker --url $url --subscribers 1 $flags --json   (x$RUNS)" >&2
    for _ in $(seq "$RUNS"); do
        # shellcheck disable=SC2086 # flags are deliberately word-split
        "$bench" broker --url "$url" --subscribers 1 $flags --json
    done >"$work/runs.jsonl"
    python3 - "$name" "$label" "$work/runs.jsonl" <<'PY'
import json, sys
name, label, path = sys.argv[1:]
runs = sorted((json.loads(l) for l in open(path)), key=lambda r: r["delivered_per_sec"])
m = runs[len(runs) // 2]
def t(ns):
    if ns < 1_000_000: return f"{ns/1e3:.0f} µs"
    if ns < 1_000_000_000: return f"{ns/1e6:.2f} ms"
    return f"{ns/1e9:.2f} s"
lat = m["latency"]
spread = f'{runs[0]["delivered_per_sec"]:,.0f}–{runs[-1]["delivered_per_sec"]:,.0f}'
lost = sorted(r["lost"] for r in runs)
lost_txt = str(m["lost"]) if lost[0] == lost[-1] else f'{m["lost"]} ({lost[0]}–{lost[-1]})'
print(f'| {name} | {label} | {m["delivered_per_sec"]:,.0f} ({spread}) | {t(lat["p50_ns"])} | '
      f'{t(lat["p99_ns"])} | {t(lat["max_ns"])} | {lost_txt} | {m["duplicated"]} |')
PY
done
if grep -q "being dropped" "$work/mosquitto.log"; then
    echo "note: mosquitto logged 'Outgoing messages are being dropped' (its queue limit)" >&2
fi
