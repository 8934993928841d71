#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# shmbusd --metrics against real clients: a daemon with a few topics, a
# consumer group and subscribers, the bridge and a NATS link, whose scrape passes `promtool check
# metrics` and shows their counters; the Grafana dashboard is valid JSON
# and names only metrics the scrape has; HTTP edge cases (404, 405, 400,
# 431, a client that never ends its request, more connections than the
# limit) after which the daemon still serves; who may scrape, without and
# with --metrics-token-file; out of descriptors. About 11 s, most of it
# the request timeout.
# Usage: test_metrics.sh SHMBUSD SHMBUS SOURCE_DIR
set -euo pipefail
shmbusd=$1
shmbus=$2
src=$3
bus="met$$"
command -v promtool >/dev/null || { echo "promtool not installed (prometheus): skipped"; exit 77; }
# shellcheck source=tests/metrics_sh.sh
. "${BASH_SOURCE[0]%/*}/metrics_sh.sh"

# With the bridge and a NATS link that never connects: their families too.
# One slot series a topic (--metrics-max-slots 1), the rest counted.
start_metrics_daemon --bridge "127.0.0.1:$(free_port)" --nats "nats://127.0.0.1:$(free_port)" \
  --metrics-max-slots 1
# A client that never ends its request: closed after the request timeout
# (metrics.h SBD_METRICS_TIMEOUT_MS, 5 s), while the others are served.
( t0=$SECONDS
  raw 127.0.0.1 'GET /metrics HTTP/1.1\r\n' 8
  echo " after $((SECONDS - t0)) s" ) >"$dir/slow.out" &
slow=$!
bg+=("$slow")

"$shmbus" --bus "$bus" pub alpha m1 m2 m3
"$shmbus" --bus "$bus" pub --reliable work w1 w2
"$shmbus" --bus "$bus" sub alpha >/dev/null &
bg+=($!)
"$shmbus" --bus "$bus" sub alpha >/dev/null &
bg+=($!)
"$shmbus" --bus "$bus" sub work --group g1 --ack >/dev/null &
bg+=($!)
for _ in $(seq 100); do
  scrape >"$dir/m.txt"
  grep -q '^shmbus_topic_subscribers{topic="alpha"} 2$' "$dir/m.txt" &&
    grep -q '^shmbus_group_members{topic="work",group="g1"} 1$' "$dir/m.txt" && break
  sleep 0.05
done
promtool check metrics <"$dir/m.txt" || fail "promtool: $(cat "$dir/m.txt")"
for want in 'shmbus_topic_published_total{topic="alpha"} 3' \
  'shmbus_topic_published_total{topic="work"} 2' \
  'shmbus_topic_subscribers{topic="alpha"} 2' \
  'shmbus_topic_slot_series_omitted{topic="alpha"} 1' \
  'shmbus_group_members{topic="work",group="g1"} 1' \
  'shmbus_group_pending{topic="work",group="g1"} ' \
  'shmbus_subscriber_lag{topic="alpha",slot="0",pid="' \
  'shmbus_bridge_accepted_total 0' 'shmbus_bridge_connections 0' 'shmbus_nats_msgs_out_total 0' \
  'process_open_fds ' 'process_start_time_seconds ' 'process_cpu_seconds_total '; do
  grep -qF "$want" "$dir/m.txt" || fail "no '$want' in: $(cat "$dir/m.txt")"
done

grep -q 'slot="1"' "$dir/m.txt" && fail "a slot series past --metrics-max-slots"

# The dashboard: valid JSON, and every metric its queries name is served.
python3 -m json.tool "$src/docs/grafana-shmbus.json" >/dev/null || fail "dashboard JSON"
grep -o '\(shmbus\|process\)_[a-z_]*' "$src/docs/grafana-shmbus.json" | sort -u >"$dir/names"
while read -r name; do
  grep -q "^${name}[{ ]" "$dir/m.txt" || fail "the dashboard's $name is not served"
done <"$dir/names"

# HEAD: the headers alone.
out=$(raw 127.0.0.1 'HEAD /metrics HTTP/1.1\r\n\r\n')
[[ "$out" == "HTTP/1.1 200 OK"*$'\r\n\r\n<EOF>' ]] || fail "HEAD: $out"
out=$(raw 127.0.0.1 'GET /other HTTP/1.1\r\n\r\n')
[[ "$out" == "HTTP/1.1 404 Not Found"*"<EOF>" ]] || fail "404: $out"
out=$(raw 127.0.0.1 'POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi')
[[ "$out" == "HTTP/1.1 405 Method Not Allowed"*"Allow: GET, HEAD"*"<EOF>" ]] || fail "405: $out"
out=$(raw 127.0.0.1 'garbage\r\n\r\n')
[[ "$out" == "HTTP/1.1 400 Bad Request"*"<EOF>" ]] || fail "400: $out"
out=$(raw 127.0.0.1 "GET /$(printf 'a%.0s' $(seq 9000)) HTTP/1.1\\r\\n\\r\\n")
[[ "$out" == "HTTP/1.1 431 "*"<EOF>" ]] || fail "oversize: ${out:0:200}"

