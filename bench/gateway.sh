#!/usr/bin/env bash
# Gateway throughput: `candor serve` against nginx, both as plain reverse
# proxies in front of the same fast upstream (`candor faults`, GET /ok), with
# wrk as the client. Everything listens on 127.0.0.1.
#
#   bench/gateway.sh                  # 3 rounds of 5 s per target, medians
#   ROUNDS=5 DURATION=4s bench/gateway.sh   # more rounds (p99 moves a lot
#                                     # between runs on a shared 2-core VM)
#   DURATION=30s bench/gateway.sh     # longer runs (wrk syntax: 30s, 2m, ...)
#   NO_BUILD=1 bench/gateway.sh       # use the existing target/release/candor
#
# Other settings (environment): THREADS (wrk -t, 2), CONNECTIONS (wrk -c, 64),
# WARMUP (an unmeasured wrk run before the first round of each target, 1s;
# 0 for none), ROUNDS (3), DURATION (5s, each measured run),
# UPSTREAM_PORT (19000), NGINX_PORT (18081), CANDOR_PORT (18080),
# CANDOR_ADMIN_PORT (19901), CANDOR_FULL_PORT (18082), BARE_PORT (18084),
# SPLICE_PORT (18085), CANDOR_LOG_PORT (18086: candor with its access log
# on, to a file), NGINX_LOG_PORT (18087: nginx the same), CANDOR (the binary), BARE (the bare_proxy example),
# SPLICE (the splice_proxy example), OUT (bench/out/gateway:
# wrk outputs and server logs are kept there).
#
# Installs nginx-light (or nginx) and wrk with apt-get when they are missing,
# and fetches nothing else. nginx runs from its own configuration in a
# temporary directory; /etc/nginx is never read or written. Everything the
# script starts is stopped on exit, and the temporary directory removed.
#
# Exit status: 0 when every target answered every request with 2xx and wrk
# saw no socket error, 1 otherwise (the table is printed either way).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# nginx lives in /usr/sbin, which is not on every PATH.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
UPSTREAM_PORT=${UPSTREAM_PORT:-19000}
NGINX_PORT=${NGINX_PORT:-18081}
CANDOR_PORT=${CANDOR_PORT:-18080}
CANDOR_ADMIN_PORT=${CANDOR_ADMIN_PORT:-19901}
CANDOR_FULL_PORT=${CANDOR_FULL_PORT:-18082}
BARE_PORT=${BARE_PORT:-18084}
SPLICE_PORT=${SPLICE_PORT:-18085}
CANDOR_LOG_PORT=${CANDOR_LOG_PORT:-18086}
NGINX_LOG_PORT=${NGINX_LOG_PORT:-18087}
CANDOR=${CANDOR:-${CARGO_TARGET_DIR:-target}/release/candor}
# The stack's floor: hyper server + hyper client, no policy (see
# crates/gateway/examples/bare_proxy.rs).
BARE=${BARE:-${CARGO_TARGET_DIR:-target}/release/examples/bare_proxy}
# A data path built for HTTP/1.1 proxying, nginx's shape, with candor's
# forwarding fields and no policy (crates/gateway/examples/splice_proxy.rs).
SPLICE=${SPLICE:-${CARGO_TARGET_DIR:-target}/release/examples/splice_proxy}
OUT=${OUT:-bench/out/gateway}
NO_BUILD=${NO_BUILD:-0}
# How long a server may take to answer its first request.
READY_SECONDS=10

die() {
  echo "gateway.sh: $*" >&2
  exit 1
}
log() { echo "gateway.sh: $*" >&2; }
# alive, children, port_busy, stop, cpu_ticks, clk_tck, wait_ready
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

