#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The daemon's events topic, _shmbus.events, end to end: read through the
# bridge with the real redis-cli and with `shmbus sub`, after a subscriber
# SIGKILLed ("reaped" with its pid), a reliable subscriber stopped past
# the stall timeout ("evicted"), a lossy one that fell behind ("loss" with
# the exact delta), a bridge client that stopped reading ("bridge_closed");
# every line valid JSON of schema version 1; publishing there refused to
# the CLI and to the bridge; and a restarted daemon going on in the same
# topic ("segment_adopted" to a reader of the previous one, and
# "segment_refused" for a file of the bus that is no topic). A private
# shmbusd on a free port and a private bus; every background process and
# segment is removed on any exit. Usage: test_events.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
command -v redis-cli >/dev/null || { echo "redis-cli not installed: skipped"; exit 77; }
bus="evt$$"
# shellcheck source=tests/bridge_sh.sh
. "${BASH_SOURCE[0]%/*}/bridge_sh.sh" # bg: background redis-cli and shmbus processes

nl=$'\n'
ev=_shmbus.events

# wait_subscribers TOPIC N: the daemon counts N local subscribers of TOPIC.
wait_subscribers() {
  for _ in $(seq 200); do
    "$shmbus" --bus "$bus" stat --json | grep -q "\"name\":\"$1\"[^}]*\"subscribers\":$2" &&
      return 0
    sleep 0.05
  done
  fail "no $2 subscriber(s) on $1"
}

# The slow bridge client: subscribes to TOPIC on PORT with a small
# receive buffer and never reads, until killed.
slow_client() {
  exec python3 - "$1" "$2" <<'EOF'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"SUBSCRIBE " + sys.argv[2].encode() + b"\r\n")
time.sleep(120)
EOF
}

start_daemon 127.0.0.1 --log-level warn --bridge-max-output 4K

# Readers: redis-cli through the bridge, and the shmbus command.
redis-cli -p "$port" subscribe "$ev" >"$dir/redis.out" 2>"$dir/redis.err" &
bg+=($!)
wait_for "$dir/redis.out" "subscribe${nl}${ev}${nl}1"
# From the oldest event the ring holds: nothing is missed while it
# subscribes (the topic is not listed, so `shmbus stat` cannot tell when).
"$shmbus" --bus "$bus" sub "$ev" --from oldest >"$dir/local.out" &
reader=$!
bg+=("$reader")

# A subscriber killed: "reaped" with its pid, to both readers.
"$shmbus" --bus "$bus" sub victim >/dev/null &
victim=$!
bg+=("$victim")
wait_subscribers victim 1
kill -9 "$victim"
want="\"event\":\"reaped\",\"pid\":$victim,\"topic\":\"victim\",\"slots\":1,"
wait_for "$dir/redis.out" "$want"
wait_for "$dir/local.out" "$want"

# A reliable subscriber that stops reading past the stall timeout while
# the ring is full: "evicted", and the publisher goes on.
"$shmbus" --bus "$bus" sub stuck --reliable --capacity 2 --stall-timeout 0.3 >/dev/null 2>&1 &
stuck=$!
bg+=("$stuck")
wait_subscribers stuck 1
kill -STOP "$stuck"
"$shmbus" --bus "$bus" pub stuck a b c d || fail "publisher not unblocked by the eviction"
wait_for "$dir/local.out" "\"event\":\"evicted\",\"topic\":\"stuck\",\"slot\":0,\"pid\":$stuck,"
kill -CONT "$stuck"

# A lossy subscriber stopped while 100 messages pass its 16 cells: it
# loses 84, told once it reads again, with the delta and the total.
"$shmbus" --bus "$bus" sub lossy --capacity 16 >/dev/null 2>&1 &
lossy=$!
bg+=("$lossy")
wait_subscribers lossy 1
kill -STOP "$lossy"
seq 100 | "$shmbus" --bus "$bus" pub lossy
kill -CONT "$lossy"
wait_for "$dir/local.out" "\"event\":\"loss\",\"topic\":\"lossy\",\"slot\":0,\"pid\":$lossy,\"lost\":84,\"total\":84}"
# Only when it moves: a second batch it keeps up with tells nothing more.
"$shmbus" --bus "$bus" pub lossy x y
sleep 0.3
[ "$(grep -c '"event":"loss"' "$dir/local.out")" = 1 ] || fail "loss told again: $(cat "$dir/local.out")"

