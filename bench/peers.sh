#!/usr/bin/env bash
# The gateway fault suite (contract.md section 4) against peers: nginx,
# HAProxy and `candor serve`, each a reverse proxy in front of the same
# `candor faults`, with /f/ routed to it and /dead/ to a closed port. Each
# gateway is started, audited with `candor audit gateway --format json`, and
# stopped, one at a time; then the scored table is printed. Everything
# listens on 127.0.0.1.
#
#   bench/peers.sh                    # all three gateways
#   GATEWAYS="nginx candor" bench/peers.sh
#   NO_BUILD=1 bench/peers.sh         # use the existing binary as is
#
# Settings (environment): SLOW_MS (the slow upstream's delay, 3000),
# TIMEOUT_S (every gateway's upstream timeout, in whole seconds, 1; must be
# well under SLOW_MS), UPSTREAM_PORT (19100), DEAD_PORT (19199, must be
# closed), NGINX_PORT (19181), HAPROXY_PORT (19182), CANDOR_PORT (19180),
# CANDOR (the binary, target/debug/candor: this is not a speed test), OUT
# (bench/out/peers: reports and gateway logs are kept there).
#
# Installs nginx and haproxy with apt-get when they are missing (as root),
# and fetches nothing else. Each gateway runs from its own configuration
# (bench/peers/) in a temporary directory; /etc is never read or written.
# Everything the script starts is stopped on exit, and the temporary
# directory removed.
#
# Exit status: 0 when every gateway was audited (whatever it scored), 1 when
# one could not be started or audited.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# nginx and haproxy live in /usr/sbin, which is not on every PATH.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

GATEWAYS=${GATEWAYS:-nginx haproxy candor}
SLOW_MS=${SLOW_MS:-3000}
TIMEOUT_S=${TIMEOUT_S:-1}
UPSTREAM_PORT=${UPSTREAM_PORT:-19100}
DEAD_PORT=${DEAD_PORT:-19199}
NGINX_PORT=${NGINX_PORT:-19181}
HAPROXY_PORT=${HAPROXY_PORT:-19182}
CANDOR_PORT=${CANDOR_PORT:-19180}
CANDOR=${CANDOR:-${CARGO_TARGET_DIR:-target}/debug/candor}
OUT=${OUT:-bench/out/peers}
NO_BUILD=${NO_BUILD:-0}
# How long a gateway may take to answer its first request.
READY_SECONDS=10
# The scenarios, in the order `candor audit gateway` reports them.
SCENARIOS=(refused reset garbage bad-length slow status-500 status-503 truncate upstream-identity)

die() {
  echo "peers.sh: $*" >&2
  exit 1
}
log() { echo "peers.sh: $*" >&2; }
# alive, children, port_busy, stop, wait_ready
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

[[ $SLOW_MS =~ ^[1-9][0-9]*$ ]] && ((SLOW_MS <= 60000)) || die "SLOW_MS must be 1 to 60000"
[[ $TIMEOUT_S =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT_S must be a whole number of seconds, at least 1"
# candor's wait is connect (0.5 s) + response timeout; leave a second more.
((TIMEOUT_S * 1000 + 1500 <= SLOW_MS)) || die "SLOW_MS ($SLOW_MS) must be at least TIMEOUT_S * 1000 + 1500"
for p in "$UPSTREAM_PORT" "$DEAD_PORT" "$NGINX_PORT" "$HAPROXY_PORT" "$CANDOR_PORT"; do
  [[ $p =~ ^[1-9][0-9]*$ ]] && ((p <= 65535)) || die "bad port '$p'"
done
if [[ $(printf '%s\n' "$UPSTREAM_PORT" "$DEAD_PORT" "$NGINX_PORT" "$HAPROXY_PORT" "$CANDOR_PORT" | sort -u | wc -l) -ne 5 ]]; then
  die "UPSTREAM_PORT, DEAD_PORT, NGINX_PORT, HAPROXY_PORT and CANDOR_PORT must differ"
fi
for gw in $GATEWAYS; do
  case $gw in
    nginx | haproxy | candor) ;;
    *) die "unknown gateway '$gw' in GATEWAYS (nginx, haproxy, candor)" ;;
  esac
done

# ---------------------------------------------------------------------------
# Tools

