#!/usr/bin/env bash
# Lint throughput: `candor lint --format json` over ~1 GB of generated JSON
# lines, against a single-threaded parse of the same file (and jq, on demand).
#
#   bench/lint.sh                 # 1 GB
#   BYTES=100M bench/lint.sh      # smaller; k/M/G are powers of 1000
#   JQ=1 bench/lint.sh            # also time `jq -c .` when jq is installed
#
# The traffic file is generated once into bench/out/ and reused; delete it (or
# set TRAFFIC=path) to change its size. Wall time and peak RSS come from GNU
# /usr/bin/time when present, else from `date` (and no RSS).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

BYTES=${BYTES:-1000000000}
TRAFFIC=${TRAFFIC:-bench/out/traffic.jsonl}
JQ=${JQ:-0}
release=target/release

echo "building (release)..." >&2
cargo build --release --quiet -p candor --bin candor
cargo build --release --quiet -p candor-audit --example gen_traffic --example bare_parse

if [[ ! -s $TRAFFIC ]]; then
  mkdir -p "$(dirname "$TRAFFIC")"
  echo "generating $BYTES bytes into $TRAFFIC..." >&2
  "$release/examples/gen_traffic" --bytes "$BYTES" --out "$TRAFFIC.tmp"
  mv "$TRAFFIC.tmp" "$TRAFFIC"
fi
size=$(wc -c <"$TRAFFIC")

# Read the file once so that every tool finds it in the page cache.
cat "$TRAFFIC" >/dev/null

gnu_time=
if [[ -x /usr/bin/time ]] && /usr/bin/time -f %e true >/dev/null 2>&1; then
  gnu_time=/usr/bin/time
fi

# measure NAME OK_CODES OUT CMD... : runs CMD with its stdout to OUT, sets
# $seconds and $rss_mb ("n/a" when unknown); fails unless the exit code is
# one of OK_CODES (a space-separated list).
measure() {
  local name=$1 ok=$2 out=$3
  shift 3
  local times=bench/out/$name.time code=0 start end
  mkdir -p bench/out
  echo "running $name..." >&2
  if [[ -n $gnu_time ]]; then
    "$gnu_time" -o "$times" -f '%e %M' "$@" >"$out" || code=$?
    read -r seconds rss_kb < <(tail -n 1 "$times")
    rss_mb=$(awk -v kb="$rss_kb" 'BEGIN { printf "%.0f", kb / 1024 }')
  else
    start=$(date +%s.%N)
    "$@" >"$out" || code=$?
    end=$(date +%s.%N)
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    rss_mb=n/a
  fi
  if [[ " $ok " != *" $code "* ]]; then
    echo "$name exited with $code (expected one of: $ok)" >&2
    exit 1
  fi
}

rows=()
# row TOOL : appends a table row from $seconds and $rss_mb.
row() {
  rows+=("$(awk -v tool="$1" -v s="$seconds" -v n="$exchanges" -v b="$size" \
    -v rss="$rss_mb" -v base="${base_seconds:-$seconds}" 'BEGIN {
      if (s <= 0) s = 0.001
      printf "%-28s %9.2f %14.0f %9.1f %12s %9.2fx", tool, s, n / s, b / 1e6 / s, rss, s / base
    }')")
}

measure bare_parse "0" bench/out/bare_parse.out "$release/examples/bare_parse" "$TRAFFIC"
exchanges=$(sed -n 's/^lines=\([0-9]*\) .*/\1/p' bench/out/bare_parse.out)
base_seconds=$seconds
row "bare parse (1 thread)"

# Exit code 1 only means that findings were reported, as they are here.
measure candor_lint "0 1" /dev/null "$release/candor" lint --format json "$TRAFFIC"
row "candor lint --format json"

if [[ $JQ == 1 ]]; then
  if command -v jq >/dev/null; then
    measure jq "0" /dev/null jq -c . "$TRAFFIC"
    row "jq -c ."
  else
    echo "JQ=1 but jq is not installed; skipping it" >&2
  fi
fi

cpus=$(nproc 2>/dev/null || echo "?")
printf '\n%s: %s bytes, %s exchanges, %s CPUs\n\n' "$TRAFFIC" "$size" "$exchanges" "$cpus"
printf '%-28s %9s %14s %9s %12s %10s\n' tool seconds exchanges/s MB/s "peak RSS MB" "vs bare"
printf '%s\n' "${rows[@]}"
