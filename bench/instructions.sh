#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: the
# same number on every run (to a fraction of a percent), where wall-clock
# benchmarks on this shared VM drift by 10-20% and hide sub-microsecond
# changes. Runs `candor serve` (one worker, the plain proxy path of
# bench/gateway/candor.toml), the bare hyper proxy
# (crates/gateway/examples/bare_proxy.rs: the stack's floor) and nginx (one
# worker, bench/gateway/nginx.conf, no master process), each under callgrind
# with wrk as the client, and prints instructions per request and the
# functions that spend most of them.
#
#   bench/instructions.sh                    # all three, 5 s of load each
#   TARGETS=candor bench/instructions.sh     # candor only
#   TARGETS=candor-full bench/instructions.sh  # JWT + rate limit + monitor
#   TARGETS=candor-traces bench/instructions.sh  # plain, with [traces] on
#   TARGETS=splice bench/instructions.sh       # examples/splice_proxy
#   TARGETS="candor candor-log" bench/instructions.sh  # access log off / on
#   TARGETS="nginx nginx-log" bench/instructions.sh    # the same for nginx
#   NO_BUILD=1 TOP=40 bench/instructions.sh
#
# Counts user-space instructions only (the kernel's share, the same for
# both, is not seen). Under callgrind a server runs ~50x slower, so the
# request count is small; the per-request figure is the total since the
# warm-up divided by wrk's count. Settings: DURATION (wrk, 5s), TOP (rows
# per target, 25), UPSTREAM_PORT (19500), PORT (18500), OUT
# (bench/out/instructions: the callgrind files, for callgrind_annotate or
# bench/callgrind.py). Needs valgrind, wrk, curl and python3; installs
# valgrind and wrk with apt-get when missing.
set -euo pipefail
# nginx lives in /usr/sbin, which is not on every PATH.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

DURATION=${DURATION:-5s}
TOP=${TOP:-25}
TARGETS=${TARGETS:-candor bare nginx}
UPSTREAM_PORT=${UPSTREAM_PORT:-19500}
PORT=${PORT:-18500}
OUT=${OUT:-bench/out/instructions}
NO_BUILD=${NO_BUILD:-0}
CANDOR=${CANDOR:-${CARGO_TARGET_DIR:-target}/release/candor}
BARE=${BARE:-${CARGO_TARGET_DIR:-target}/release/examples/bare_proxy}
SPLICE=${SPLICE:-${CARGO_TARGET_DIR:-target}/release/examples/splice_proxy}

log() { echo "instructions.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}
# alive, port_busy, stop, wait_ready, bench_token
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

for tool in valgrind wrk; do
  if ! command -v "$tool" >/dev/null; then
    log "installing $tool"
    apt-get install -y "$tool" >/dev/null 2>&1 || die "cannot install $tool (apt-get install -y $tool)"
  fi
done
command -v python3 >/dev/null || die "python3 is needed to read callgrind's output"
for p in "$UPSTREAM_PORT" "$PORT" $((PORT + 1)); do
  port_busy "$p" && die "port $p is in use (set UPSTREAM_PORT / PORT)"
done

if [[ $NO_BUILD != 1 ]]; then
  log "building (release)"
  cargo build --release --bin candor --example bare_proxy --example splice_proxy >&2
fi
mkdir -p "$OUT"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do stop "$pid"; done
  rm -rf "$tmp"
}
trap cleanup EXIT

"$CANDOR" faults --listen "127.0.0.1:$UPSTREAM_PORT" >"$OUT/faults.log" 2>&1 &
pids+=($!)
READY_SECONDS=10 wait_ready faults "$!" "http://127.0.0.1:$UPSTREAM_PORT/ok" "$OUT/faults.log"

sed -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" \
  -e "s|@CANDOR_PORT@|$PORT|g" \
  -e "s|@CANDOR_ADMIN_PORT@|$((PORT + 1))|g" \
  bench/gateway/candor.toml >"$tmp/candor.toml"
sed -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" \
  -e "s|@CANDOR_FULL_PORT@|$PORT|g" \
  bench/gateway/candor-full.toml >"$tmp/candor-full.toml"
# The plain proxy with its access log on, to a file (the writer thread's
# instructions count too).
sed -e "s|^access_log = false|access_log_path = \"$tmp/candor-access.log\"|" \
  "$tmp/candor.toml" >"$tmp/candor-log.toml"
