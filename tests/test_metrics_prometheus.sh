#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real Prometheus server (Debian's prometheus) scrapes shmbusd --metrics
# every second; N messages published on a topic are read back as the
# topic's counter through Prometheus's HTTP API (/api/v1/query). Private
# daemon, server, ports, storage and configuration in a temporary
# directory; everything stopped and removed on any exit. About 5 s.
# Usage: test_metrics_prometheus.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
bus="mep$$"
command -v prometheus >/dev/null || { echo "prometheus not installed: skipped"; exit 77; }
# shellcheck source=tests/metrics_sh.sh
. "${BASH_SOURCE[0]%/*}/metrics_sh.sh"

# shellcheck disable=SC2119 # no extra options
start_metrics_daemon
"$shmbus" --bus "$bus" pub promtest m1 m2 m3 m4 m5 m6 m7

# query EXPR: the first sample's value of EXPR now, or "" (none yet).
query() {
  python3 - "$pport" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = "http://127.0.0.1:%s/api/v1/query?query=%s" % (sys.argv[1], urllib.parse.quote(sys.argv[2]))
try:
    r = json.load(urllib.request.urlopen(url, timeout=2))
except OSError:
    sys.exit(0)
res = r.get("data", {}).get("result", [])
if r.get("status") == "success" and res:
    print(res[0]["value"][1])
PY
}

cat >"$dir/prometheus.yml" <<EOF2
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: shmbus
    static_configs:
      - targets: ["127.0.0.1:$port"]
EOF2
got=""
for _ in $(seq 5); do
  pport=$(free_port)
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
    --web.listen-address="127.0.0.1:$pport" --log.level=warn 2>"$dir/prometheus.log" &
  bg+=($!)
  for _ in $(seq 150); do
    kill -0 "${bg[-1]}" 2>/dev/null || break
    got=$(query 'shmbus_topic_published_total{job="shmbus",topic="promtest"}')
    [ "$got" = 7 ] && break
    sleep 0.1
  done
  kill -0 "${bg[-1]}" 2>/dev/null && break # running: not a port taken meanwhile
done
[ "$got" = 7 ] || fail "Prometheus read '$got', not 7: $(tail -5 "$dir/prometheus.log")"
[ "$(query 'up{job="shmbus"}')" = 1 ] || fail "the target is not up"
echo "test_metrics_prometheus: ok"
