#!/usr/bin/env bash
# Runs `hearth-bench buttons` against a real hub at 10, 100, 1,000 and
# 10,000 presses/s and flat out, RUNS times each, and prints one markdown row per
# rate (the run with the median p99, with the p99 range over the runs),
# then checks the database itself: the sum of press_count must equal every
# press sent. Produces the "hearth-bench buttons" tables in docs/benchmarks.md.
#
# Usage: bench/scripts/hub-buttons.sh LAYOUT [sqlite|POSTGRES_URL]
#   LAYOUT separate: hearth-broker and hearth-hub as two processes (Kubernetes layout)
#          embedded: hearth-hub with its embedded broker (the default install)
#          mosquitto, mosquitto-nodelay: hearth-hub against Debian's mosquitto
#            with its defaults, or with set_tcp_nodelay true
#   RATES="10 100" runs only those rows (10 100 1000 10000 max).
#   AUTOMATIONS=200: the hub runs 200 automations (a realistic mix, see
#     `hearth-bench buttons --automations`) instead of one rule per button.
#   LIVE_VIEWS=N: N dashboards' event streams (/api/v1/events, curl) stay
#     open through the runs, so the live logbook sends every batch.
#   POSTGRES_URL: a server URL such as postgres://postgres@127.0.0.1:55433/postgres;
#     a database hearth_bench_<pid> is created in it and dropped afterwards.
# Needs: python3, sqlite3 or psql, and
#   cargo build --release -p hearth-broker -p hearth-hub -p hearth-bench
set -euo pipefail

layout=${1:?separate, embedded, mosquitto or mosquitto-nodelay}
db=${2:-sqlite}
RUNS=${RUNS:-3}
BUTTONS=${BUTTONS:-10}
here=$(cd "$(dirname "$0")/../.." && pwd)
bin="$here/target/release"
for b in hearth-bench hearth-broker hearth-hub; do
    [ -x "$bin/$b" ] || { echo "build first: cargo build --release -p hearth-broker -p hearth-hub -p hearth-bench" >&2; exit 1; }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1:" >&2; cat "$work"/*.log >&2; exit 1; }

work=$(mktemp -d)
pids=()
pgdb=
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    if [ -n "$pgdb" ]; then psql -q "$db" -c "drop database if exists $pgdb" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ "$db" = sqlite ]; then
    db_url="sqlite://$work/hearth.db"
else
    pgdb="hearth_bench_$$"
    psql -q "$db" -c "create database $pgdb" >/dev/null
    db_url="${db%/*}/$pgdb"
fi
"$bin/hearth-bench" buttons --buttons "$BUTTONS" ${AUTOMATIONS:+--automations "$AUTOMATIONS"} --write-rules "$work/rules.toml" 2>/dev/null
mqtt_port=$(free_port)
http_port=$(free_port)
# Only for the hub: hearth-broker refuses settings it does not know.
hub_env=("HEARTH_DATABASE__URL=$db_url" "HEARTH_HTTP__LISTEN=127.0.0.1:$http_port" "HEARTH_HUB__CLIENT_ID=hearth-bench-hub")
case $layout in
separate)
    HEARTH_BROKER__LISTEN=127.0.0.1:$mqtt_port "$bin/hearth-broker" >"$work/broker.log" 2>&1 &
    pids+=($!); wait_port "$mqtt_port" ;;
mosquitto|mosquitto-nodelay)
    { echo "listener $mqtt_port 127.0.0.1"; echo "allow_anonymous true"
      [ "$layout" = mosquitto-nodelay ] && echo "set_tcp_nodelay true"; } >"$work/mosquitto.conf"
    "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
    pids+=($!); wait_port "$mqtt_port" ;;
embedded) ;;
*) echo "unknown layout $layout" >&2; exit 2 ;;
esac
if [ "$layout" != embedded ]; then
    env "${hub_env[@]}" HEARTH_BROKER__EMBEDDED=false HEARTH_MQTT__URL=mqtt://127.0.0.1:$mqtt_port \
        "$bin/hearth-hub" --config "$work/rules.toml" >"$work/hub.log" 2>&1 &
else
    env "${hub_env[@]}" HEARTH_BROKER__LISTEN=127.0.0.1:$mqtt_port \
        "$bin/hearth-hub" --config "$work/rules.toml" >"$work/hub.log" 2>&1 &
fi
hub_pid=$!
pids+=("$hub_pid")
for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz" 2>/dev/null)" = 200 ] && break
    kill -0 "$hub_pid" 2>/dev/null || { cat "$work/hub.log" >&2; exit 1; }
    sleep 0.1
done

for view in $(seq "${LIVE_VIEWS:-0}"); do
    curl -sN "http://127.0.0.1:$http_port/api/v1/events" >"$work/events.$view" 2>/dev/null &
    pids+=($!)
