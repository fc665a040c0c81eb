#!/usr/bin/env bash
# Side-by-side runs of `hearth-bench broker` against hearth-broker (embedded
# rumqttd) and Debian's mosquitto, both started here on free loopback ports,
# with each broker's VmRSS/VmHWM (from /proc/PID/status) before and after.
# Produces the tables of "hearth-broker against Mosquitto" in docs/benchmarks.md.
#
# Usage: bench/scripts/broker-compare.sh throughput   # QoS 0/1, 1->1 and 10->1, max rate
#        bench/scripts/broker-compare.sh nodelay      # 10 msgs/s, QoS 0/1, 1->1, 200 messages
#        RATE=100 MESSAGES=1000 bench/scripts/broker-compare.sh nodelay
# throughput: hearth-broker vs mosquitto (defaults + set_tcp_nodelay true); the
#   brokers take turns, run by run (RUNS times each).
# nodelay: hearth-broker vs mosquitto with and without set_tcp_nodelay; the
#   three run at the same time (10 msgs/s each loads nobody), so they share
#   the same background noise.
# Needs: mosquitto, python3, `cargo build --release -p hearth-broker -p hearth-bench`.
set -euo pipefail

mode=${1:-throughput}
RUNS=${RUNS:-3}
here=$(cd "$(dirname "$0")/../.." && pwd)
bench="$here/target/release/hearth-bench"
hbroker="$here/target/release/hearth-broker"
for b in "$bench" "$hbroker"; do
    [ -x "$b" ] || { echo "build first: cargo build --release -p hearth-broker -p hearth-bench" >&2; exit 1; }
done
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$mosquitto" ] || { echo "install mosquitto: apt-get install -y mosquitto" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }
mem() { awk '/^VmRSS|^VmHWM/ {printf "%s %s kB  ", $1, $2}' "/proc/$1/status"; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# name|port|pid of each broker under test
brokers=()
start_hearth() {
    local port; port=$(free_port)
    HEARTH_BROKER__LISTEN=127.0.0.1:$port "$hbroker" >"$work/hearth.log" 2>&1 &
    pids+=($!); wait_port "$port"; brokers+=("hearth-broker|$port|$!")
}
start_mosquitto() { # $1 label, $2.. extra config lines
    local label=$1; shift
    local port; port=$(free_port)
    { echo "listener $port 127.0.0.1"; echo "allow_anonymous true"; printf '%s\n' "$@"; } >"$work/$label.conf"
    "$mosquitto" -c "$work/$label.conf" >"$work/$label.log" 2>&1 &
    pids+=($!); wait_port "$port"; brokers+=("$label|$port|$!")
}

version=$("$mosquitto" -h 2>&1 | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' || true)
case $mode in
throughput)
    start_hearth
    start_mosquitto "mosquitto-$version-nodelay" 'set_tcp_nodelay true'
    scenarios=(
        "1->1 QoS 0, max rate|--publishers 1 --messages 100000 --qos 0"
        "10->1 QoS 0, max rate|--publishers 10 --messages 10000 --qos 0"
        "1->1 QoS 1, max rate|--publishers 1 --messages 100000 --qos 1"
        "10->1 QoS 1, max rate|--publishers 10 --messages 10000 --qos 1"
    )
    ;;
nodelay)
    start_hearth
    start_mosquitto "mosquitto-$version-nodelay" 'set_tcp_nodelay true'
    start_mosquitto "mosquitto-$version-default"
    rate=${RATE:-10}; messages=${MESSAGES:-200}
    scenarios=(
        "1->1 QoS 1, $rate msgs/s|--publishers 1 --messages $messages --qos 1 --rate $rate"
        "1->1 QoS 0, $rate msgs/s|--publishers 1 --messages $messages --qos 0 --rate $rate"
    )
    ;;
*) echo "unknown mode $mode (throughput or nodelay)" >&2; exit 2 ;;
esac

