#!/usr/bin/env bash
# Fuzzes Hearth's parsers with cargo-fuzz (libFuzzer) for a bounded time.
#
# Targets (fuzz/fuzz_targets/): topic_parse, payloads, config, passwd_file,
# dht_decode. Each runs FUZZ_SECONDS (default 20) from the committed seeds
# in fuzz/seeds/<target> plus what earlier runs found in fuzz/corpus/<target>
# (kept locally, git-ignored); a crash, an assertion failure, a leak or a timeout
# fails the script and leaves the input in fuzz/artifacts/<target>/, which
# `cargo +nightly fuzz run <target> <file>` (from fuzz/) replays.
#
# Needs the nightly toolchain (libFuzzer's sanitizer flags). Installs
# cargo-fuzz from crates.io if it is missing.
#
# Usage: scripts/fuzz.sh [target...]        FUZZ_SECONDS=60 scripts/fuzz.sh config
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"

SECONDS_EACH="${FUZZ_SECONDS:-20}"
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
ALL_TARGETS=(topic_parse payloads config passwd_file dht_decode)
if (($#)); then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

log() { printf '==> %s\n' "$*" >&2; }
now() { date +%s; }

if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  log "installing the $TOOLCHAIN toolchain (cargo-fuzz needs it)"
  rustup toolchain install "$TOOLCHAIN" --profile minimal
fi
if ! cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz from crates.io"
  cargo "+$TOOLCHAIN" install cargo-fuzz --locked
fi

started=$(now)
log "building ${#TARGETS[@]} target(s) with $TOOLCHAIN"
for target in "${TARGETS[@]}"; do
  cargo "+$TOOLCHAIN" fuzz build -O "$target"
done
built=$(now)

failed=()
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target"
  log "fuzzing $target for ${SECONDS_EACH}s"
  # -max_len keeps inputs near real message sizes; -timeout flags any
  # single input that takes over 2 s (a parser that hangs is a bug too).
  if ! cargo "+$TOOLCHAIN" fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=2 \
      -print_final_stats=1 2>"artifacts-$target.log"; then
    tail -40 "artifacts-$target.log" >&2
    failed+=("$target")
  else
    grep -E '^stat::number_of_executed_units|^stat::new_units_added' \
      "artifacts-$target.log" | sed "s/^/    $target /" >&2 || true
    rm -f "artifacts-$target.log"
  fi
done
finished=$(now)

log "build $((built - started))s, fuzzing $((finished - built))s, total $((finished - started))s"
if ((${#failed[@]})); then
  log "FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/, logs in fuzz/artifacts-<target>.log)"
  exit 1
fi
log "PASS: ${TARGETS[*]}"
