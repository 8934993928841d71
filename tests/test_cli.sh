#!/usr/bin/env bash
# The shmbus command against a private shmbusd: pub (arguments and stdin),
# sub (--count, --group, --latency), stat (--json), eviction (--stall-timeout),
# usage errors, a clean
# shutdown, and stat's bridge section against a daemon run with --bridge.
# Usage: test_cli.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
dir=$(mktemp -d)
bus="cli$$"
export XDG_RUNTIME_DIR=$dir
unset SHMBUS_RUNTIME_DIR SHMBUS_DAEMON_UID # else the daemon and clients go elsewhere
daemon=""
client=""
cleanup() {
  # A killed client's wait fails: `|| true`, or set -e would end the trap
  # here and leave the daemon running (holding ctest's output open).
  if [ -n "$client" ]; then
    kill "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
  fi
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  # SBD_SEG_PREFIX (daemon/segfile.h): the segments of the bus.
  rm -f /dev/shm/shmbus."$bus".*
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# wait_stat PATTERN WHAT: poll `stat --json` (5 s at most) until grep finds
# PATTERN in it; fail with "stat does not show WHAT" if it never does.
wait_stat() {
  for _ in $(seq 100); do
    "$shmbus" --bus "$bus" stat --json | grep -q "$1" && return 0
    sleep 0.05
  done
  fail "stat does not show $2"
}

"$shmbusd" --bus "$bus" --foreground --log-level warn &
daemon=$!
for _ in $(seq 100); do [ -S "$dir/shmbus/$bus.sock" ] && break; sleep 0.05; done
[ -S "$dir/shmbus/$bus.sock" ] || fail "daemon did not start"

# Reliable topic: the subscriber exists before anything is published.
"$shmbus" --bus "$bus" sub prices --reliable --count 3 >"$dir/out" &
sub=$!
wait_stat '"subscribers":1' "the prices subscriber"
"$shmbus" --bus "$bus" pub prices "EURUSD 1.08493" "EURUSD 1.08494"
echo "GBPUSD 1.27" | "$shmbus" --bus "$bus" pub prices
wait "$sub" || fail "sub exited with $?"
printf 'EURUSD 1.08493\nEURUSD 1.08494\nGBPUSD 1.27\n' | cmp -s - "$dir/out" ||
  fail "sub printed: $(cat "$dir/out")"

# --latency prefixes each line with microseconds and a tab.
"$shmbus" --bus "$bus" sub lat --count 1 --latency >"$dir/lat" &
sub=$!
wait_stat '"name":"lat".*"subscribers":1' "the lat subscriber"
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
wait_stat '"name":"victim".*"subscribers":1' "the victim subscriber"
kill -9 "$sub"
wait "$sub" 2>/dev/null || true
wait_stat '"name":"victim"[^}]*"reaped":1,' "the killed subscriber reaped"
"$shmbus" --bus "$bus" stat | grep -q 'REAPED' || fail "no REAPED column"

# --stall-timeout: a stopped subscriber that holds a reliable topic back is
# evicted (the publisher goes on); continued, it says so and exits 1.
"$shmbus" --bus "$bus" sub stuck --reliable --capacity 4 --stall-timeout 0.3 \
  >/dev/null 2>"$dir/stuck.err" &
client=$!
wait_stat '"name":"stuck".*"subscribers":1' "the stuck subscriber"
kill -STOP "$client"
"$shmbus" --bus "$bus" pub stuck 1 2 3 4 5 6 7 8 || fail "publisher held back for good"
wait_stat '"name":"stuck"[^}]*"evicted":1,' "the eviction"
"$shmbus" --bus "$bus" stat | grep -q 'evicted$' || fail "no evicted slot in stat"
kill -CONT "$client"
set +e
wait "$client"
st=$?
set -e
client=""
[ "$st" -eq 1 ] || fail "evicted sub exit status $st"
grep -q 'evicted' "$dir/stuck.err" || fail "evicted sub said: $(cat "$dir/stuck.err")"

# Without --bridge, stat has no bridge section (text) and "bridge": null (JSON).
"$shmbus" --bus "$bus" stat >"$dir/stat.txt"
grep -q '^bridge' "$dir/stat.txt" && fail "bridge section without a bridge: $(cat "$dir/stat.txt")"
"$shmbus" --bus "$bus" stat --json | grep -q '"bridge":null}$' || fail "no \"bridge\": null"

# Usage errors (bad names included) exit 2; a mismatch on an existing topic exits 1.
set +e
"$shmbus" --bus "$bus" pub >/dev/null 2>&1; [ $? -eq 2 ] || fail "pub without a topic"
"$shmbus" --bus "$bus" sub prices --count x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --count"
"$shmbus" --bus "$bus" pub 'bad/name' x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad topic name"
"$shmbus" --bus "$bus" pub --capacity 64 prices x 2>"$dir/err"; [ $? -eq 1 ] || fail "mismatch"
grep -q 'other options' "$dir/err" || fail "mismatch message: $(cat "$dir/err")"
set -e

# SIGTERM with every client gone: the daemon removes its topics (none is in
# use) and its socket.
kill "$daemon"
wait "$daemon" || fail "daemon exit status $?"
daemon=""
ls /dev/shm | grep -q "^shmbus\.$bus\." && fail "segments left"
[ -e "$dir/shmbus/$bus.sock" ] && fail "socket left"

# With --bridge: stat shows the listen address, the totals and each remote
# connection (a RESP client named 'cli"1', subscribed to t1).
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$shmbusd" --bus "$bus" --foreground --log-level warn --bridge "127.0.0.1:$port" &
daemon=$!
for _ in $(seq 100); do [ -S "$dir/shmbus/$bus.sock" ] && break; sleep 0.05; done
[ -S "$dir/shmbus/$bus.sock" ] || fail "daemon with --bridge did not start"
# t1 exists before the client subscribes (from the next message on): this
# tests stat, not the bridge linking topics created after a SUBSCRIBE.
"$shmbus" --bus "$bus" pub t1 before
python3 - "$port" <<'PY' &
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        break
    except OSError:
        time.sleep(0.05)
else:
    sys.exit("cannot connect to the bridge")
s.sendall(b'*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$5\r\ncli"1\r\nSUBSCRIBE t1\r\n')
while s.recv(4096):  # hold the connection until killed
    pass
PY
client=$!
wait_stat '"subscriptions":"t1"' "the bridge client subscribed to t1"
"$shmbus" --bus "$bus" pub t1 hello
wait_stat '"msgs_out":1,"age_ms"' "the message sent to the bridge client"
"$shmbus" --bus "$bus" stat >"$dir/stat.txt"
grep -q "^bridge 127.0.0.1:$port: 1 connection open, 1 accepted, 0 refused$" "$dir/stat.txt" ||
  fail "bridge totals: $(cat "$dir/stat.txt")"
grep -q '^  msgs_in 0, msgs_out 1, slow_closed 0, auth_failed 0, auth_expired 0, proto_errors 0, bad_cells 0$' \
  "$dir/stat.txt" || fail "bridge counters: $(cat "$dir/stat.txt")"
grep -Eq '^ +1 127\.0\.0\.1:[0-9]+ +resp +cli"1 +authed +1 +0 +0 +0 +1 +[0-9.]+s +t1$' \
  "$dir/stat.txt" || fail "bridge connection row: $(cat "$dir/stat.txt")"
"$shmbus" --bus "$bus" stat --json >"$dir/stat.json"
python3 - "$dir/stat.json" "$port" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))["bridge"]
assert b["listen"] == "127.0.0.1:" + sys.argv[2], b
assert (b["open"], b["accepted"], b["msgs_in"], b["msgs_out"]) == (1, 1, 0, 1), b
assert b["refused"] == b["slow_closed"] == b["auth_failed"] == b["auth_expired"] == 0, b
assert b["proto_errors"] == b["bad_cells"] == 0, b
[c] = b["connections"]
assert (c["id"], c["protocol"], c["name"], c["authed"], c["paused"]) == (1, "resp", 'cli"1', True, False), c
assert (c["channels"], c["patterns"], c["subscriptions"]) == (1, 0, "t1"), c
assert (c["msgs_in"], c["msgs_out"], c["buffered"]) == (0, 1, 0), c
assert c["peer"].startswith("127.0.0.1:") and c["age_ms"] >= 0, c
PY
# --watch refreshes the bridge too: every refresh shows the connection.
timeout -s INT 2 "$shmbus" --bus "$bus" stat --watch 0.2 --json >"$dir/watch.json" || true
python3 - "$dir/watch.json" <<'PY'
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
assert len(docs) >= 2, docs
assert all(d["bridge"]["connections"][0]["subscriptions"] == "t1" for d in docs), docs
PY
kill "$client"
wait "$client" 2>/dev/null || true
client=""
wait_stat '"open":0,"accepted":1,' "the bridge client gone"
"$shmbus" --bus "$bus" stat >"$dir/stat.txt"
grep -q "^bridge 127.0.0.1:$port: 0 connections open, 1 accepted" "$dir/stat.txt" ||
  fail "bridge after the client left: $(cat "$dir/stat.txt")"
grep -q 'SUBSCRIPTIONS' "$dir/stat.txt" && fail "connection header without connections"
kill "$daemon"
wait "$daemon" || fail "daemon with --bridge exit status $?"
daemon=""
echo "test_cli: ok"