echo "# load: $(uptime)" >&2
for b in "${brokers[@]}"; do IFS='|' read -r name port pid <<<"$b"; echo "# before $name (pid $pid): $(mem "$pid")" >&2; done
: >"$work/runs.jsonl"
for s in "${scenarios[@]}"; do
    sname=${s%%|*}; flags=${s#*|}
    for run in $(seq "$RUNS"); do
        if [ "$mode" = nodelay ]; then
            bp=()
            for b in "${brokers[@]}"; do
                IFS='|' read -r name port pid <<<"$b"
                # shellcheck disable=SC2086 # flags are deliberately word-split
                "$bench" broker --url "mqtt://127.0.0.1:$port" --subscribers 1 $flags --json \
                    | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({"s":sys.argv[1],"b":sys.argv[2],"run":int(sys.argv[3]),"r":r}))' "$sname" "$name" "$run" >"$work/$name.part" &
                bp+=($!)
            done
            for p in "${bp[@]}"; do wait "$p"; done
            cat "$work"/*.part >>"$work/runs.jsonl"; rm -f "$work"/*.part
        else
            for b in "${brokers[@]}"; do
                IFS='|' read -r name port pid <<<"$b"
                # shellcheck disable=SC2086
                "$bench" broker --url "mqtt://127.0.0.1:$port" --subscribers 1 $flags --json \
                    | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({"s":sys.argv[1],"b":sys.argv[2],"run":int(sys.argv[3]),"r":r}))' "$sname" "$name" "$run" >>"$work/runs.jsonl"
            done
        fi
        echo "# $sname run $run done; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    done
done
for b in "${brokers[@]}"; do IFS='|' read -r name port pid <<<"$b"; echo "# after  $name (pid $pid): $(mem "$pid")" >&2; done
if [ -n "${KEEP_JSON:-}" ]; then cp "$work/runs.jsonl" "$KEEP_JSON"; fi
python3 - "$work/runs.jsonl" "$mode" <<'PY'
import json, sys, collections
path, mode = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
def t(ns):
    if ns < 1_000_000: return f"{ns/1e3:.0f} µs"
    if ns < 1_000_000_000: return f"{ns/1e6:.2f} ms"
    return f"{ns/1e9:.2f} s"
by = collections.defaultdict(list)
for r in rows: by[(r["s"], r["b"])].append(r)
scen = list(dict.fromkeys(r["s"] for r in rows)); brok = list(dict.fromkeys(r["b"] for r in rows))
key = (lambda r: r["r"]["delivered_per_sec"]) if mode == "throughput" else (lambda r: r["r"]["latency"]["p99_ns"])
print("| scenario | broker | msgs/s | p50 | p99 | max | lost | dup |")
print("|---|---|---|---|---|---|---|---|")
for s in scen:
    for b in brok:
        rs = sorted(by[(s, b)], key=key); m = rs[len(rs)//2]["r"]; l = m["latency"]
        if mode == "throughput":
            rate = f'{m["delivered_per_sec"]:,.0f} ({rs[0]["r"]["delivered_per_sec"]:,.0f}–{rs[-1]["r"]["delivered_per_sec"]:,.0f})'
            p99 = t(l["p99_ns"])
        else:
            rate = f'{m["delivered_per_sec"]:,.1f}'
            p99 = f'{t(l["p99_ns"])} ({t(rs[0]["r"]["latency"]["p99_ns"])}–{t(rs[-1]["r"]["latency"]["p99_ns"])})'
        lost = sorted(r["r"]["lost"] for r in rs)
        lt = str(m["lost"]) if lost[0] == lost[-1] else f'{m["lost"]} ({lost[0]}–{lost[-1]})'
        print(f'| {s} | {b} | {rate} | {t(l["p50_ns"])} | {p99} | {t(l["max_ns"])} | {lt} | {m["duplicated"]} |')
if mode == "throughput" and len(brok) == 2:
    print()
    print("| scenario | run | " + " / ".join(brok) + " msgs/s | ratio | p50 ratio |")
    print("|---|---|---|---|---|")
    for s in scen:
        pairs = []
        for run in sorted({r["run"] for r in rows if r["s"] == s}):
            a = next(r["r"] for r in rows if r["s"] == s and r["b"] == brok[0] and r["run"] == run)
            b = next(r["r"] for r in rows if r["s"] == s and r["b"] == brok[1] and r["run"] == run)
            pairs.append((a["delivered_per_sec"] / max(b["delivered_per_sec"], 1e-9), run, a, b))
        ratio, run, a, b = sorted(pairs, key=lambda p: p[0])[len(pairs)//2]
        print(f'| {s} | {run} | {a["delivered_per_sec"]:,.0f} / {b["delivered_per_sec"]:,.0f} | {ratio:.2f} | '
              f'{a["latency"]["p50_ns"]/max(b["latency"]["p50_ns"],1):.2f} |')
PY
for b in "${brokers[@]}"; do
    IFS='|' read -r name _ _ <<<"$b"
    [ -f "$work/$name.log" ] && grep -q "being dropped" "$work/$name.log" && echo "note: $name logged 'Outgoing messages are being dropped'" >&2
done
exit 0
