#!/usr/bin/env bash
# `candor lint` of a large real OpenAPI document beside Spectral and Redocly
# on the same file: wall time, peak RSS and findings count, as a table.
#
#   bench/lint-openapi.sh                   # GitHub's REST description (13 MB)
#   RUNS=5 bench/lint-openapi.sh            # best of 5 (default 3; Spectral 1)
#   TOOLS="candor redocly" bench/lint-openapi.sh
#   SPEC=my.json bench/lint-openapi.sh      # your own document
#   NO_BUILD=1 bench/lint-openapi.sh        # use target/release/candor as is
#
# Nothing third-party is committed: the document (npm package
# @octokit/openapi) and the two linters (@stoplight/spectral-cli,
# @redocly/cli) are installed with npm into $CACHE (bench/out/lint-openapi/
# by default) on the first run, at the versions pinned below, and reused.
# Needs node and npm, and GNU /usr/bin/time for the peak RSS.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

CACHE=${CACHE:-bench/out/lint-openapi}
RUNS=${RUNS:-3}
SPECTRAL_RUNS=${SPECTRAL_RUNS:-1}
TOOLS=${TOOLS:-candor spectral redocly}
NO_BUILD=${NO_BUILD:-0}
OCTOKIT_OPENAPI_VERSION=${OCTOKIT_OPENAPI_VERSION:-23.0.2}
SPECTRAL_VERSION=${SPECTRAL_VERSION:-6.16.3}
REDOCLY_VERSION=${REDOCLY_VERSION:-2.77.0}
CANDOR=${CANDOR:-${CARGO_TARGET_DIR:-target}/release/candor}

log() { echo "$*" >&2; }

if [[ ! -x /usr/bin/time ]] || ! /usr/bin/time -f %M true >/dev/null 2>&1; then
  log "GNU time (/usr/bin/time) is needed for the peak RSS: apt-get install time"
  exit 1
fi

tools=$CACHE/tools
mkdir -p "$tools"
tools=$(cd "$tools" && pwd)
stamp=$tools/.installed-$OCTOKIT_OPENAPI_VERSION-$SPECTRAL_VERSION-$REDOCLY_VERSION
if [[ ! -e $stamp ]]; then
  command -v npm >/dev/null || {
    log "npm is needed to fetch the document and the linters"
    exit 1
  }
  log "installing the document and the linters into $tools (npm)..."
  [[ -e $tools/package.json ]] || echo '{"private":true}' >"$tools/package.json"
  (cd "$tools" && npm install --no-audit --no-fund --loglevel=error \
    "@octokit/openapi@$OCTOKIT_OPENAPI_VERSION" \
    "@stoplight/spectral-cli@$SPECTRAL_VERSION" \
    "@redocly/cli@$REDOCLY_VERSION" >&2)
  touch "$stamp"
fi
SPEC=${SPEC:-$tools/node_modules/@octokit/openapi/generated/api.github.com.json}
SPEC=$(cd "$(dirname "$SPEC")" && pwd)/$(basename "$SPEC")

if [[ $NO_BUILD != 1 && " $TOOLS " == *" candor "* ]]; then
  log "building candor (release)..."
  cargo build --release --quiet -p candor --bin candor
fi
CANDOR=$(cd "$(dirname "$CANDOR")" && pwd)/$(basename "$CANDOR")

# Each tool runs in a directory of its own, so that no configuration file
# of this repository (or of a parent folder) is picked up.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'extends: ["spectral:oas"]\n' >"$work/spectral.yaml"
out=$CACHE/results
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Read once, so that every tool finds it in the page cache.
cat "$SPEC" >/dev/null

# count TOOL FILE : the number of findings in TOOL's JSON output.
count() {
  node -e '
    const [tool, file] = process.argv.slice(1);
    const r = JSON.parse(require("fs").readFileSync(file, "utf8"));
    const n = tool === "candor" ? r.findings.length
      : tool === "spectral" ? r.length
      : r.totals.errors + r.totals.warnings;
    console.log(n);' "$1" "$2"
}

# run TOOL OUT : runs TOOL once on $SPEC, its JSON report into OUT; sets
# $seconds and $rss_kb. Exit 1 only means findings, for all three.
run() {
  local tool=$1 report=$2 code=0
  local -a cmd
  case $tool in
    candor) cmd=("$CANDOR" lint --format json --no-progress "$SPEC") ;;
    spectral)
      cmd=("$tools/node_modules/.bin/spectral" lint --quiet --format json
        --ruleset "$work/spectral.yaml" "$SPEC")
      ;;
    redocly)
      cmd=("$tools/node_modules/.bin/redocly" lint --format json
        --extends recommended "$SPEC")
      ;;
    *)
      log "unknown tool $tool"
      exit 1
      ;;
  esac
  (cd "$work" && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
    /usr/bin/time -o "$work/time" -f '%e %M' "${cmd[@]}" >"$report" 2>"$work/stderr") ||
    code=$?
  if [[ $code != 0 && $code != 1 ]]; then
    log "$tool exited with $code:"
    tail -n 20 "$work/stderr" >&2
    exit 1
  fi
  read -r seconds rss_kb < <(tail -n 1 "$work/time")
}

rows=()
for tool in $TOOLS; do
  runs=$RUNS
  [[ $tool == spectral ]] && runs=$SPECTRAL_RUNS
  best=
  best_rss=
  times=()
  for ((i = 1; i <= runs; i++)); do
    log "running $tool ($i/$runs)..."
    run "$tool" "$out/$tool.json"
    times+=("$seconds")
    if [[ -z $best ]] || awk -v a="$seconds" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best=$seconds
    fi
    if [[ -z $best_rss || $rss_kb -gt $best_rss ]]; then
      best_rss=$rss_kb
    fi
  done
  findings=$(count "$tool" "$out/$tool.json")
  rows+=("$(printf '| %s | %s | %s | %.0f | %s |' "$tool" "$best" "${times[*]}" \
    "$(awk -v kb="$best_rss" 'BEGIN { print kb / 1024 }')" "$findings")")
done

printf '\n%s: %s bytes, %s CPUs; best of the runs, highest peak RSS; reports in %s\n\n' \
  "$SPEC" "$(wc -c <"$SPEC")" "$(nproc 2>/dev/null || echo '?')" "$out"
printf '| tool | best s | all runs s | peak RSS MB | findings |\n|---|---|---|---|---|\n'
printf '%s\n' "${rows[@]}"
