#!/usr/bin/env bash
# A flat-out burst from Mosquitto's own clients: mosquitto_pub --repeat COUNT
# (64 B, QoS $QOS) into one mosquitto_sub -C COUNT, RUNS times, each against a
# fresh broker on a free port; prints what arrived and the broker's peak RSS.
#
# Usage: [QOS=0|1] [COUNT=100000] bench/scripts/broker-burst.sh [BROKER|mosquitto] [RUNS]
# BROKER defaults to target/release/hearth-broker; `mosquitto` runs Debian's.
here=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-$here/target/release/hearth-broker}; N=${2:-5}; QOS=${QOS:-0}; COUNT=${COUNT:-100000}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for i in $(seq $N); do
  P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if [ "$B" = mosquitto ]; then mosquitto -p $P > "$work/broker.log" 2>&1 & bpid=$!; else HEARTH_BROKER__LISTEN=127.0.0.1:$P $B > "$work/broker.log" 2>&1 & bpid=$!; fi
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$P) 2>/dev/null && break; sleep 0.1; done
  timeout 120 mosquitto_sub -p $P -t burst -q $QOS -C $COUNT -W 60 > "$work/sub.out" 2>/dev/null & spid=$!
  sleep 0.5
  mosquitto_pub -p $P -t burst -q $QOS -m "0123456789012345678901234567890123456789012345678901234567890123" --repeat $COUNT
  wait $spid
  echo "run $i: received $(wc -l < "$work/sub.out") of $COUNT; broker RSS $(awk '/VmHWM/{print $2/1024 " MB"}' /proc/$bpid/status)"
  kill $bpid; wait $bpid 2>/dev/null
done