missing=()
for gw in $GATEWAYS; do
  case $gw in
    nginx | haproxy) command -v "$gw" >/dev/null || missing+=("$gw") ;;
  esac
done
command -v curl >/dev/null || die "curl is required"
if ((${#missing[@]} > 0)); then
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]}; run as root to install them with apt-get"
  command -v apt-get >/dev/null || die "missing ${missing[*]} and there is no apt-get to install them"
  export DEBIAN_FRONTEND=noninteractive
  log "installing ${missing[*]} with apt-get"
  timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    { timeout 600 apt-get update -q && timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}"; }
  for tool in "${missing[@]}"; do
    command -v "$tool" >/dev/null || die "$tool is still missing after apt-get install"
  done
fi

if [[ $NO_BUILD != 1 ]]; then
  log "building candor..."
  cargo build --quiet -p candor
fi
[[ -x $CANDOR ]] || die "$CANDOR is not an executable (build it, or set CANDOR)"

# ---------------------------------------------------------------------------
# Processes: everything started here is stopped by `cleanup`.

tmp=
upstream_pid=
gateway_pid=
gateway_extra=()

# stop_gateway : stops the running gateway and any worker it forked.
stop_gateway() {
  local pid
  [[ -n $gateway_pid ]] || return 0
  mapfile -t gateway_extra < <(children "$gateway_pid")
  stop "$gateway_pid"
  for pid in "${gateway_extra[@]}"; do
    if alive "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  gateway_pid=
  gateway_extra=()
}

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  stop_gateway
  stop "$upstream_pid"
  [[ -n $tmp ]] && rm -rf "$tmp"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


for p in "$UPSTREAM_PORT" "$DEAD_PORT" "$NGINX_PORT" "$HAPROXY_PORT" "$CANDOR_PORT"; do
  if port_busy "$p"; then
    die "port $p is in use; pick others with UPSTREAM_PORT, DEAD_PORT, NGINX_PORT, HAPROXY_PORT, CANDOR_PORT"
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/candor-peers.XXXXXX")
# nginx drops its workers to an unprivileged user when run as root.
chmod 711 "$tmp"
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.txt "$OUT"/*.log

# render TEMPLATE DEST PORT : replaces the @NAME@ placeholders.
render() {
  sed -e "s|@DIR@|$(dirname "$2")|g" \
    -e "s|@PORT@|$3|g" \
    -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" \
    -e "s|@DEAD_PORT@|$DEAD_PORT|g" \
    -e "s|@TIMEOUT_S@|$TIMEOUT_S|g" \
    "$1" >"$2"
  local left
  left=$(grep -v '^[[:space:]]*#' "$2" | grep -o '@[A-Z_]*@' | head -n 1 || true)
  [[ -z $left ]] || die "unreplaced placeholder $left in $2 (from $1)"
}

# start_gateway NAME : starts NAME in front of the upstream; sets
# gateway_pid and port.
start_gateway() {
  local name=$1 dir=$tmp/$1
  mkdir -p "$dir"
  chmod 755 "$dir"
  case $name in
    nginx)
      port=$NGINX_PORT
      render bench/peers/nginx.conf "$dir/nginx.conf" "$port"
      # -p and -e keep nginx away from its compiled-in prefix and error log.
      local args=(-p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf")
      nginx -t -q "${args[@]}" || die "nginx rejected $dir/nginx.conf (from bench/peers/nginx.conf)"
      nginx "${args[@]}" -g 'daemon off;' >"$OUT/nginx.log" 2>&1 &
      gateway_pid=$!
      ;;
    haproxy)
      port=$HAPROXY_PORT
      render bench/peers/haproxy.cfg "$dir/haproxy.cfg" "$port"
      haproxy -c -q -f "$dir/haproxy.cfg" || die "haproxy rejected $dir/haproxy.cfg (from bench/peers/haproxy.cfg)"
      haproxy -db -f "$dir/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
      gateway_pid=$!
      ;;
    candor)
      port=$CANDOR_PORT
      render bench/peers/candor.toml "$dir/candor.toml" "$port"
      "$CANDOR" serve --no-watch --config "$dir/candor.toml" >"$OUT/candor.log" 2>&1 &
      gateway_pid=$!
      ;;
  esac
  wait_ready "$name" "$gateway_pid" "http://127.0.0.1:$port/f/ok" "$OUT/$name.log"
}

log "starting the upstream (candor faults) on 127.0.0.1:$UPSTREAM_PORT"
"$CANDOR" faults --listen "127.0.0.1:$UPSTREAM_PORT" >"$OUT/upstream.log" 2>&1 &
upstream_pid=$!
wait_ready upstream "$upstream_pid" "http://127.0.0.1:$UPSTREAM_PORT/ok" "$OUT/upstream.log"

# The client waits long enough to see a gateway that waits the delay out.
client_timeout="$((SLOW_MS / 1000 + 10))s"
problems=()
audited=()
for gw in $GATEWAYS; do
  log "starting $gw"
  start_gateway "$gw"
  log "auditing $gw: $CANDOR audit gateway --url http://127.0.0.1:$port --slow-ms $SLOW_MS --timeout $client_timeout --format json"
  code=0
  timeout -k 5 120 "$CANDOR" audit gateway --url "http://127.0.0.1:$port" \
    --slow-ms "$SLOW_MS" --timeout "$client_timeout" --format json \
    >"$OUT/$gw.json" 2>"$OUT/$gw.txt" || code=$?
  stop_gateway
  # Keep what the gateway logged in its own directory (nginx's error and
  # access logs), next to the report.
  for f in "$tmp/$gw"/*.log; do
    [[ -e $f ]] && cp "$f" "$OUT/$gw-$(basename "$f")"
  done
  if ((code > 1)); then
    problems+=("$gw: candor audit gateway exited $code: $(tail -n 1 "$OUT/$gw.txt")")
    continue
  fi
  audited+=("$gw")
done

# ---------------------------------------------------------------------------
# Report

# cell GW SCENARIO : "502" when the check passed, "503 ✗" when it failed.
cell() {
  awk -v want="$2" '
    index($0, "candor: scenario " want ": ") == 1 {
      n = split($0, part, ": ")
      result = part[3]; short = part[4]
      if (short == "-") short = ""
      if (result ~ /^skipped/) text = "skipped"
      else if (result == "pass") text = (short == "") ? "pass" : short
      else text = ((short == "") ? "" : short " ") "✗"
      print text; found = 1; exit
    }
    END { if (!found) print "?" }' "$OUT/$1.txt"
}

# summary_field GW NAME : a number from the JSON report's summary.
summary_field() {
  sed -n "s/.*\"summary\":{[^}]*\"$2\":\([0-9]*\).*/\1/p" "$OUT/$1.json" | tail -n 1
}

