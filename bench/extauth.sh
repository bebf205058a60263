#!/usr/bin/env bash
# External auth with its cache warm against local JWT checking (issue 16):
# the same proxy route in front of `candor faults`, once with `auth = "jwt"`
# (HS256, checked in the gateway) and once with `auth = "external"` asking
# the reference auth service (candor-reference-auth, RFC 7662 introspection
# on SQLite) with a cache, so that after the first request every check is a
# cache hit. wrk sends the same bearer token on every request. Prints req/s
# and the external/local ratio (target >= 0.85x).
#
#   bench/extauth.sh                      # 3 interleaved rounds of 5 s each
#   NO_BUILD=1 ROUNDS=5 bench/extauth.sh
#
# Settings: ROUNDS (3), DURATION (5s), THREADS (2), CONNECTIONS (64),
# PORT (23100: the first of five consecutive ports on 127.0.0.1), CANDOR,
# AUTH (the binaries), OUT (bench/out/extauth). Needs wrk, curl, python3.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-23100}
OUT=${OUT:-bench/out/extauth}
CANDOR=${CANDOR:-${CARGO_TARGET_DIR:-target}/release/candor}
AUTH=${AUTH:-${CARGO_TARGET_DIR:-target}/release/candor-reference-auth}
upstream_port=$PORT auth_port=$((PORT + 1)) jwt_port=$((PORT + 2)) ext_port=$((PORT + 3)) admin_port=$((PORT + 4))

log() { echo "extauth.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}
# alive, port_busy, stop, wait_ready, bench_token
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

command -v wrk >/dev/null || die "wrk is needed (apt-get install -y wrk)"
if [[ ${NO_BUILD:-0} != 1 ]]; then
  log "building candor and candor-reference-auth (release)"
  cargo build --release --quiet -p candor --bin candor -p candor-reference-api --bin candor-reference-auth
fi
[[ -x $CANDOR ]] || die "$CANDOR is not an executable"
[[ -x $AUTH ]] || die "$AUTH is not an executable"
for p in "$upstream_port" "$auth_port" "$jwt_port" "$ext_port" "$admin_port"; do
  port_busy "$p" && die "port $p is in use; pick another PORT"
done

mkdir -p "$OUT"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do stop "$pid"; done
  rm -rf "$tmp"
}
trap cleanup EXIT

token=$(bench_token)
"$CANDOR" faults --listen "127.0.0.1:$upstream_port" >"$OUT/upstream.log" 2>&1 &
pids+=($!)
wait_ready upstream "$!" "http://127.0.0.1:$upstream_port/ok" "$OUT/upstream.log"
"$AUTH" --listen "127.0.0.1:$auth_port" --db :memory: --session "$token=bench" >"$OUT/auth.log" 2>&1 &
auth_pid=$!
pids+=("$auth_pid")

common() {
  printf '[gateway]\nlisten = "127.0.0.1:%s"\naccess_log = false\nshutdown_grace = "1s"\n' "$1"
  printf '[upstreams.bench]\ntargets = ["127.0.0.1:%s"]\n' "$upstream_port"
}
{
  common "$jwt_port"
  printf '[auth.jwt]\nalgorithms = ["HS256"]\nsecret = "bench-only-secret-0123456789abcdef0123456789"\naudience = "api"\n'
  printf '[[routes]]\npath = "/{*rest}"\nupstream = "bench"\nauth = "jwt"\n'
} >"$tmp/jwt.toml"
{
  common "$ext_port" | sed "s/^\[gateway\]$/[gateway]\nadmin_listen = \"127.0.0.1:$admin_port\"/"
  printf '[upstreams.auth]\ntargets = ["127.0.0.1:%s"]\n' "$auth_port"
  printf '[auth.external]\nupstream = "auth"\ncache = { ttl = "5m" }\n'
  printf '[[routes]]\npath = "/{*rest}"\nupstream = "bench"\nauth = "external"\n'
} >"$tmp/external.toml"

"$CANDOR" serve --no-watch --config "$tmp/jwt.toml" >"$OUT/jwt.log" 2>&1 &
jwt_pid=$!
pids+=("$jwt_pid")
"$CANDOR" serve --no-watch --config "$tmp/external.toml" >"$OUT/external.log" 2>&1 &
ext_pid=$!
pids+=("$ext_pid")
header="Authorization: Bearer $token"
wait_ready jwt "$jwt_pid" "http://127.0.0.1:$jwt_port/ok" "$OUT/jwt.log" -H "$header"
# The first request asks the auth service (and so proves it answers); the
# rest are cache hits.
wait_ready external "$ext_pid" "http://127.0.0.1:$ext_port/ok" "$OUT/external.log" -H "$header"

rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
non2xx() { awk '/Non-2xx/ { print $NF }' "$1"; }
declare -A got
for round in $(seq 1 "$ROUNDS"); do
  for name in jwt external; do
    port=$jwt_port
    [[ $name == external ]] && port=$ext_port
    out="$OUT/$name.$round.wrk"
    timeout -k 5 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "$header" \
      "http://127.0.0.1:$port/ok" >"$out"
    [[ -z $(non2xx "$out") ]] || die "$name answered non-2xx in round $round (see $out)"
    got[$name]+="$(rps "$out") "
    log "round $round/$ROUNDS $name: $(rps "$out") req/s"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
jwt=$(echo "${got[jwt]}" | median)
ext=$(echo "${got[external]}" | median)
checks=$(curl -fsS "http://127.0.0.1:$admin_port/metrics" | grep '^candor_auth_service_checks_total' || true)
echo
echo "medians of $ROUNDS interleaved rounds, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, GET /ok with one bearer token"
echo
echo "| route auth | req/s | vs local JWT |"
echo "|---|---|---|"
printf '| jwt (HS256, checked in the gateway) | %.0f | 1.00x |\n' "$jwt"
printf '| external (reference auth service, cache warm) | %.0f | %.2fx |\n' "$ext" "$(python3 -c "print($ext / $jwt)")"
echo
echo "external/local target: >= 0.85x. The external gateway's checks (cache hit or miss):"
echo "$checks"