# A bridge client that never reads: closed when its output passes
# --bridge-max-output, and told.
"$shmbus" --bus "$bus" pub flood --max-msg 1024 created
slow_client "$port" flood &
bg+=($!)
head -c 1000 /dev/zero | tr '\0' x >"$dir/line"
# Rounds of 300 KB until it is closed: its subscription is in place
# after the first round or a few.
for _ in $(seq 50); do
  grep -q '"event":"bridge_closed"' "$dir/local.out" && break
  for _ in $(seq 300); do cat "$dir/line"; echo; done | "$shmbus" --bus "$bus" pub flood
  sleep 0.1
done
wait_for "$dir/local.out" "\"event\":\"bridge_closed\",\"peer\":\"127.0.0.1:"
grep -q '"bridge_closed",.*"why":"slow"}' "$dir/local.out" || fail "bridge_closed why: $(cat "$dir/local.out")"

# Nobody but the daemon publishes there: the CLI and the bridge are refused.
out=$("$shmbus" --bus "$bus" pub "$ev" forged 2>&1) && fail "CLI publish on $ev accepted"
[[ "$out" == *refused* ]] || fail "CLI publish on $ev: $out"
out=$(redis-cli -p "$port" publish "$ev" forged 2>&1 || true)
[[ "$out" == *"only the daemon publishes"* ]] || fail "bridge publish on $ev: $out"
sleep 0.2
grep -q forged "$dir/local.out" "$dir/redis.out" && fail "a forged event was delivered"

# Every event is one JSON object of schema version 1, with its time, the
# bus and its kind.
python3 - "$dir/local.out" "$bus" <<'EOF' || fail "events not as the schema says: $(cat "$dir/local.out")"
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    assert e["v"] == 1 and e["bus"] == sys.argv[2], e
    assert isinstance(e["time_ns"], int) and e["time_ns"] > 0, e
    assert isinstance(e["event"], str), e
    assert len(line.encode()) <= 1024 + 1, e
    n += 1
assert n >= 4, n
EOF

# A restarted daemon takes the topic over and goes on in it: the reader
# of the previous one hears of the segments it adopted.
# A file of the bus that is no topic is refused, and left in place.
kill "$daemon"
wait "$daemon" || fail "daemon exit status $?"
daemon=""
junk=/dev/shm/shmbus.$bus.junk
head -c 4096 /dev/zero | tr '\0' x >"$junk" # no magic: not a topic
chmod 600 "$junk"
start_daemon 127.0.0.1 --log-level warn
wait_for "$dir/local.out" "\"event\":\"segment_adopted\",\"segment\":\"shmbus.$bus.lossy\""
wait_for "$dir/local.out" "\"event\":\"segment_refused\",\"segment\":\"shmbus.$bus.junk\","
grep -q "\"segment\":\"shmbus.$bus.junk\",\"why\":\"[^\"]*\",\"action\":\"left\"}" "$dir/local.out" ||
  fail "segment_refused: $(grep junk "$dir/local.out")"
[ -e "$junk" ] || fail "the refused file was removed"
rm -f "$junk"
kill -0 "$reader" || fail "the events reader died with the daemon"

# Not listed: the daemon's own topic is read by name.
"$shmbus" --bus "$bus" stat --json | grep -q "$ev" && fail "$ev listed"

# Its readers gone, the stopped daemon removes the topic like any other.
stop_daemon
left=$(compgen -G "/dev/shm/shmbus.$bus.*" || true)
[ -z "$left" ] || fail "left in /dev/shm: $left"
echo "test_events: ok"
