#!/usr/bin/env bash
# Shell helpers shared by the benchmark scripts (sourced, not run).

# cpu_ticks PID... : user + system CPU time used so far, in clock ticks.
cpu_ticks() {
  local pid stat total=0 f
  for pid in "$@"; do
    # Fields after the ") " that ends the command name: state is the 1st,
    # utime the 12th and stime the 13th.
    stat=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a f <<<"$stat"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)

# alive PID : the process exists and is not a zombie.
alive() {
  local state
  [[ -n $1 && -r /proc/$1/stat ]] || return 1
  state=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# children PID : the pids of PID's child processes.
children() {
  local status ppid
  for status in /proc/[0-9]*/status; do
    ppid=$(sed -n 's/^PPid:[[:space:]]*//p' "$status" 2>/dev/null) || continue
    if [[ $ppid == "$1" ]]; then
      status=${status#/proc/}
      echo "${status%/status}"
    fi
  done
}

# port_busy PORT : something listens on PORT (any local address).
port_busy() {
  if command -v ss >/dev/null; then
    [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
  else
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
  fi
}

# stop PID [SIGNAL] : sends SIGNAL (TERM by default), waits up to 5 s, then
# SIGKILL; reaps PID. Uses the script's own `log`.
stop() {
  local pid=$1 sig=${2:-TERM} i
  [[ -n $pid ]] || return 0
  if alive "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "pid $pid did not stop on SIG$sig; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

# wait_ready NAME PID URL LOG [CURL_ARG...] : waits until GET URL answers
# `candor faults`' {"ok":true}; fails (exit 1, with the end of LOG) when PID
# exits or after READY_SECONDS (10 by default). Uses the script's `log`.
wait_ready() {
  local name=$1 pid=$2 url=$3 logfile=$4 body deadline=$((SECONDS + ${READY_SECONDS:-10}))
  shift 4
  while :; do
    if body=$(curl -fsS --max-time 1 "$@" "$url" 2>/dev/null) && [[ $body == '{"ok":true}' ]]; then
      return 0
    fi
    if ! alive "$pid"; then
      log "$name exited before answering; its log ($logfile):"
      tail -n 20 "$logfile" >&2 || true
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name did not answer GET $url within ${READY_SECONDS:-10}s; last body: ${body:-none}; its log ($logfile):"
      tail -n 20 "$logfile" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
}

# bench_token : an HS256 JWT (sub "bench", aud "api", an hour to live)
# signed with the benchmark-only secret of bench/gateway/candor-full.toml.
bench_token() {
  python3 - <<'PY'
import base64, hashlib, hmac, json, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "bench", "aud": "api", "exp": int(time.time()) + 3600}).encode())
secret = b"bench-only-secret-0123456789abcdef0123456789"
sig = b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
}