# Another uid than the daemon's (root) gets 403 without a token.
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null && id daemon >/dev/null 2>&1; then
  out=$(other=daemon as_other=1 raw 127.0.0.1 'GET /metrics HTTP/1.1\r\n\r\n')
  why="uid $(id -u daemon) may not use this bus: allow it with shmbusd --allow-uid or"
  why+=" --allow-gid, or give the metrics endpoint a token (--metrics-token-file)"
  [[ "$out" == "HTTP/1.1 403 Forbidden"*"403 Forbidden: $why"$'\n<EOF>' ]] ||
    fail "another uid: $out"
  grep -qF "metrics: a connection refused (403): $why" "$dir/log" || fail "no 403 logged"
fi

wait "$slow" || true
[[ "$(cat "$dir/slow.out")" == "<EOF> after "[4-7]" s" ]] || fail "slow client: $(cat "$dir/slow.out")"

# More connections than the limit (8) that never send a request: each new
# one takes the place of the oldest, answered 503, so that they cannot
# keep a scrape out.
python3 - "$port" <<'PY' || fail "connection limit"
import select, socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
busy, end = set(), time.monotonic() + 1
while len(busy) < 2 and time.monotonic() < end:
    for s in select.select(socks, [], [], max(0, end - time.monotonic()))[0]:
        if s.recv(100).startswith(b"HTTP/1.1 503"):
            busy.add(s)
if busy != set(socks[:2]):
    sys.exit("503 to connections %s" % sorted(socks.index(s) for s in busy))
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
s.settimeout(2)
got = s.recv(100)
if not got.startswith(b"HTTP/1.1 200"):
    sys.exit("a scrape past idle connections: %r" % got)
PY

# Out of descriptors: the endpoint pauses accepting rather than spinning
# on the connection it cannot accept, and serves it once it can. The soft
# limit goes down to the lowest free descriptor, so that none is left.
# cpu_ticks: the daemon's user and system time so far, in clock ticks.
cpu_ticks() {
  local st
  read -ra st <<<"$(sed 's/.*) //' "/proc/$daemon/stat")"
  echo $((st[11] + st[12]))
}
if command -v prlimit >/dev/null; then
  scrape >/dev/null
  soft=$(prlimit --pid "$daemon" --nofile --noheadings --output SOFT | tr -d ' ')
  # The least of a few looks: a descriptor a thread holds for a moment
  # (the reaper reads /proc) would leave a free one below the limit.
  low=100000
  for _ in 1 2 3 4 5; do
    n=0
    while [ -e "/proc/$daemon/fd/$n" ]; do n=$((n + 1)); done
    [ "$n" -lt "$low" ] && low=$n
  done
  prlimit --pid "$daemon" --nofile="$low:"
  raw 127.0.0.1 'GET /metrics HTTP/1.1\r\n\r\n' 10 >"$dir/emfile.out" &
  emfile=$!
  bg+=("$emfile")
  sleep 0.3
  t0=$(cpu_ticks)
  sleep 1
  t1=$(cpu_ticks)
  prlimit --pid "$daemon" --nofile="$soft:"
  wait "$emfile" || true
  [ $((t1 - t0)) -lt 20 ] || fail "out of descriptors: $((t1 - t0)) ticks of CPU in 1 s"
  [[ "$(cat "$dir/emfile.out")" == "HTTP/1.1 200 OK"*"<EOF>" ]] ||
    fail "out of descriptors, then not: $(head -c 300 "$dir/emfile.out")"
  grep -q "metrics: accept: Too many open files" "$dir/log" || fail "no warning logged"
fi
stop_daemon

# With a token, every scrape needs it.
echo "tok-$$" >"$dir/token"
start_metrics_daemon --metrics-token-file "$dir/token"
out=$(raw 127.0.0.1 'GET /metrics HTTP/1.1\r\n\r\n')
[[ "$out" == "HTTP/1.1 401 Unauthorized"*"WWW-Authenticate: Bearer"* ]] || fail "no token: $out"
out=$(raw 127.0.0.1 'GET /metrics HTTP/1.1\r\nAuthorization: Bearer wrong\r\n\r\n')
[[ "$out" == "HTTP/1.1 401 "* ]] || fail "wrong token: $out"
out=$(raw 127.0.0.1 "GET /metrics HTTP/1.1\\r\\nAuthorization: Bearer tok-$$\\r\\n\\r\\n")
[[ "$out" == "HTTP/1.1 200 OK"*"process_open_fds"* ]] || fail "token: ${out:0:300}"
stop_daemon
echo "test_metrics: ok"
