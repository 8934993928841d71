#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shmbus bench` against a private shmbusd: --json parsed and the text's
# parts, the scratch topic removed afterwards (no segment, none listed),
# also after SIGINT or SIGHUP mid-run; on a named live topic it only reads (the
# topic's published count is the publisher's alone) and a missing one is
# refused, not created; the largest --size runs, on a bounded ring.
# About 7 s.
# Usage: test_bench.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
bench=""
pub=""
CLI_TIMEOUT=30
WAIT_TIMEOUT=10
source "${BASH_SOURCE[0]%/*}/clitest.sh" # private_bus, fail, stop, wait_*, bounded, start_daemon, bus_cleanup, subscribed, shm_bytes
private_bus bn
cleanup() {
  exec 3>&- 2>/dev/null || true
  for p in "$bench" "$pub"; do [ -n "$p" ] && stop "$p" "a client at exit"; done
  bus_cleanup
}
trap cleanup EXIT
sb() { bounded "$shmbus" --bus "$bus" "$@" </dev/null; }
# no_scratch: no scratch topic listed, no segment of one.
seg_scratch() { compgen -G "/dev/shm/shmbus.$bus.shmbus-bench.*" >/dev/null; }
no_scratch() {
  ! seg_scratch &&
    ! "$shmbus" --bus "$bus" stat --json </dev/null | grep -q '"name":"shmbus-bench\.'
}

start_daemon "shmbusd"

# The scratch run: one JSON object, percentiles in order, the topic gone.
sb bench --json --count 2000 --size 128 >"$dir/out" || fail "bench --json: $(cat "$dir/out")"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_ns"]
assert r["scratch"] and r["count"] == 2000 and r["size"] == 128, r
assert 0 < l["p50"] <= l["p90"] <= l["p99"] <= l["p99_9"] <= l["max"], l
assert sum(b["count"] for b in r["histogram"]) == 2000, r["histogram"]
assert r["msgs_per_s"] > 0, r
assert r["topic"].startswith("shmbus-bench."), r
' "$dir/out" || fail "bench --json output: $(cat "$dir/out")"
no_scratch || fail "the scratch topic outlived bench"
# The largest --size: a ring small enough for the default --max-segment,
# and the bus's shm (which keeps a removed segment until the daemon
# stops) grown by far less than 1024 cells of 1 MiB.
before=$(shm_bytes)
sb bench --count 40 --size 1048576 >"$dir/out" 2>&1 || fail "bench --size 1048576: $(cat "$dir/out")"
[ $(($(shm_bytes) - before)) -le $((32 << 20)) ] || fail "bench --size 1048576 kept $(($(shm_bytes) - before)) bytes"
sb bench --count 300 >"$dir/out" || fail "bench (text)"
for w in p50 p90 p99 p99.9 max histogram throughput; do
  grep -q "$w" "$dir/out" || fail "the text lacks $w: $(cat "$dir/out")"
done

# SIGINT, or SIGHUP (its terminal closed), mid-run (a count that takes
# seconds): the scratch topic goes too.
for sig in INT HUP; do
  "$shmbus" --bus "$bus" bench --count 10000000 --size 4096 >/dev/null 2>&1 </dev/null &
  bench=$!
  wait_until "bench's scratch topic" seg_scratch
  kill -"$sig" "$bench"
  wait_exit "$bench" "bench after SIG$sig" || fail "bench after SIG$sig failed"
  bench=""
  no_scratch || fail "SIG$sig left the scratch topic"
done

# A named topic: read only, the live publisher's messages measured.
mkfifo "$dir/in"
"$shmbus" --bus "$bus" pub live <"$dir/in" &
pub=$!
exec 3>"$dir/in"
echo 0 >&3
wait_until "topic live" bash -c "\"$shmbus\" --bus $bus stat --json </dev/null | grep -q '\"name\":\"live\"'"
"$shmbus" --bus "$bus" bench --json --count 20 live >"$dir/out" </dev/null &
bench=$!
wait_until "bench's observer slot on live" bash -c \
  "\"$shmbus\" --bus $bus stat --json live </dev/null | grep -q '\"observer\":true'"
for i in $(seq 1 40); do echo "$i" >&3; sleep 0.01; done
wait_exit "$bench" "bench live" || fail "bench live: $(cat "$dir/out")"
bench=""
exec 3>&-
wait_exit "$pub" "pub live" || fail "pub live failed"
pub=""
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert not r["scratch"] and r["topic"] == "live" and r["count"] == 20, r
assert r["latency_ns"]["p50"] > 0 and r["msgs_per_s"] > 0, r
' "$dir/out" || fail "bench live output: $(cat "$dir/out")"
published=$("$shmbus" --bus "$bus" stat --json live </dev/null | grep -o '"published":[0-9]*' | cut -d: -f2)
[ "$published" = 41 ] || fail "live has $published messages: bench published on it"
rc=0
sb bench nosuch 2>"$dir/err" || rc=$?
if [ "$rc" != 1 ] || ! grep -q "never creates" "$dir/err"; then
  fail "bench nosuch: exit $rc, $(cat "$dir/err")"
fi
if "$shmbus" --bus "$bus" stat --json </dev/null | grep -q '"name":"nosuch"'; then
  fail "bench created nosuch"
fi
echo "ok"
