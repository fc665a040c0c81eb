#!/usr/bin/env bash
# Runs every check Hearth has, on a fresh Debian machine as root or on a
# developer's box: installs what is missing, starts a throwaway Postgres,
# then formatting, clippy, the whole test suite, the deploy checks and the
# Raspberry Pi cross builds. Exit status is non-zero if anything fails.
#
#   ./scripts/test.sh            everything
#   HEARTH_SKIP_CROSS=1 HEARTH_SKIP_FUZZ=1 ./scripts/test.sh
#                                skip the Pi cross builds and fuzzing (local iteration only)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# A one-shot run gains nothing from incremental caches, which took 16 GB.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- disk space ----------------------------------------------------------------
# A clean build of every target (tests, cross builds, fuzzing) needs ~15 GB;
# running out shows up as a linker bus error, so say it plainly up front.
free_kb=$(df -Pk "$ROOT" | awk 'NR==2 {print $4}')
if [ "${free_kb:-0}" -lt $((15 * 1024 * 1024)) ]; then
  echo "warning: only $((free_kb / 1024 / 1024)) GB free under $ROOT; a full run needs ~15 GB" >&2
fi

# --- system packages -------------------------------------------------------
# gcc and libc6-dev: rustup brings no linker, and a fresh Debian has none.
APT_PACKAGES=(gcc libc6-dev mosquitto mosquitto-clients postgresql python3-venv curl ca-certificates chromium chromium-driver)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Rust toolchain (pinned in rust-toolchain.toml) -------------------------
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# --- throwaway Postgres ------------------------------------------------------
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PG_PORT=${HEARTH_TEST_PG_PORT:-55432}
PG_DIR=$(mktemp -d /tmp/hearth-test-pg.XXXXXX)
chmod 755 "$PG_DIR"
pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PG_DIR"; fi
stop_postgres() {
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap stop_postgres EXIT
step "starting a throwaway Postgres on 127.0.0.1:$PG_PORT"
pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >/dev/null
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w \
  -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
export HEARTH_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
# Tests that stop and restart Postgres use these.
export HEARTH_TEST_PGDATA="$PG_DIR/data"
export HEARTH_TEST_PG_CTL="$PG_BIN/pg_ctl"
export HEARTH_TEST_PG_OPTIONS="-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"

# --- Rust checks ---------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Home Assistant validator venv"
HEARTH_HA_PYTHON=$(scripts/ha-venv.sh | tail -n 1)
export HEARTH_HA_PYTHON

step "cargo test (whole workspace)"
# Tests that run a workspace binary as a process take the one this build
# made (testkit::process::binary), rather than building it again with
# another feature set.
HEARTH_TEST_WORKSPACE_BINS=1 cargo test --workspace --locked --no-fail-fast

# --- deploy manifests ------------------------------------------------------------
if [ -x scripts/check-deploy.sh ]; then
  step "deploy checks"
  # The binaries the test build made (no second build with other features).
  cargo test --workspace --locked --no-run --quiet
  HEARTH_BIN_DIR="$ROOT/target/debug" scripts/check-deploy.sh
fi

# --- Raspberry Pi builds -----------------------------------------------------------
if [ -x scripts/cross-agent.sh ] && [ -z "${HEARTH_SKIP_CROSS:-}" ]; then
  step "aarch64 and armv7 builds under qemu"
  scripts/cross-agent.sh
fi

# --- fuzzing -------------------------------------------------------------------------
if [ -x scripts/fuzz.sh ] && [ -z "${HEARTH_SKIP_FUZZ:-}" ]; then
  step "fuzzing every parser for a bounded time"
  FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
fi

step "all checks passed"
