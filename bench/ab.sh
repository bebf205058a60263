#!/usr/bin/env bash
# Interleaved A/B of two candor binaries on the plain proxy path: the same
# upstream, both gateways up at once, alternating wrk runs, so that the
# machine's drift (10-20% within an hour on a shared VM) falls on both.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY          # 4 rounds of 5 s each
#   ROUNDS=8 DURATION=10s bench/ab.sh A B
#
# Other settings: THREADS and CONNECTIONS (wrk -t/-c, 2 and 64), WARMUP (1s
# before each measured run), UPSTREAM_PORT (19300), A_PORT (18301) and
# B_PORT (18302); the gateways' admin listeners take the port + 1000.
# Needs wrk (bench/gateway.sh installs it). Prints one row per round and the
# means; exit status 1 when a run saw errors or a gateway died.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
UPSTREAM_PORT=${UPSTREAM_PORT:-19300}
A_PORT=${A_PORT:-18301}
B_PORT=${B_PORT:-18302}

log() { echo "ab.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}
# alive, port_busy, stop, cpu_ticks, clk_tck, wait_ready
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

(($# == 2)) || die "usage: bench/ab.sh OLD_BINARY NEW_BINARY"
A=$1
B=$2
for bin in "$A" "$B"; do
  [[ -x $bin ]] || die "$bin is not an executable"
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "bad ROUNDS '$ROUNDS'"
[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || die "bad DURATION '$DURATION' (use seconds, e.g. 5s)"
[[ $WARMUP =~ ^[0-9]+s$ ]] || die "bad WARMUP '$WARMUP' (use seconds, e.g. 1s)"
command -v wrk >/dev/null || die "wrk is missing (bench/gateway.sh installs it)"
for p in "$UPSTREAM_PORT" "$A_PORT" "$B_PORT" $((A_PORT + 1000)) $((B_PORT + 1000)); do
  port_busy "$p" && die "port $p is in use; move it with UPSTREAM_PORT, A_PORT or B_PORT"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/candor-ab.XXXXXX")
upstream_pid=
a_pid=
b_pid=
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  stop "$a_pid" TERM
  stop "$b_pid" TERM
  stop "$upstream_pid" TERM
  rm -rf "$tmp"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# gateway BINARY PORT NAME : starts `serve` with bench/gateway/candor.toml.
gateway() {
  sed -e "s|@CANDOR_PORT@|$2|; s|@CANDOR_ADMIN_PORT@|$(($2 + 1000))|; s|@UPSTREAM_PORT@|$UPSTREAM_PORT|" \
    bench/gateway/candor.toml >"$tmp/$3.toml"
  "$1" serve --no-watch --config "$tmp/$3.toml" >"$tmp/$3.log" 2>&1 &
}

"$B" faults --listen "127.0.0.1:$UPSTREAM_PORT" >"$tmp/upstream.log" 2>&1 &
upstream_pid=$!
wait_ready upstream "$upstream_pid" "http://127.0.0.1:$UPSTREAM_PORT/ok" "$tmp/upstream.log"
gateway "$A" "$A_PORT" a
a_pid=$!
gateway "$B" "$B_PORT" b
b_pid=$!
wait_ready A "$a_pid" "http://127.0.0.1:$A_PORT/ok" "$tmp/a.log"
wait_ready B "$b_pid" "http://127.0.0.1:$B_PORT/ok" "$tmp/b.log"

problems=0
declare -A sum_rps sum_us
# measure NAME PORT PID ROUND : one warm-up and one measured run.
measure() {
  local name=$1 port=$2 pid=$3 round=$4 url out before after requests rps us
  url="http://127.0.0.1:$port/ok"
  if [[ $WARMUP != 0s ]]; then
    timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$url" >/dev/null
  fi
  before=$(cpu_ticks "$pid")
  out=$(timeout 300 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$url")
  after=$(cpu_ticks "$pid")
  requests=$(awk '$2 == "requests" && $3 == "in" { print $1 }' <<<"$out")
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  if grep -qE 'Non-2xx|Socket errors' <<<"$out" || ! alive "$pid"; then
    log "$name, round $round: errors or a dead gateway (logs: $tmp)"
    problems=1
  fi
  us=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="${requests:-0}" \
    'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print 0 }')
  printf '| %s | %d | %.0f | %s |\n' "$name" "$round" "$rps" "$us"
  sum_rps[$name]=$(awk -v a="${sum_rps[$name]:-0}" -v b="$rps" 'BEGIN { print a + b }')
  sum_us[$name]=$(awk -v a="${sum_us[$name]:-0}" -v b="$us" 'BEGIN { print a + b }')
}

printf 'A = %s\nB = %s\n%s rounds, wrk -t%s -c%s -d%s, GET /ok through each gateway\n\n' \
  "$A" "$B" "$ROUNDS" "$THREADS" "$CONNECTIONS" "$DURATION"
echo '| gateway | round | req/s | CPU us/request |'
echo '|---|---|---|---|'
for ((r = 1; r <= ROUNDS; r++)); do
  # Alternate which goes first, so neither always follows the other.
  if ((r % 2)); then
    measure A "$A_PORT" "$a_pid" "$r"
    measure B "$B_PORT" "$b_pid" "$r"
  else
    measure B "$B_PORT" "$b_pid" "$r"
    measure A "$A_PORT" "$a_pid" "$r"
  fi
done
awk -v ra="${sum_rps[A]}" -v rb="${sum_rps[B]}" -v ua="${sum_us[A]}" -v ub="${sum_us[B]}" -v n="$ROUNDS" 'BEGIN {
  printf "\nmeans: A %.0f req/s, %.2f us/request; B %.0f req/s, %.2f us/request\n", ra / n, ua / n, rb / n, ub / n
  if (ra > 0 && ua > 0) printf "B / A: req/s %.3fx, CPU per request %.3fx\n", rb / ra, ub / ua
}'
exit "$problems"