nginx_version=$(nginx -v 2>&1 | sed 's/^nginx version: //' || true)
haproxy_version=$(haproxy -v 2>/dev/null | head -n 1 | awk '{ print $1, $3 }' || true)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
if [[ -n $(git status --porcelain 2>/dev/null) ]]; then commit="$commit (with uncommitted changes)"; fi

printf '\n%s, %s, %s, commit %s\n' "${nginx_version:-nginx ?}" "${haproxy_version:-HAProxy ?}" "$("$CANDOR" --version)" "$commit"
printf 'candor audit gateway --slow-ms %s --timeout %s; gateway upstream timeouts %ss; "✗" = the contract does not hold\n\n' \
  "$SLOW_MS" "$client_timeout" "$TIMEOUT_S"
header='| gateway | score |'
rule='|---|---|'
for s in "${SCENARIOS[@]}"; do
  header+=" $s |"
  rule+='---|'
done
header+=' errors | warnings |'
rule+='---|---|'
echo "$header"
echo "$rule"
for gw in "${audited[@]}"; do
  score=$(sed -n 's/^candor: score //p' "$OUT/$gw.txt" | tail -n 1)
  line="| $gw | ${score:-?} |"
  for s in "${SCENARIOS[@]}"; do
    line+=" $(cell "$gw" "$s") |"
  done
  line+=" $(summary_field "$gw" errors) | $(summary_field "$gw" warnings) |"
  echo "$line"
done
printf '\nreports (JSON with each finding'"'"'s request and response) and gateway logs: %s/\n' "$OUT"

if ((${#problems[@]} > 0)); then
  printf '\nPROBLEMS:\n' >&2
  printf '  %s\n' "${problems[@]}" >&2
  exit 1
fi
