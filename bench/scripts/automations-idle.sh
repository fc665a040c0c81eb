#!/usr/bin/env bash
# What automations cost a hub at rest: RSS with N automations loaded, then
# with N runs pending on a one-hour delay, and the CPU the hub uses over an
# idle window with them pending (one timer for all, so it should be ~0).
# Compares with the same hub and no automations. Produces the "Automations
# at rest" table in docs/benchmarks.md.
#
# Usage: N=10000 IDLE_S=10 bench/scripts/automations-idle.sh
# Needs: python3, curl, mosquitto_pub, and
#   cargo build --release -p hearth-hub
set -euo pipefail
N=${N:-10000}
IDLE_S=${IDLE_S:-10}
here=$(cd "$(dirname "$0")/../.." && pwd)
hub="$here/target/release/hearth-hub"
[ -x "$hub" ] || { echo "build first: cargo build --release -p hearth-hub" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$work"; }
trap cleanup EXIT

# status PID: "rss_kB cpu_ms"
status() {
    local rss ticks
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$1/status")
    ticks=$(awk '{print $14 + $15}' "/proc/$1/stat")
    echo "$rss $(( ticks * 1000 / $(getconf CLK_TCK) ))"
}
metric() { curl -s "http://127.0.0.1:$http/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

run() {
    local n=$1
    python3 - "$n" >"$work/hub.toml" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    print(f'''[[automations]]
id = "a{i}"
triggers = [{{ topic = "bench/go" }}]
actions = [{{ delay_s = 3600 }}, {{ output = "house/light/l{i % 500}", command = "OFF" }}]
''')
PY
    mqtt=$(free_port); http=$(free_port)
    rm -f "$work"/hearth.db*
    local started=$(date +%s%N)
    HEARTH_DATABASE__URL="sqlite://$work/hearth.db" HEARTH_HTTP__LISTEN=127.0.0.1:$http \
        HEARTH_BROKER__LISTEN=127.0.0.1:$mqtt HEARTH_HUB__CLIENT_ID=idle-bench \
        "$hub" --config "$work/hub.toml" >"$work/hub.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/readyz")" = 200 ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$work/hub.log" >&2; exit 1; }
        sleep 0.1
    done
    local ready_ms=$(( ($(date +%s%N) - started) / 1000000 ))
    read -r rss_loaded _ < <(status "$pid")
    if [ "$n" -gt 0 ]; then
        mosquitto_pub -p "$mqtt" -q 1 -t bench/go -m go
        for _ in $(seq 600); do
            [ "$(metric hearth_automation_runs)" = "$n" ] && break
            sleep 0.1
        done
    fi
    local runs; runs=$(metric hearth_automation_runs)
    sleep 2 # let the writer commit the stored runs before the idle window
    read -r rss_pending cpu0 < <(status "$pid")
    sleep "$IDLE_S"
    read -r rss_after cpu1 < <(status "$pid")
    echo "| $n | $ready_ms ms | ${rss_loaded} kB | ${runs:-0} | ${rss_pending} kB | $(( cpu1 - cpu0 )) ms in ${IDLE_S} s |"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
echo "| automations | start to ready | VmRSS loaded | runs pending | VmRSS pending | hub CPU while idle |"
echo "|---|---|---|---|---|---|"
run 0
run "$N"