# seconds DURATION : wrk's duration syntax (N, Ns, Nm, Nh) in whole seconds.
seconds() {
  local d=$1
  [[ $d =~ ^([0-9]+)([smh]?)$ ]] || die "bad duration '$d' (use e.g. 10s, 2m)"
  local n=$((10#${BASH_REMATCH[1]}))
  case ${BASH_REMATCH[2]} in
    m) n=$((n * 60)) ;;
    h) n=$((n * 3600)) ;;
  esac
  echo "$n"
}

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "bad ROUNDS '$ROUNDS'"
duration_s=$(seconds "$DURATION")
((duration_s > 0)) || die "DURATION must be at least 1s"
warmup_s=$(seconds "$WARMUP")
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "bad THREADS '$THREADS'"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "bad CONNECTIONS '$CONNECTIONS'"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS must be at least THREADS (wrk needs one per thread)"
ports=("$UPSTREAM_PORT" "$NGINX_PORT" "$CANDOR_PORT" "$CANDOR_ADMIN_PORT" "$CANDOR_FULL_PORT" "$BARE_PORT" "$SPLICE_PORT" "$CANDOR_LOG_PORT" "$NGINX_LOG_PORT")
for p in "${ports[@]}"; do
  [[ $p =~ ^[1-9][0-9]*$ ]] && ((p <= 65535)) || die "bad port '$p'"
