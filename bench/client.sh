#!/usr/bin/env bash
# Retry amplification (issue 15): N concurrent callers against an upstream
# failing half its requests, naive retries (3 attempts) against
# candor-client's retry budget. Prints a table (see bench/README.md).
#
#   bench/client.sh                      # 32 callers x 100 calls, debug build
#   CALLERS=64 CALLS=200 bench/client.sh
#   PROFILE=release bench/client.sh      # builds the example in release
#
# PORT (20150) is where the bench's own upstream listens, on 127.0.0.1.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

profile=()
if [ "${PROFILE:-debug}" = release ]; then profile=(--release); fi
export CALLERS=${CALLERS:-32} CALLS=${CALLS:-100} PORT=${PORT:-20150}
cargo build --quiet "${profile[@]}" -p candor-client --example amplification
exec cargo run --quiet "${profile[@]}" -p candor-client --example amplification