grep -q '^access_log_path' "$tmp/candor-log.toml" || die "cannot turn the access log on in $tmp/candor-log.toml"
# One worker: callgrind runs one thread at a time anyway.
sed -i 's/^\[gateway\]$/[gateway]\nworkers = 1/' "$tmp/candor.toml" "$tmp/candor-full.toml" "$tmp/candor-log.toml"
# The plain path with tracing on: spans exported to the faults upstream,
# which answers 200 to the export as to any request for /ok (the exporter's
# work, its HTTP exchange included, is counted with the gateway's).
cp "$tmp/candor.toml" "$tmp/candor-traces.toml"
printf '\n[traces]\nendpoint = "http://127.0.0.1:%s/ok"\n' "$UPSTREAM_PORT" >>"$tmp/candor-traces.toml"
# Extra wrk / curl arguments of the target being measured.
auth=()

# nginx as bench/gateway.sh runs it, but one worker in the foreground.
mkdir -p "$tmp/nginx"
sed -e "s|@DIR@|$tmp/nginx|g" \
  -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" \
  -e "s|@NGINX_PORT@|$PORT|g" \
  -e "s|^worker_processes auto;|worker_processes 1;\nmaster_process off;\ndaemon off;|" \
  bench/gateway/nginx.conf >"$tmp/nginx.conf"
# nginx with its access log on, to a file (its default format and writes).
sed -e "s|^    access_log off;|    access_log $tmp/nginx/access.log;|" "$tmp/nginx.conf" >"$tmp/nginx-log.conf"
grep -q "access_log $tmp" "$tmp/nginx-log.conf" || die "cannot turn the access log on in $tmp/nginx-log.conf"

measure() {
  local name=$1 file="$OUT/callgrind.$1" pid reqs
  shift
  rm -f "$file" "$file".*
  # Uncompressed names and positions, so bench/callgrind.py can read them.
  valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$file" "$@" >"$OUT/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  READY_SECONDS=60 wait_ready "$name" "$pid" "http://127.0.0.1:$PORT/ok" "$OUT/$name.log" "${auth[@]}"
  # Warm up (pool connections, lazily made metric series), then count.
  wrk -t1 -c8 -d2s "${auth[@]}" "http://127.0.0.1:$PORT/ok" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  wrk -t1 -c8 -d"$DURATION" "${auth[@]}" "http://127.0.0.1:$PORT/ok" >"$OUT/$name.wrk"
  callgrind_control -d "$pid" >/dev/null
  stop "$pid"
  reqs=$(awk '/requests in/ {print $1}' "$OUT/$name.wrk")
  [[ $reqs =~ ^[0-9]+$ ]] && ((reqs > 0)) || die "$name: wrk made no requests (see $OUT/$name.wrk)"
  grep -q "Non-2xx" "$OUT/$name.wrk" && die "$name: answers other than 2xx (see $OUT/$name.wrk)"
  # The dump after zeroing is the first numbered part.
  echo "== $name: $reqs requests"
  python3 bench/callgrind.py "$file.1" "$reqs" "$TOP"
}

for target in $TARGETS; do
  case $target in
    candor) auth=() && measure candor "$CANDOR" serve --no-watch --config "$tmp/candor.toml" ;;
    candor-log) auth=() && measure candor-log "$CANDOR" serve --no-watch --config "$tmp/candor-log.toml" ;;
    candor-full)
      auth=(-H "Authorization: Bearer $(bench_token)")
      measure candor-full "$CANDOR" serve --no-watch --config "$tmp/candor-full.toml"
      ;;
    candor-traces)
      auth=() && measure candor-traces "$CANDOR" serve --no-watch --config "$tmp/candor-traces.toml"
      ;;
    bare) auth=() && measure bare "$BARE" "127.0.0.1:$PORT" "127.0.0.1:$UPSTREAM_PORT" ;;
    splice) auth=() && measure splice "$SPLICE" "127.0.0.1:$PORT" "127.0.0.1:$UPSTREAM_PORT" ;;
    nginx)
      command -v nginx >/dev/null || die "nginx is not installed (bench/gateway.sh installs it)"
      auth=()
      measure nginx nginx -c "$tmp/nginx.conf" -p "$tmp/nginx"
      ;;
    nginx-log)
      command -v nginx >/dev/null || die "nginx is not installed (bench/gateway.sh installs it)"
      auth=()
      measure nginx-log nginx -c "$tmp/nginx-log.conf" -p "$tmp/nginx"
      ;;
    *) die "unknown target '$target' (candor, candor-log, candor-full, candor-traces, bare, splice, nginx, nginx-log)" ;;
  esac
done