done
if [[ $(printf '%s\n' "${ports[@]}" | sort -u | wc -l) -ne ${#ports[@]} ]]; then
  die "UPSTREAM_PORT, NGINX_PORT, CANDOR_PORT, CANDOR_ADMIN_PORT, CANDOR_FULL_PORT, BARE_PORT, SPLICE_PORT, CANDOR_LOG_PORT and NGINX_LOG_PORT must differ"
fi

# ---------------------------------------------------------------------------
# Tools

missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || die "curl is required"
if ((${#missing[@]} > 0)); then
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]}; run as root to install them with apt-get"
  command -v apt-get >/dev/null || die "missing ${missing[*]} and there is no apt-get to install them"
  export DEBIAN_FRONTEND=noninteractive
  log "installing ${missing[*]} with apt-get"
  timeout 600 apt-get update -q
  packages=()
  for tool in "${missing[@]}"; do
    if [[ $tool == nginx ]]; then
      candidate=$(apt-cache policy nginx-light 2>/dev/null | awk '/Candidate:/ { print $2 }')
      if [[ -n $candidate && $candidate != "(none)" ]]; then
        packages+=(nginx-light)
      else
        packages+=(nginx)
      fi
    else
      packages+=("$tool")
    fi
  done
  timeout 900 apt-get install -y -q --no-install-recommends "${packages[@]}"
  for tool in "${missing[@]}"; do
    command -v "$tool" >/dev/null || die "$tool is still missing after apt-get install"
  done
fi

if [[ $NO_BUILD != 1 ]]; then
  log "building candor (release)..."
  cargo build --release --quiet -p candor
  cargo build --release --quiet -p candor-gateway --example bare_proxy --example splice_proxy
fi
[[ -x $CANDOR ]] || die "$CANDOR is not an executable (build it, or set CANDOR)"
[[ -x $BARE ]] || die "$BARE is not an executable (build it, or set BARE)"
[[ -x $SPLICE ]] || die "$SPLICE is not an executable (build it, or set SPLICE)"

# ---------------------------------------------------------------------------
# Processes: everything started here is stopped by `cleanup`.

tmp=
upstream_pid=
nginx_pid=
nginx_workers=()
nginx_log_pid=
nginx_log_workers=()
candor_log_pid=
candor_pid=
candor_full_pid=
bare_pid=
splice_pid=
wrk_pid=

cleanup() {
  local code=$? pid
  trap - EXIT INT TERM
  stop "$wrk_pid" TERM
  stop "$candor_pid" TERM
  stop "$candor_full_pid" TERM
  stop "$bare_pid" TERM
  stop "$splice_pid" TERM
  stop "$candor_log_pid" TERM
  # nginx workers exit with the master; anything left over is killed by pid.
  if [[ -n $nginx_pid ]]; then stop "$nginx_pid" TERM; fi
  if [[ -n $nginx_log_pid ]]; then stop "$nginx_log_pid" TERM; fi
  for pid in "${nginx_workers[@]}" "${nginx_log_workers[@]}"; do
    if alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == nginx ]]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  stop "$upstream_pid" TERM
  [[ -n $tmp ]] && rm -rf "$tmp"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


for p in "${ports[@]}"; do
  if port_busy "$p"; then
    die "port $p is in use; pick other ports with UPSTREAM_PORT, NGINX_PORT, CANDOR_PORT, CANDOR_ADMIN_PORT, CANDOR_FULL_PORT, BARE_PORT, SPLICE_PORT, CANDOR_LOG_PORT, NGINX_LOG_PORT"
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/candor-gateway-bench.XXXXXX")
# nginx drops its workers to an unprivileged user when run as root.
chmod 711 "$tmp"
mkdir -p "$OUT"
rm -f "$OUT"/*.wrk "$OUT"/*.log

# render TEMPLATE DEST : replaces the @NAME@ placeholders.
render() {
  sed -e "s|@DIR@|$tmp/nginx|g" \
    -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" \
    -e "s|@NGINX_PORT@|$NGINX_PORT|g" \
    -e "s|@CANDOR_PORT@|$CANDOR_PORT|g" \
    -e "s|@CANDOR_ADMIN_PORT@|$CANDOR_ADMIN_PORT|g" \
    -e "s|@CANDOR_FULL_PORT@|$CANDOR_FULL_PORT|g" \
    "$1" >"$2"
  local left
  left=$(grep -v '^[[:space:]]*#' "$2" | grep -o '@[A-Z_]*@' | head -n 1 || true)
  [[ -z $left ]] || die "unreplaced placeholder $left in $2 (from $1)"
}

wrk_extra=()

log "starting the upstream (candor faults) on 127.0.0.1:$UPSTREAM_PORT"
"$CANDOR" faults --listen "127.0.0.1:$UPSTREAM_PORT" >"$OUT/upstream.log" 2>&1 &
upstream_pid=$!
wait_ready upstream "$upstream_pid" "http://127.0.0.1:$UPSTREAM_PORT/ok" "$OUT/upstream.log"

log "starting nginx on 127.0.0.1:$NGINX_PORT"
mkdir -p "$tmp/nginx"
chmod 755 "$tmp/nginx"
render bench/gateway/nginx.conf "$tmp/nginx/nginx.conf"
# -p and -e keep nginx away from its compiled-in prefix and error log.
nginx_args=(-p "$tmp/nginx/" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf")
nginx -t -q "${nginx_args[@]}" || die "nginx rejected $tmp/nginx/nginx.conf (from bench/gateway/nginx.conf)"
nginx "${nginx_args[@]}" -g 'daemon off;' >"$OUT/nginx.log" 2>&1 &
nginx_pid=$!
wait_ready nginx "$nginx_pid" "http://127.0.0.1:$NGINX_PORT/ok" "$tmp/nginx/error.log"
mapfile -t nginx_workers < <(children "$nginx_pid")

# The same nginx with its access log on, to a file (nginx's default format,
# one write per request), in a prefix of its own.
log "starting nginx (access log to a file) on 127.0.0.1:$NGINX_LOG_PORT"
mkdir -p "$tmp/nginx-log"
chmod 755 "$tmp/nginx-log"
sed -e "s|$tmp/nginx|$tmp/nginx-log|g" -e "s|127.0.0.1:$NGINX_PORT;|127.0.0.1:$NGINX_LOG_PORT;|" \
  -e "s|^    access_log off;|    access_log $tmp/nginx-log/access.log;|" \
  "$tmp/nginx/nginx.conf" >"$tmp/nginx-log/nginx.conf"
grep -q "access_log $tmp/nginx-log/access.log" "$tmp/nginx-log/nginx.conf" ||
  die "cannot turn nginx's access log on in $tmp/nginx-log/nginx.conf"
nginx_log_args=(-p "$tmp/nginx-log/" -e "$tmp/nginx-log/error.log" -c "$tmp/nginx-log/nginx.conf")
nginx -t -q "${nginx_log_args[@]}" || die "nginx rejected $tmp/nginx-log/nginx.conf"
nginx "${nginx_log_args[@]}" -g 'daemon off;' >"$OUT/nginx-log.log" 2>&1 &
nginx_log_pid=$!
wait_ready nginx_log "$nginx_log_pid" "http://127.0.0.1:$NGINX_LOG_PORT/ok" "$tmp/nginx-log/error.log"
mapfile -t nginx_log_workers < <(children "$nginx_log_pid")

log "starting candor serve on 127.0.0.1:$CANDOR_PORT"
render bench/gateway/candor.toml "$tmp/candor.toml"
"$CANDOR" serve --no-watch --config "$tmp/candor.toml" >"$OUT/candor.log" 2>&1 &
candor_pid=$!
wait_ready candor "$candor_pid" "http://127.0.0.1:$CANDOR_PORT/ok" "$OUT/candor.log"

# The same gateway with its access log on, to a file.
log "starting candor serve (access log to a file) on 127.0.0.1:$CANDOR_LOG_PORT"
sed -e "s|^listen = .*|listen = \"127.0.0.1:$CANDOR_LOG_PORT\"|" -e '/^admin_listen/d' \
  -e "s|^access_log = false|access_log_path = \"$tmp/candor-access.log\"|" \
  "$tmp/candor.toml" >"$tmp/candor-log.toml"
grep -q '^access_log_path' "$tmp/candor-log.toml" || die "cannot turn the access log on in $tmp/candor-log.toml"
"$CANDOR" serve --no-watch --config "$tmp/candor-log.toml" >"$OUT/candor-log.log" 2>&1 &
candor_log_pid=$!
wait_ready candor_log "$candor_log_pid" "http://127.0.0.1:$CANDOR_LOG_PORT/ok" "$OUT/candor-log.log"

# The "full policy" gateway: JWT + rate limit + monitor. Its token is signed
# here with the benchmark-only secret of candor-full.toml (HS256).
token=$(bench_token)
log "starting candor serve (full policy) on 127.0.0.1:$CANDOR_FULL_PORT"
render bench/gateway/candor-full.toml "$tmp/candor-full.toml"
"$CANDOR" serve --no-watch --config "$tmp/candor-full.toml" >"$OUT/candor-full.log" 2>&1 &
candor_full_pid=$!
wait_ready candor_full "$candor_full_pid" "http://127.0.0.1:$CANDOR_FULL_PORT/ok" "$OUT/candor-full.log" \
  -H "Authorization: Bearer $token"

log "starting the bare hyper proxy on 127.0.0.1:$BARE_PORT"
"$BARE" "127.0.0.1:$BARE_PORT" "127.0.0.1:$UPSTREAM_PORT" >"$OUT/bare.log" 2>&1 &
bare_pid=$!
wait_ready bare "$bare_pid" "http://127.0.0.1:$BARE_PORT/ok" "$OUT/bare.log"

log "starting the splice proxy on 127.0.0.1:$SPLICE_PORT"
"$SPLICE" "127.0.0.1:$SPLICE_PORT" "127.0.0.1:$UPSTREAM_PORT" >"$OUT/splice.log" 2>&1 &
splice_pid=$!
wait_ready splice "$splice_pid" "http://127.0.0.1:$SPLICE_PORT/ok" "$OUT/splice.log"

# ---------------------------------------------------------------------------
# Runs

# to_ms LATENCY : wrk's "812.00us", "1.23ms", "2.00s", "1.00m" in ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    else if (u != "ms") { print "nan"; exit }
    printf "%.3f", n
  }'
}

# hwm_kb PID... : sum of VmHWM (peak resident set) in kB.
hwm_kb() {
  local pid kb total=0
  for pid in "$@"; do
    kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}


# run_wrk NAME LIMIT_S OUT ARGS... : wrk -t -c ARGS > OUT, killed after
# LIMIT_S. In the background and waited for, so that a signal to the script
# stops the run at once (the trap kills it) instead of after it ends.
run_wrk() {
  local name=$1 limit=$2 out=$3 code=0
  shift 3
  timeout -k 5 "$limit" wrk -t"$THREADS" -c"$CONNECTIONS" "${wrk_extra[@]}" "$@" >"$out" &
  wrk_pid=$!
  wait "$wrk_pid" || code=$?
  wrk_pid=
  ((code == 0)) || die "wrk against $name failed (exit $code; 124 = took over ${limit}s)"
}

problems=()
declare -A rps p50 p99 cpu_us
# Every round's figures, space-separated, by target.
declare -A rps_runs p50_runs p99_runs cpu_runs

# bench NAME PORT [PID...] : a warm-up run (first round only), then the
# measured run; appends its req/s, p50, p99 and, when PIDs are given, their
# CPU time per request to NAME's runs.
bench() {
  local name=$1 port=$2 url out non2xx sockerr requests before after v50 v99
  shift 2
  url="http://127.0.0.1:$port/ok"
  out=$OUT/$name.$round.wrk
  if ((warmup_s > 0 && round == 1)); then
    log "warming up $name (${warmup_s}s)"
    run_wrk "$name" $((warmup_s + 30)) /dev/null -d"${warmup_s}s" "$url"
  fi
  log "round $round/$ROUNDS, measuring $name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $url"
  before=$(cpu_ticks "$@")
  run_wrk "$name" $((duration_s + 30)) "$out" -d"$DURATION" --latency "$url"
  after=$(cpu_ticks "$@")
  requests=$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$out")
  if (($# > 0)) && [[ ${requests:-0} -gt 0 ]]; then
    cpu_runs[$name]+="$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$requests" \
      'BEGIN { printf "%.1f", t / hz * 1e6 / n }') "
  fi
  v50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  v99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  rps_runs[$name]+="$(awk '/^Requests\/sec:/ { print $2 }' "$out") "
  [[ -n ${rps_runs[$name]// /} && $v50 != nan && $v99 != nan ]] ||
    die "cannot read wrk's output for $name ($out)"
  p50_runs[$name]+="$v50 "
  p99_runs[$name]+="$v99 "
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  sockerr=$(sed -n 's/^ *Socket errors: *//p' "$out")
  [[ -n $non2xx ]] && problems+=("$name (round $round): $non2xx non-2xx/3xx responses")
  [[ -n $sockerr ]] && problems+=("$name (round $round): socket errors: $sockerr")
  return 0
}

# median "N N N" : the median of the numbers (the mean of the middle two
# for an even count); empty for none.
median() {
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Rounds interleave the targets, so a slow minute of the VM hits them all.
for ((round = 1; round <= ROUNDS; round++)); do
  bench upstream "$UPSTREAM_PORT"
  bench nginx "$NGINX_PORT" "$nginx_pid" "${nginx_workers[@]}"
  bench nginx_log "$NGINX_LOG_PORT" "$nginx_log_pid" "${nginx_log_workers[@]}"
  bench bare "$BARE_PORT" "$bare_pid"
  bench splice "$SPLICE_PORT" "$splice_pid"
  bench candor "$CANDOR_PORT" "$candor_pid"
  bench candor_log "$CANDOR_LOG_PORT" "$candor_log_pid"
  wrk_extra=(-H "Authorization: Bearer $token")
  bench candor_full "$CANDOR_FULL_PORT" "$candor_full_pid"
  wrk_extra=()
done
for name in upstream nginx nginx_log bare splice candor candor_log candor_full; do
  rps[$name]=$(median "${rps_runs[$name]}")
  p50[$name]=$(median "${p50_runs[$name]}")
  p99[$name]=$(median "${p99_runs[$name]}")
  cpu_us[$name]=$(median "${cpu_runs[$name]:-}")
done

# Workers forked after the readiness check (a respawn) count too.
mapfile -t nginx_now < <(children "$nginx_pid")
mapfile -t nginx_log_now < <(children "$nginx_log_pid")
nginx_log_kb=$(hwm_kb "$nginx_log_pid" $(printf '%s\n' "${nginx_log_workers[@]}" "${nginx_log_now[@]}" | sort -u))
candor_log_kb=$(hwm_kb "$candor_log_pid")
nginx_kb=$(hwm_kb "$nginx_pid" $(printf '%s\n' "${nginx_workers[@]}" "${nginx_now[@]}" | sort -u))
candor_kb=$(hwm_kb "$candor_pid")
candor_full_kb=$(hwm_kb "$candor_full_pid")
bare_kb=$(hwm_kb "$bare_pid")
splice_kb=$(hwm_kb "$splice_pid")
nginx_workers=($(printf '%s\n' "${nginx_workers[@]}" "${nginx_now[@]}" | sort -u))

for name in nginx nginx_log bare splice candor candor_log candor_full; do
  pid_var=${name}_pid
  alive "${!pid_var}" || problems+=("$name exited during the run (log in $OUT)")
done

# ---------------------------------------------------------------------------
# Report

cores=$(nproc 2>/dev/null || echo "?")
nginx_version=$(nginx -v 2>&1 | sed 's/^nginx version: //')
wrk_version=$(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }' || true)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
if [[ -n $(git status --porcelain 2>/dev/null) ]]; then commit="$commit (with uncommitted changes)"; fi

printf '\n'
printf 'cores (nproc): %s; nginx: worker_processes auto = %s workers; candor: tokio runtime, one worker thread per core\n' \
  "$cores" "${#nginx_workers[@]}"
printf 'client: %s, -t%s -c%s -d%s --latency, GET /ok (upstream: candor faults); load generator, gateway and upstream share the cores\n' \
  "${wrk_version:-wrk}" "$THREADS" "$CONNECTIONS" "$DURATION"
printf 'medians of %s interleaved rounds\n' "$ROUNDS"
printf '%s, %s, commit %s\n\n' "$nginx_version" "$("$CANDOR" --version)" "$commit"

# row NAME LABEL RSS_KB : one markdown table row; RSS_KB "" prints "-".
row() {
  awk -v label="$2" -v r="${rps[$1]}" -v a="${p50[$1]}" -v b="${p99[$1]}" -v kb="$3" \
    -v nr="${rps[nginx]}" -v nb="${p99[nginx]}" 'BEGIN {
      rss = (kb == "") ? "-" : sprintf("%.1f", kb / 1024)
      rr = (nr > 0) ? sprintf("%.2fx", r / nr) : "-"
      pr = (nb > 0) ? sprintf("%.2fx", b / nb) : "-"
      printf "| %s | %.0f | %.2f ms | %.2f ms | %s | %s | %s |\n", label, r, a, b, rss, rr, pr
    }'
}
echo '| target | req/s | p50 | p99 | peak RSS MB | req/s vs nginx | p99 vs nginx |'
echo '|---|---|---|---|---|---|---|'
row upstream "upstream direct (no proxy)" ""
row nginx "nginx (master + workers)" "$nginx_kb"
row nginx_log "nginx, access log on (to a file)" "$nginx_log_kb"
row bare "bare hyper proxy (examples/bare_proxy: no policy, the stack's floor)" "$bare_kb"
row splice "splice proxy (examples/splice_proxy: HTTP/1.1 only, forwarding fields, no policy)" "$splice_kb"
row candor "candor serve" "$candor_kb"
row candor_log "candor serve, access log on (to a file)" "$candor_log_kb"
row candor_full "candor serve, full policy (JWT + rate limit + monitor)" "$candor_full_kb"
printf '\ngateway CPU time (user + system) per request: nginx %s us (log on: %s us), bare hyper proxy %s us, splice proxy %s us, candor %s us (log on: %s us), candor full policy %s us\n' \
  "${cpu_us[nginx]:-?}" "${cpu_us[nginx_log]:-?}" "${cpu_us[bare]:-?}" "${cpu_us[splice]:-?}" "${cpu_us[candor]:-?}" "${cpu_us[candor_log]:-?}" "${cpu_us[candor_full]:-?}"
awk -v f="${rps[candor_full]}" -v p="${rps[candor]}" 'BEGIN { if (p > 0) printf "full policy / plain proxy req/s: %.2fx (target >= 0.85x)\n", f / p }'
awk -v l="${rps[candor_log]}" -v p="${rps[candor]}" -v nl="${rps[nginx_log]}" -v n="${rps[nginx]}" 'BEGIN {
  if (p > 0 && n > 0) printf "access log on / off req/s: candor %.2fx (target >= 0.95x), nginx %.2fx\n", l / p, nl / n }'
if ((ROUNDS > 1)); then
  printf 'p99 by round (ms):'
  for name in nginx nginx_log bare splice candor candor_log candor_full; do
    printf ' %s %s;' "$name" "$(tr -s ' ' <<<"${p99_runs[$name]}" | sed 's/ $//')"
  done
  printf '\n'
fi
printf 'wrk outputs and server logs: %s/\n' "$OUT"

if ((${#problems[@]} > 0)); then
  printf '\nPROBLEMS (the numbers above are not comparable):\n' >&2
  printf '  %s\n' "${problems[@]}" >&2
  exit 1
fi
