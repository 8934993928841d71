# SPDX-License-Identifier: Apache-2.0
# Helpers of the metrics tests written in bash (test_metrics.sh,
# test_metrics_prometheus.sh), sourced by them, over bridge_sh.sh's ($dir,
# $daemon, $port, the array bg, fail, free_port, raw, stop_daemon, and
# everything removed on any exit): a private shmbusd with --metrics on a
# free port, and its scrape. The test sets shmbusd, shmbus and bus first.
# shellcheck shell=bash

: "${shmbus:?the test sets shmbus}"
command -v python3 >/dev/null || { echo "python3 not installed: skipped"; exit 77; }
# shellcheck source=tests/bridge_sh.sh
. "${BASH_SOURCE[0]%/*}/bridge_sh.sh"

# scrape: the body of GET /metrics (status 200, or the test fails).
scrape() {
  local out
  out=$(raw 127.0.0.1 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
  [[ "$out" == "HTTP/1.1 200 OK"* ]] || fail "scrape: ${out:0:300}"
  out=${out#*$'\r\n\r\n'}
  printf '%s\n' "${out%<EOF>}"
}

# metrics_ready: the endpoint on $port answers (200, 400 or 401).
metrics_ready() {
  [[ "$(raw 127.0.0.1 'GET /metrics HTTP/1.0\r\n\r\n' 2>/dev/null)" == "HTTP/1.1 "[24]0[01]* ]]
}

# start_metrics_daemon [EXTRA...]: a daemon with --metrics on a free
# loopback port, answering GET /metrics.
start_metrics_daemon() {
  listen_daemon --metrics 127.0.0.1 metrics_ready "$@"
}
