#!/usr/bin/env bash
# Creates the virtualenv whose Home Assistant validates every MQTT discovery
# payload Hearth emits (scripts/ha-validate/validate.py, used by the
# hub and node agent discovery tests).
#
#   scripts/ha-venv.sh            create or refresh target/ha-venv
#   HEARTH_HA_VENV=DIR scripts/ha-venv.sh
#
# Idempotent: the venv is rebuilt only when scripts/ha-validate/requirements.txt,
# its constraints.txt or the Python version changes, so a second run installs
# nothing and takes about a second. The first takes about 3 minutes
# (homeassistant and ~80 pinned packages, ~400 MB). Needs Python 3.11, the
# version the constraints were resolved with (HEARTH_HA_BASE_PYTHON=python3.11
# picks another interpreter); installs python3-venv with apt-get when the venv
# module is missing. Prints the venv's python on its last line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${HEARTH_HA_VENV:-$ROOT/target/ha-venv}
REQUIREMENTS="$ROOT/scripts/ha-validate/requirements.txt"
PYTHON=${HEARTH_HA_BASE_PYTHON:-python3}

die() {
  echo "ha-venv: $*" >&2
  exit 1
}

command -v "$PYTHON" >/dev/null || die "no $PYTHON: apt-get install python3 python3-venv"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  die "the pinned homeassistant 2024.3.3 tree needs Python 3.11, $PYTHON is $("$PYTHON" -V 2>&1) (set HEARTH_HA_BASE_PYTHON)"
fi
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "ha-venv: installing python3-venv" >&2
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \
    || die "apt-get install python3-venv failed"
fi

CONSTRAINTS="$ROOT/scripts/ha-validate/constraints.txt"
stamp=$(cat "$REQUIREMENTS" "$CONSTRAINTS" <("$PYTHON" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.hearth-stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "ha-venv: creating $VENV (pip install -r ${REQUIREMENTS#"$ROOT"/}; takes a few minutes)" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  log="$(dirname "$VENV")/ha-venv.log"
  started=$SECONDS
  "$PYTHON" -m venv "$VENV" >"$log" 2>&1 || die "python -m venv failed (see $log)"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >>"$log" 2>&1 \
    || die "pip install failed (see $log)"
  # Prove the modules the validator needs import before calling it ready.
  "$VENV/bin/python" "$ROOT/scripts/ha-validate/validate.py" --help >/dev/null 2>>"$log" \
    || die "the validator cannot import Home Assistant (see $log)"
  echo "$stamp" >"$VENV/.hearth-stamp"
  echo "ha-venv: ready in $((SECONDS - started)) s, $(du -sh "$VENV" | cut -f1)" >&2
fi
echo "$VENV/bin/python"