done

case $layout in
separate) broker_label="hearth-broker process" ;;
embedded) broker_label="embedded broker" ;;
*) broker_label=$layout ;;
esac
# An `if`, not `[ ] && echo`: under set -e a false test ending a command
# substitution in an assignment stops the script.
views=""
if [ "${LIVE_VIEWS:-0}" -gt 0 ]; then views=", $LIVE_VIEWS live views"; fi
label="$broker_label, $( [ "$db" = sqlite ] && echo SQLite || echo Postgres )${AUTOMATIONS:+, $AUTOMATIONS automations}$views"
all=(
    "10|10 presses/s|--presses 300 --rate 10"
    "100|100 presses/s|--presses 3000 --rate 100"
    "1000|1,000 presses/s|--presses 10000 --rate 1000"
    "10000|10,000 presses/s|--presses 50000 --rate 10000"
    "max|max rate|--presses 50000 --rate 0"
)
scenarios=()
for s in "${all[@]}"; do
    case " ${RATES:-10 100 1000 10000 max} " in *" ${s%%|*} "*) scenarios+=("${s#*|}") ;; esac
done
echo "# $label; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
total=0
: >"$work/runs.jsonl"
for s in "${scenarios[@]}"; do
    name=${s%%|*}; flags=${s#*|}
    for run in $(seq "$RUNS"); do
        # shellcheck disable=SC2086 # flags are deliberately word-split
        "$bin/hearth-bench" buttons --url "mqtt://127.0.0.1:$mqtt_port" --hub-http "http://127.0.0.1:$http_port" \
            --buttons "$BUTTONS" $flags --timeout 300 --json \
            | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({"s":sys.argv[1],"r":r}))' "$name" >>"$work/runs.jsonl"
        total=$(python3 -c 'import json,sys; print(sum(json.loads(l)["r"]["sent"] for l in open(sys.argv[1])))' "$work/runs.jsonl")
        echo "# $name run $run: $(tail -1 "$work/runs.jsonl" | python3 -c 'import json,sys; r=json.load(sys.stdin)["r"]; l=r["latency"]; print("p50 %.2f ms p99 %.2f ms max %.2f ms lost %d rate %.0f/s" % (l["p50_ns"]/1e6, l["p99_ns"]/1e6, l["max_ns"]/1e6, r["lost"], r["presses_per_sec"]))'); load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    done
done
echo "# hub VmRSS/VmHWM: $(awk '/^VmRSS|^VmHWM/ {printf "%s %s kB  ", $1, $2}' "/proc/$hub_pid/status")" >&2
if [ "$db" = sqlite ]; then
    stored=$(sqlite3 "$work/hearth.db" 'select coalesce(sum(press_count),0) from buttons')
else
    stored=$(psql -qtA "$db_url" -c 'select coalesce(sum(press_count),0) from buttons')
fi
echo "# database: sum(press_count) = $stored, presses sent = $total" >&2
if [ "${LIVE_VIEWS:-0}" -gt 0 ]; then
    echo "# live view 1 received: $(grep -c '^event: logbook$' "$work/events.1") logbook events, $(grep -o '"entity":' "$work/events.1" | wc -l) entries" >&2
fi
[ -n "${KEEP_JSON:-}" ] && cp "$work/runs.jsonl" "$KEEP_JSON"
python3 - "$work/runs.jsonl" "$label" <<'PY'
import json, sys, collections
path, label = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
def t(ns):
    if ns < 1_000_000: return f"{ns/1e3:.0f} µs"
    if ns < 1_000_000_000: return f"{ns/1e6:.2f} ms"
    return f"{ns/1e9:.2f} s"
by = collections.defaultdict(list)
for r in rows: by[r["s"]].append(r["r"])
for s, rs in by.items():
    rs.sort(key=lambda r: r["latency"]["p99_ns"]); m = rs[len(rs)//2]; l = m["latency"]; h = m.get("hub") or {}
    lost = ", ".join(str(r["lost"]) for r in rs)
    counted = ", ".join(f'{(r.get("hub") or {}).get("presses", "?")}/{r["acked"]}' for r in rs)
    print(f'| {s} | {label} | {t(l["p50_ns"])} | {t(l["p99_ns"])} ({t(rs[0]["latency"]["p99_ns"])}–{t(rs[-1]["latency"]["p99_ns"])}) | '
          f'{t(l["max_ns"])} | {m["presses_per_sec"]:,.0f} | {m["commands_per_sec"]:,.0f} | {lost} | {counted} | '
          f'{h.get("db_commits", "?")} x {h.get("db_commit_mean_us", 0)/1e3:.2f} ms |')
PY
