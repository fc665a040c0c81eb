#!/usr/bin/env bash
# Times the logbook's page query (GET /api/v1/logbook's SQL, through the
# store) on a year of a busy home in SQLite: ROWS entries (default
# 2,000,000, about 5,000 a day for 365 days, 50 entities) inserted through
# the batch writer's statements, then each query 20 times, median printed.
# Produces the "Logbook query" figures in docs/benchmarks.md.
#
# Usage: bench/scripts/logbook-query.sh     (ROWS=200000 for a quick look)
# Builds hub/examples/logbook_query.rs in release; needs nothing else.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
cargo run --quiet --release -p hearth-hub --example logbook_query
