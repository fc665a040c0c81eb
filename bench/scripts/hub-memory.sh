#!/usr/bin/env bash
# broker-memory.sh's load against the all-in-one hub: MESSAGES messages from
# 1 publisher over 10 topics to 1 subscriber holding 10 filters, through
# `hearth-hub`'s embedded broker (SQLite in a temporary directory), with the
# hub's VmRSS/VmHWM (/proc/PID/status) before and after each run. RUNS runs
# go to the same hub; every run uses new topic names. With MOSQUITTO=1 (the
# default when mosquitto is installed) the same runs then go to a Mosquitto
# with its defaults, for its figure side by side. Issue 15's goal: the hub
# <= 32 MB after a run. Produces the "all-in-one hub" memory lines in
# docs/benchmarks.md.
#
# Usage: [QOS=0|1] [MESSAGES=1000000] [RUNS=2] [MOSQUITTO=0|1] bench/scripts/hub-memory.sh
# Needs: python3, curl, `cargo build --release -p hearth-hub -p hearth-bench`.
set -euo pipefail

QOS=${QOS:-0}
MESSAGES=${MESSAGES:-1000000}
RUNS=${RUNS:-2}
mosquitto=$(command -v mosquitto || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true)
MOSQUITTO=${MOSQUITTO:-$([ -n "$mosquitto" ] && echo 1 || echo 0)}
here=$(cd "$(dirname "$0")/../.." && pwd)
bench="$here/target/release/hearth-bench"
hub="$here/target/release/hearth-hub"
for b in "$bench" "$hub"; do
    [ -x "$b" ] || { echo "build first: cargo build --release -p hearth-hub -p hearth-bench" >&2; exit 1; }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$work"' EXIT
mem() { awk '/^VmRSS|^VmHWM/ {sub(":", "", $1); printf "%s=%.1fMB ", $1, $2/1024}' "/proc/$pid/status"; }
runs() {  # $1: name, $2: MQTT port; the process is $pid
    echo "# $1 (pid $pid): QoS $QOS, $MESSAGES messages, 10 topics, 1 subscriber x 10 filters; load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# before: $(mem)"
    for run in $(seq "$RUNS"); do
        "$bench" broker --url "mqtt://127.0.0.1:$2" --publishers 1 --subscribers 1 --topics 10 \
            --messages "$MESSAGES" --qos "$QOS" --timeout 300 --json >"$work/run.json"
        python3 - "$work/run.json" "$run" "$(mem)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); l = r["latency"]
print(f'# run {sys.argv[2]}: delivered {r["delivered"]:,} of {r["expected"]:,}, lost {r["lost"]:,}, '
      f'{r["delivered_per_sec"]:,.0f} msgs/s, p50 {l["p50_ns"]/1e6:.2f} ms, max {l["max_ns"]/1e6:.2f} ms; after: {sys.argv[3]}')
PY
    done
}

mqtt_port=$(free_port)
http_port=$(free_port)
HEARTH_DATABASE__URL="sqlite://$work/hearth.db" HEARTH_HTTP__LISTEN="127.0.0.1:$http_port" \
    HEARTH_BROKER__LISTEN="127.0.0.1:$mqtt_port" HEARTH_HUB__CLIENT_ID=hearth-memory-hub \
    "$hub" >"$work/hub.log" 2>&1 &
pid=$!
for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz" 2>/dev/null)" = 200 ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/hub.log" >&2; exit 1; }
    sleep 0.1
done
runs "hearth-hub, embedded broker, SQLite" "$mqtt_port"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

if [ "$MOSQUITTO" = 1 ]; then
    mqtt_port=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mqtt_port" >"$work/mosquitto.conf"
    "$mosquitto" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null && break; sleep 0.1; done
    runs "mosquitto $("$mosquitto" -h 2>/dev/null | awk 'NR==1 {print $3}'), defaults" "$mqtt_port"
fi
