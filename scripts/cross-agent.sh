#!/usr/bin/env bash
# Cross-builds hearth-node-agent for Raspberry Pi OS (64-bit aarch64 and
# 32-bit armv7) and smoke-tests each binary under qemu-user against a real
# broker: a command goes in with mosquitto_pub, the state comes out on
# mosquitto_sub, and SIGTERM leaves `offline` behind.
#
# Runs on a fresh Debian bookworm, as root or as a user with sudo; installs
# what is missing (Rust via rustup if absent, the two rustup targets, cross
# gcc + libc, qemu-user-static, mosquitto and mosquitto-clients). Only apt-get
# goes through sudo: rustup and its targets are the invoking user's own.
# Linkers are set through environment variables only; ~/.cargo/config is
# left alone.
#
# Usage: scripts/cross-agent.sh [--no-install]
# Prints binary sizes, timings and PASS/FAIL per target; exits non-zero on
# any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
declare -A GNU=(
  [aarch64-unknown-linux-gnu]=aarch64-linux-gnu
  [armv7-unknown-linux-gnueabihf]=arm-linux-gnueabihf
)
declare -A QEMU=(
  [aarch64-unknown-linux-gnu]=qemu-aarch64-static
  [armv7-unknown-linux-gnueabihf]=qemu-arm-static
)
APT_PACKAGES=(
  ca-certificates curl gcc libc6-dev
  gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
  libc6-dev-arm64-cross libc6-dev-armhf-cross
  qemu-user-static mosquitto mosquitto-clients
)
STEP_TIMEOUT=20   # seconds for any single smoke-test wait
INSTALL=1
[[ "${1:-}" == "--no-install" ]] && INSTALL=0

log() { printf '==> %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- install
install_missing() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
  fi
  if ! command -v rustup >/dev/null 2>&1; then
    log "installing rustup (the toolchain comes from rust-toolchain.toml)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
      | sh -s -- -y --profile minimal --default-toolchain none
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
  fi
  # Inside the repo, rustup acts on the toolchain rust-toolchain.toml pins.
  local installed
  installed="$(rustup target list --installed 2>/dev/null || true)"
  for target in "${TARGETS[@]}"; do
    if ! grep -qx "$target" <<<"$installed"; then
      log "rustup target add $target"
      rustup target add "$target"
    fi
  done
}

# ---------------------------------------------------------------- helpers
port_in_use() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    port_in_use "$port" || { echo "$port"; return 0; }
  done
  echo "no free port found" >&2
  return 1
}

