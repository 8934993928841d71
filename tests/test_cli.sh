#!/usr/bin/env bash
# The shmbus command against a private shmbusd: pub (arguments and stdin),
# sub (--count, --group, --latency), stat (--json), usage errors, and a
# clean shutdown. Usage: test_cli.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
dir=$(mktemp -d)
bus="cli$$"
export XDG_RUNTIME_DIR=$dir
daemon=""
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -f /dev/shm/shmbus."$bus".*
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$shmbusd" --bus "$bus" --foreground --log-level warn &
daemon=$!
for _ in $(seq 100); do [ -S "$dir/shmbus-$bus.sock" ] && break; sleep 0.05; done
[ -S "$dir/shmbus-$bus.sock" ] || fail "daemon did not start"

# Reliable topic: the subscriber exists before anything is published.
"$shmbus" --bus "$bus" sub prices --reliable --count 3 >"$dir/out" &
sub=$!
for _ in $(seq 100); do
  "$shmbus" --bus "$bus" stat --json | grep -q '"subscribers":1' && break
  sleep 0.05
done
"$shmbus" --bus "$bus" pub prices "EURUSD 1.08493" "EURUSD 1.08494"
echo "GBPUSD 1.27" | "$shmbus" --bus "$bus" pub prices
wait "$sub" || fail "sub exited with $?"
printf 'EURUSD 1.08493\nEURUSD 1.08494\nGBPUSD 1.27\n' | cmp -s - "$dir/out" ||
  fail "sub printed: $(cat "$dir/out")"

# --latency prefixes each line with microseconds and a tab.
"$shmbus" --bus "$bus" sub lat --count 1 --latency >"$dir/lat" &
sub=$!
for _ in $(seq 100); do
  "$shmbus" --bus "$bus" stat --json | grep -q '"name":"lat".*"subscribers":1' && break
  sleep 0.05
done
"$shmbus" --bus "$bus" pub lat hello
wait "$sub"
grep -Eq '^[0-9]+\.[0-9]{3}	hello$' "$dir/lat" || fail "latency line: $(cat "$dir/lat")"

# stat --json is valid JSON and shows both topics with their counts.
"$shmbus" --bus "$bus" stat --json >"$dir/stat.json"
python3 - "$dir/stat.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
topics = {t["name"]: t for t in doc["topics"]}
assert topics["prices"]["mode"] == "reliable", topics
assert topics["prices"]["published"] == 3, topics
assert topics["lat"]["published"] == 1, topics
assert all(t["subscribers"] == 0 for t in topics.values()), topics
assert all(t["reaped"] == 0 and t["unblocked"] == 0 for t in topics.values()), topics
PY

# A subscriber killed with SIGKILL: stat shows its slot reaped.
"$shmbus" --bus "$bus" sub victim >/dev/null &
sub=$!
for _ in $(seq 100); do
  "$shmbus" --bus "$bus" stat --json | grep -q '"name":"victim".*"subscribers":1' && break
  sleep 0.05
done
kill -9 "$sub"
wait "$sub" 2>/dev/null || true
reaped=no
for _ in $(seq 100); do
  if "$shmbus" --bus "$bus" stat --json | grep -q '"name":"victim"[^}]*"reaped":1,'; then
    reaped=yes
    break
  fi
  sleep 0.05
done
[ "$reaped" = yes ] || fail "stat does not show the killed subscriber reaped"
"$shmbus" --bus "$bus" stat | grep -q 'REAPED' || fail "no REAPED column"

# Usage errors (bad names included) exit 2; a mismatch on an existing topic exits 1.
set +e
"$shmbus" --bus "$bus" pub >/dev/null 2>&1; [ $? -eq 2 ] || fail "pub without a topic"
"$shmbus" --bus "$bus" sub prices --count x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --count"
"$shmbus" --bus "$bus" pub 'bad/name' x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad topic name"
"$shmbus" --bus "$bus" pub --capacity 64 prices x 2>"$dir/err"; [ $? -eq 1 ] || fail "mismatch"
grep -q 'other options' "$dir/err" || fail "mismatch message: $(cat "$dir/err")"
set -e

# SIGTERM: the daemon removes its segments and socket.
kill "$daemon"
wait "$daemon" || fail "daemon exit status $?"
daemon=""
ls /dev/shm | grep -q "^shmbus\.$bus\." && fail "segments left"
[ -e "$dir/shmbus-$bus.sock" ] && fail "socket left"
echo "test_cli: ok"
