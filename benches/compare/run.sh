#!/usr/bin/env bash
# eddy vs Vowpal Wabbit vs River on the same stream (see benches/README.md, "Comparison").
#
#   benches/compare/run.sh [N_EVENTS]        # default 1000000
#
# Environment: CARGO_TARGET_DIR (default target), PYTHON (default python3), REPEATS (runs of
# eddy and of VW, median reported; default 3), RIVER_EVENTS (events River runs on; default
# N; a smaller value runs a prefix, extrapolated linearly to N and labelled so), RIVER_DELAY (default 0 = learn each
# label immediately, like VW; 500 = eddy's label delay on this data).
#
# Steps: build eddy (release); generate N events of a 10-feature rotating hyperplane with
# `eddy generate` into bench-data/compare (kept between runs for the same N); convert them to
# VW's text format (not timed); then time, one after the other, whole processes:
#   eddy  : eddy run --config benches/e2e/replay.toml (reads and joins both JSON-lines files,
#           labels 500 events late, prequential evaluation, SGD 0.01, no prediction output)
#   VW    : python -m vowpalwabbit -d compare.vw --loss_function logistic --link logistic -p preds
#           (VW's native driver inside the pip package; immediate learning, progressive preds)
#   River : benches/compare/river_baseline.py (StandardScaler | LogisticRegression)
# and print a table of wall seconds, events/s, prequential accuracy and ratio vs eddy.
set -euo pipefail

N=${1:-1000000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
REPEATS=${REPEATS:-3}
RIVER_EVENTS=${RIVER_EVENTS:-$N}
RIVER_DELAY=${RIVER_DELAY:-0}
DATA=bench-data/compare
HERE=benches/compare
mkdir -p "$DATA"

echo "== build eddy (release)" >&2
cargo build --release --quiet
EDDY=${CARGO_TARGET_DIR:-target}/release/eddy

if ! "$PY" -c 'import river, vowpalwabbit' 2>/dev/null; then
    echo "== pip install river==0.26.1 vowpalwabbit" >&2
    "$PY" -m pip install -q river==0.26.1 vowpalwabbit
fi

if [[ "$(cat "$DATA/n_events" 2>/dev/null)" != "$N" ]]; then
    echo "== generate $N events" >&2
    rm -f "$DATA"/*
    "$EDDY" generate --concept '{ kind = "hyperplane", n_features = 10 }' --events "$N" \
        --out "$DATA" --format jsonl
    echo "== convert to VW text (not timed)" >&2
    "$PY" "$HERE/to_vw.py" "$DATA/events.jsonl" "$DATA/labels.jsonl" "$DATA/compare.vw"
    echo "$N" > "$DATA/n_events"
fi
# Same page-cache state for every tool: all inputs read once before timing.
cat "$DATA/events.jsonl" "$DATA/labels.jsonl" "$DATA/compare.vw" > /dev/null

# timed NAME CMD...: runs CMD, appends "wall_seconds max_rss_kib cpu_seconds" to
# $DATA/NAME.times (RSS and CPU from GNU time when it is installed, else 0).
timed() {
    local name=$1; shift
    local t0 t1 rss="0 0"
    t0=$(date +%s.%N)
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -f '%M %U %S' -o "$DATA/$name.rss" "$@" > "$DATA/$name.log" 2>&1
        rss=$(tail -n 1 "$DATA/$name.rss" | awk '{ printf "%d %.2f", $1, $2 + $3 }')
    else
        "$@" > "$DATA/$name.log" 2>&1
    fi
    t1=$(date +%s.%N)
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') $rss" >> "$DATA/$name.times"
}

rm -f "$DATA"/*.times
echo "load average before timing: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for i in $(seq "$REPEATS"); do
    echo "== eddy run ($i/$REPEATS)" >&2
    timed eddy "$EDDY" run --config benches/e2e/replay.toml \
        --set "sources.events.path=$DATA/events.jsonl" --set "sources.labels.path=$DATA/labels.jsonl" \
        --summary "$DATA/eddy-summary.json"
    echo "== vowpal wabbit ($i/$REPEATS)" >&2
    timed vw "$PY" -m vowpalwabbit -d "$DATA/compare.vw" --loss_function logistic --link logistic \
        -p "$DATA/vw-preds.txt"
done
echo "load average before River: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "== river on $RIVER_EVENTS events, delay $RIVER_DELAY" >&2
timed river "$PY" "$HERE/river_baseline.py" "$DATA/events.jsonl" "$DATA/labels.jsonl" \
    --limit "$RIVER_EVENTS" --delay "$RIVER_DELAY" --out "$DATA/river.json"

"$PY" "$HERE/report.py" --data "$DATA" --events "$N"