wait_port() {
  local port=$1 deadline=$((SECONDS + STEP_TIMEOUT))
  until port_in_use "$port"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

PIDS=()
WORK="$(mktemp -d)"
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts a broker on $1: the host's hearth-broker if built, else mosquitto.
start_broker() {
  local port=$1 broker=""
  for candidate in target/release/hearth-broker target/debug/hearth-broker; do
    [[ -x "$candidate" ]] && { broker="$candidate"; break; }
  done
  if [[ -n "$broker" ]]; then
    HEARTH_BROKER__LISTEN="127.0.0.1:$port" HEARTH_LOG=warn "$broker" >"$WORK/broker-$port.log" 2>&1 &
    BROKER_KIND="$broker"
  else
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$WORK/mosquitto-$port.conf"
    mosquitto -c "$WORK/mosquitto-$port.conf" >"$WORK/broker-$port.log" 2>&1 &
    BROKER_KIND=mosquitto
  fi
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  wait_port "$port"
}

# ---------------------------------------------------------------- build
build() {
  local target=$1 gnu=${GNU[$1]} upper
  upper="$(tr 'a-z-' 'A-Z_' <<<"$target")"
  export "CARGO_TARGET_${upper}_LINKER=${gnu}-gcc"
  export "CC_${target//-/_}=${gnu}-gcc"
  # The agent is run under qemu below; the hub and the broker are built
  # too, because the container image cross-compiles all three the same way.
  cargo build --release --locked -p hearth-node-agent -p hearth-hub -p hearth-broker --target "$target"
}

# ---------------------------------------------------------------- smoke test
smoke() {
  local target=$1 bin="target/$1/release/hearth-node-agent"
  local qemu=${QEMU[$1]} sysroot="/usr/${GNU[$1]}"
  local node="cross-${1%%-*}" port cfg agent_pid t0 state offline
  # The hub and the broker start under qemu and read their example configs.
  "$qemu" -L "$sysroot" "target/$1/release/hearth-hub" --check-config --config hub/hearth.example.toml \
    || { log "$target: hearth-hub --check-config failed under qemu"; return 1; }
  # The example's placeholder password is refused on its LAN listener (as
  # it should be); a user's own password, from the environment, is not.
  HEARTH_BROKER__USERS__HUB="smoke-$(date +%s%N)" \
    "$qemu" -L "$sysroot" "target/$1/release/hearth-broker" --check-config --config broker/broker.example.toml \
    || { log "$target: hearth-broker --check-config failed under qemu"; return 1; }
  port="$(free_port)"
  start_broker "$port" || { log "$target: broker did not start"; return 1; }
  cfg="$WORK/$node.toml"
  cat >"$cfg" <<EOF
[node]
id = "$node"
[mqtt]
url = "mqtt://127.0.0.1:$port"
[[outputs]]
name = "red"
kind = "light"
pin = 17
[[sequences]]
name = "blink"
steps = [{ on = ["red"], duration_ms = 500 }, { on = [], duration_ms = 500 }]
[sensor]
interval_secs = 2
EOF
  local prefix="hearth/node/$node"
  t0=$(now_ms)
  HEARTH_LOG=info "$qemu" -L "$sysroot" "$bin" --simulate --config "$cfg" >"$WORK/$node.log" 2>&1 &
  agent_pid=$!
  PIDS+=("$agent_pid")

  if [[ "$(mosquitto_sub -p "$port" -t "$prefix/availability" -C 1 -W "$STEP_TIMEOUT" 2>/dev/null)" != online ]]; then
    log "$target: agent never came online"; sed 's/^/    /' "$WORK/$node.log" >&2; return 1
  fi
  printf '  %-32s online after %d ms (%s)\n' "$target" $(($(now_ms) - t0)) "$BROKER_KIND"

  mosquitto_sub -p "$port" -t "$prefix/light/red/state" -R -C 1 -W "$STEP_TIMEOUT" >"$WORK/$node.state" 2>/dev/null &
  local sub=$!
  sleep 0.3
  t0=$(now_ms)
  mosquitto_pub -p "$port" -t "$prefix/light/red/set" -m ON
  wait "$sub" || true
  state="$(cat "$WORK/$node.state")"
  [[ "$state" == ON ]] || { log "$target: red state was '$state', expected ON"; return 1; }
  printf '  %-32s command -> state ON in %d ms\n' "$target" $(($(now_ms) - t0))

  local climate
  climate="$(mosquitto_sub -p "$port" -t "$prefix/climate/temperature" -C 1 -W "$STEP_TIMEOUT" 2>/dev/null || true)"
  [[ -n "$climate" ]] || { log "$target: no climate reading"; return 1; }
  printf '  %-32s simulated DHT11: %s C\n' "$target" "$climate"

  mosquitto_sub -p "$port" -t "$prefix/availability" -R -C 1 -W "$STEP_TIMEOUT" >"$WORK/$node.offline" 2>/dev/null &
  sub=$!
  sleep 0.3
  t0=$(now_ms)
  kill -TERM "$agent_pid"
  local deadline=$((SECONDS + STEP_TIMEOUT)) code=0
  while kill -0 "$agent_pid" 2>/dev/null; do
    ((SECONDS < deadline)) || { log "$target: still running after SIGTERM"; return 1; }
    sleep 0.02
  done
  wait "$agent_pid" || code=$?
  local took=$(($(now_ms) - t0))
  wait "$sub" || true
  offline="$(cat "$WORK/$node.offline")"
  kill "$BROKER_PID" 2>/dev/null || true
  [[ "$offline" == offline ]] || { log "$target: availability was '$offline', expected offline"; return 1; }
  ((code == 0)) || { log "$target: agent exited with $code"; return 1; }
  printf '  %-32s SIGTERM -> offline, exit 0 in %d ms\n' "$target" "$took"
}

# ---------------------------------------------------------------- main
((INSTALL)) && install_missing
for tool in cargo mosquitto_pub mosquitto_sub "${QEMU[@]}"; do
  command -v "$tool" >/dev/null || { echo "missing $tool (run without --no-install)" >&2; exit 2; }
done

declare -A RESULT
for target in "${TARGETS[@]}"; do
  log "building hearth-node-agent for $target"
  start=$SECONDS
  if build "$target"; then
    bin="target/$target/release/hearth-node-agent"
    cp "$bin" "$WORK/stripped"
    "${GNU[$target]}-strip" "$WORK/stripped"
    printf '  %-32s built in %d s: %s bytes (%s), stripped %s bytes (%s)\n' "$target" $((SECONDS - start)) \
      "$(stat -c %s "$bin")" "$(numfmt --to=iec "$(stat -c %s "$bin")")" \
      "$(stat -c %s "$WORK/stripped")" "$(numfmt --to=iec "$(stat -c %s "$WORK/stripped")")"
    log "smoke-testing $target under ${QEMU[$target]}"
    if smoke "$target"; then RESULT[$target]=PASS; else RESULT[$target]=FAIL; fi
  else
    RESULT[$target]=FAIL
  fi
done

status=0
echo
for target in "${TARGETS[@]}"; do
  printf '%-34s %s\n' "$target" "${RESULT[$target]}"
  [[ "${RESULT[$target]}" == PASS ]] || status=1
done
exit "$status"
