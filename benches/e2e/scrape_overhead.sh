#!/usr/bin/env bash
# Throughput of a full-speed replay with and without a Prometheus scrape every 100 ms.
#   benches/e2e/scrape_overhead.sh EVENTS.jsonl LABELS.jsonl [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
E=$1; L=$2; RUNS=${3:-3}
EDDY=${CARGO_TARGET_DIR:-target}/release/eddy
tmp=$(mktemp -d)
run() { # $1 = scrape (0/1)
  rm -f "$tmp/addr"
  "$EDDY" run -q --config benches/e2e/replay.toml --set "sources.events.path=$E" --set "sources.labels.path=$L" \
    --set metrics.enabled=true --set metrics.listen=127.0.0.1:0 --metrics-addr-file "$tmp/addr" \
    --summary "$tmp/s.json" &
  local pid=$! scrapes=0
  if [ "$1" = 1 ]; then
    # One long-lived scraper process (like Prometheus), every 100 ms while eddy runs.
    scrapes=$(python3 - "$pid" "$tmp/addr" <<'PY'
import os, sys, time, urllib.request
pid, addr_file = int(sys.argv[1]), sys.argv[2]
n = 0
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        break
    try:
        addr = open(addr_file).read().strip()
        if addr:
            urllib.request.urlopen(f"http://{addr}/metrics", timeout=1).read()
            n += 1
    except Exception:
        pass
    time.sleep(0.1)
print(n)
PY
)
  fi
  wait "$pid"
  python3 -c "import json;d=json.load(open('$tmp/s.json'));print(f\"scrape=$1 events/s={d['events_per_second']:.0f} scrapes=$scrapes\")"
}
for i in $(seq "$RUNS"); do run 0; run 1; done
rm -rf "$tmp"
