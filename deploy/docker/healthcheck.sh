#!/bin/bash
# hearth-healthcheck: the image's HEALTHCHECK, for whichever Hearth program
# the container runs (it looks at PID 1's command line).
#   hearth-hub         GET http://127.0.0.1:8080/healthz answers 200
#   hearth-broker      a TCP connection to 127.0.0.1:1883 is accepted
#   hearth-node-agent  healthy while it runs (it listens on no port)
# HEARTH_HEALTHCHECK_PORT overrides the port (if you moved [http] listen or
# [broker] listen). Uses bash's /dev/tcp: the image has no curl.
set -euo pipefail

timeout_secs="${HEARTH_HEALTHCHECK_TIMEOUT:-4}"
cmdline="$(tr '\0' ' ' </proc/1/cmdline 2>/dev/null || true)"

tcp_check() {
    local port="$1"
    timeout "$timeout_secs" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null
}

http_check() {
    local port="$1" path="$2"
    # shellcheck disable=SC2016  # $1/$2 expand in the inner bash
    timeout "$timeout_secs" bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n" "$2" >&3
        IFS= read -r status <&3
        case "$status" in
            "HTTP/1."?" 200"*) exit 0 ;;
            *) echo "unhealthy: $status" >&2; exit 1 ;;
        esac
    ' _ "$port" "$path"
}

case "$cmdline" in
    *hearth-hub*) http_check "${HEARTH_HEALTHCHECK_PORT:-8080}" /healthz ;;
    *hearth-broker*) tcp_check "${HEARTH_HEALTHCHECK_PORT:-1883}" ;;
    *hearth-node-agent*) exit 0 ;;
    *)
        echo "hearth-healthcheck: PID 1 is not a Hearth program: $cmdline" >&2
        exit 1
        ;;
esac
