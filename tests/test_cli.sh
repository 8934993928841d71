#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The shmbus command against a private shmbusd: pub (arguments and stdin),
# sub (--count, --group, --latency, --from-seq, --from-time), stat (--json; slots, groups, a work
# queue's numbers, the columns after a long group name), eviction
# (--stall-timeout), usage errors, --version, a clean
# shutdown, stat without a bridge or NATS, stat's bridge section against a
# daemon run with --bridge, and its NATS section against a daemon run with
# --nats: at a port nobody listens on, then at a nats-server of its own.
# Every call of the shmbus command runs within CLI_TIMEOUT seconds and every
# wait has a deadline: on a hang, the kernel stacks of the stuck process's
# and the daemon's threads and the daemon's log are printed before the
# test fails, so that the output says where it hung.
# Usage: test_cli.sh SHMBUSD SHMBUS ACKWORK
set -euo pipefail
shmbusd=$1
shmbus=$2
ackwork=$3
dir=$(mktemp -d)
bus="cli$$"
export XDG_RUNTIME_DIR=$dir
unset SHMBUS_RUNTIME_DIR SHMBUS_DAEMON_UID # else the daemon and clients go elsewhere
daemon=""
client=""
natsd=""  # the nats-server, and the process holding a port nobody listens on
holder=""
log="$dir/daemon.log" # the running daemon's stderr
CLI_TIMEOUT=20        # seconds for one call of the shmbus command
WAIT_TIMEOUT=10       # seconds for what a wait loop waits for
source "${BASH_SOURCE[0]%/*}/clitest.sh" # fail, alive, stop, wait_*, bounded, start_daemon
cleanup() {
  [ -n "$client" ] && stop "$client" "a client at exit"
  [ -n "$daemon" ] && stop "$daemon" "the daemon at exit"
  [ -n "$natsd" ] && stop "$natsd" "the nats-server at exit"
  [ -n "$holder" ] && stop "$holder" "the port holder at exit"
  # SBD_SEG_PREFIX (daemon/segfile.h): the segments of the bus.
  rm -f /dev/shm/shmbus."$bus".*
  rm -rf "$dir"
}
trap cleanup EXIT
# wait_file FILE WHAT: FILE exists and is not empty (WAIT_TIMEOUT seconds
# at most), or the test fails with "WHAT never came".
wait_file() {
  local end=$((SECONDS + WAIT_TIMEOUT))
  until [ -s "$1" ]; do
    [ "$SECONDS" -ge "$end" ] && fail "$2 never came"
    sleep 0.05
  done
}
# wait_stat PATTERN WHAT: poll `stat --json` (WAIT_TIMEOUT seconds at most)
# until grep finds PATTERN in it; fail with "stat does not show WHAT" (and
# where the daemon is) if it never does.
wait_stat() {
  local end=$((SECONDS + WAIT_TIMEOUT))
  until bounded "$shmbus" --bus "$bus" stat --json | grep -q "$1"; do
    [ "$SECONDS" -ge "$end" ] && { hang_report "$daemon" "stat"; fail "stat does not show $2"; }
    sleep 0.05
  done
}

# --version: the binary's version and the library's, the same here since
# both come from this build; exit 0, whether a daemon runs or not.
ver_re='[0-9]+\.[0-9]+\.[0-9]+'
for prog in shmbus shmbusd; do
  out=$(bounded "${!prog}" --version) || fail "$prog --version exited non-zero"
  [[ $out =~ ^$prog\ ($ver_re)\ \(libshmbus\ ($ver_re)\)$ ]] ||
    fail "$prog --version printed '$out'"
  [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] || fail "$prog and libshmbus disagree: '$out'"
  bounded "${!prog}" --help | grep -- '--version' >/dev/null || fail "$prog --help does not list --version"
done

start_daemon "daemon"

# Reliable topic: the subscriber exists before anything is published.
"$shmbus" --bus "$bus" sub prices --reliable --count 3 >"$dir/out" &
sub=$!
wait_stat '"subscribers":1' "the prices subscriber"
bounded "$shmbus" --bus "$bus" pub prices "EURUSD 1.08493" "EURUSD 1.08494"
echo "GBPUSD 1.27" | bounded "$shmbus" --bus "$bus" pub prices
wait_exit "$sub" "sub prices" || fail "sub exited with $?"
printf 'EURUSD 1.08493\nEURUSD 1.08494\nGBPUSD 1.27\n' | cmp -s - "$dir/out" ||
  fail "sub printed: $(cat "$dir/out")"

# --latency prefixes each line with microseconds and a tab.
"$shmbus" --bus "$bus" sub lat --count 1 --latency >"$dir/lat" &
sub=$!
wait_stat '"name":"lat".*"subscribers":1' "the lat subscriber"
bounded "$shmbus" --bus "$bus" pub lat hello
wait_exit "$sub" "sub lat"
grep -Eq '^[0-9]+\.[0-9]{3}	hello$' "$dir/lat" || fail "latency line: $(cat "$dir/lat")"

# stat --json is valid JSON and shows both topics with their counts.
bounded "$shmbus" --bus "$bus" stat --json >"$dir/stat.json"
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
wait_exit "$sub" "sub victim" 2>/dev/null || true
wait_stat '"name":"victim"[^}]*"reaped":1,' "the killed subscriber reaped"
bounded "$shmbus" --bus "$bus" stat | grep -q 'REAPED' || fail "no REAPED column"

# --stall-timeout: a stopped subscriber that holds a reliable topic back is
# evicted (the publisher goes on); continued, it says so and exits 1.
"$shmbus" --bus "$bus" sub stuck --reliable --capacity 4 --stall-timeout 0.3 \
  >/dev/null 2>"$dir/stuck.err" &
client=$!
wait_stat '"name":"stuck".*"subscribers":1' "the stuck subscriber"
kill -STOP "$client"
bounded "$shmbus" --bus "$bus" pub stuck 1 2 3 4 5 6 7 8 || fail "publisher held back for good"
wait_stat '"name":"stuck"[^}]*"evicted":1,' "the eviction"
bounded "$shmbus" --bus "$bus" stat | grep -q 'evicted$' || fail "no evicted slot in stat"
kill -CONT "$client"
set +e
wait_exit "$client" "sub stuck"
st=$?
set -e
client=""
[ "$st" -eq 1 ] || fail "evicted sub exit status $st"
grep -q 'evicted' "$dir/stuck.err" || fail "evicted sub said: $(cat "$dir/stuck.err")"

# Consumer groups: stat shows each group in use after the topic's slots,
# by name, with its members, position and lag; a group whose members do
# not acknowledge shows "-" for the work-queue columns (text), and
# max_deliveries 0 and dead_letter null (JSON). A stopped member takes
# nothing, so the lag is exact.
"$shmbus" --bus "$bus" sub jobs --reliable --group workers >/dev/null &
client=$!
wait_stat '"name":"jobs".*"subscribers":1' "the workers member"
kill -STOP "$client"
bounded "$shmbus" --bus "$bus" pub jobs a b
bounded "$shmbus" --bus "$bus" stat >"$dir/stat.txt"
grep -Eq '^    GROUP +MEMBERS +POSITION +LAG +LOST +PENDING +REDELIVERED +DEAD_LETTERED +DL_FAILED +MAX_DELIV +DEAD_LETTER$' \
  "$dir/stat.txt" || fail "no group header: $(cat "$dir/stat.txt")"
grep -Eq '^    workers +1 +0 +2 +0 +- +- +- +- +- +-$' "$dir/stat.txt" ||
  fail "workers line: $(cat "$dir/stat.txt")"
bounded "$shmbus" --bus "$bus" stat --json >"$dir/stat.json"
python3 - "$dir/stat.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
topics = {t["name"]: t for t in doc["topics"]}
assert topics["prices"]["groups"] == [], topics["prices"]
want = {"index": 1, "name": "workers", "members": 1, "max_deliveries": 0, "dead_letter": None,
        "position": 0, "lag": 2, "lost": 0, "pending": 0, "redelivered": 0, "dead_lettered": 0,
        "dead_letter_failed": 0}
assert topics["jobs"]["groups"] == [want], topics["jobs"]
PY
kill -CONT "$client"
wait_stat '"name":"jobs".*"groups":\[{[^]]*"lag":0,' "the workers member caught up"
stop "$client" "sub jobs"
client=""

# A work queue: ackwork (tests/ackwork.c), an acknowledging member of
# group crew with max_deliveries 3, acknowledges one message, nacks a
# poison message at each of its 3 deliveries (the daemon then
# dead-letters it to work.dlq) and nacks a third message for an hour.
# stat shows the group's real numbers: 1 pending, 2 redelivered, 1
# dead-lettered, none failed, max deliveries 3 and the dead-letter topic.
bounded "$ackwork" "$bus" work crew 3 || fail "ackwork failed"
wait_stat '"name":"crew"[^}]*"dead_lettered":1,' "the poison message dead-lettered"
bounded "$shmbus" --bus "$bus" stat >"$dir/stat.txt"
grep -Eq '^    crew +0 +3 +0 +0 +1 +2 +1 +0 +3  work\.dlq$' "$dir/stat.txt" ||
  fail "crew line: $(cat "$dir/stat.txt")"
bounded "$shmbus" --bus "$bus" stat --json >"$dir/stat.json"
python3 - "$dir/stat.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
topics = {t["name"]: t for t in doc["topics"]}
want = {"index": 1, "name": "crew", "members": 0, "max_deliveries": 3, "dead_letter": "work.dlq",
        "position": 3, "lag": 0, "lost": 0, "pending": 1, "redelivered": 2, "dead_lettered": 1,
        "dead_letter_failed": 0}
assert topics["work"]["groups"] == [want], topics["work"]
assert topics["work.dlq"]["mode"] == "reliable", topics["work.dlq"]
assert topics["work.dlq"]["published"] == 1, topics["work.dlq"]
PY

# A group name longer than the GROUP column widens it, in both tables of
# its topic: every column after it stays under its header.
"$shmbus" --bus "$bus" sub wide --reliable --group image-thumbnailers-europe-west >/dev/null &
client=$!
wait_stat '"name":"wide".*"subscribers":1' "the wide member"
bounded "$shmbus" --bus "$bus" stat >"$dir/stat.txt"
python3 - "$dir/stat.txt" <<'PY' || fail "wide group columns: $(cat "$dir/stat.txt")"
import sys
lines = open(sys.argv[1]).read().splitlines()
top = lines.index(next(l for l in lines if l.startswith("wide ")))
slot_head, slot_row, group_head, group_row = lines[top + 1:top + 5]
# The right edge of each right-aligned column, and where STATE starts.
for head, row, col in ((group_head, group_row, "MEMBERS"), (slot_head, slot_row, "RECEIVED")):
    end = head.index(col) + len(col)
    assert row[end - 1] != " " and row[end] == " ", (col, head, row)
assert slot_row[slot_head.index("STATE")] == "-", (slot_head, slot_row)
assert group_row.split()[0] == "image-thumbnailers-europe-west", group_row
assert len(group_row.split()) == len(group_head.split()), (group_head, group_row)
PY
stop "$client" "sub wide"
client=""

# Without --bridge and --nats, stat has no bridge or nats section (text),
# and "bridge": null, "nats": null (JSON).
bounded "$shmbus" --bus "$bus" stat >"$dir/stat.txt"
grep -q '^bridge' "$dir/stat.txt" && fail "bridge section without a bridge: $(cat "$dir/stat.txt")"
grep -q '^nats' "$dir/stat.txt" && fail "nats section without --nats: $(cat "$dir/stat.txt")"
bounded "$shmbus" --bus "$bus" stat --json | grep -q '"bridge":null,"nats":null}$' ||
  fail "no \"bridge\": null, \"nats\": null"

# sub --from-seq and --from-time: a lossy topic's ring keeps what was
# published (seqs 0..4); a seq past the tail is refused (exit 1).
bounded "$shmbus" --bus "$bus" pub fromseq m0 m1 m2 m3 m4
bounded "$shmbus" --bus "$bus" sub fromseq --from-seq 2 --count 3 >"$dir/out"
[ "$(cat "$dir/out")" = "$(printf 'm2\nm3\nm4')" ] || fail "--from-seq 2: $(cat "$dir/out")"
bounded "$shmbus" --bus "$bus" sub fromseq --from-time 1970-01-01T00:00:00Z --count 2 >"$dir/out"
[ "$(cat "$dir/out")" = "$(printf 'm0\nm1')" ] || fail "--from-time: $(cat "$dir/out")"

# Usage errors (bad names included) exit 2; a mismatch on an existing topic exits 1.
set +e
bounded "$shmbus" --bus "$bus" sub fromseq --from-seq 6 2>"$dir/err"; [ $? -eq 1 ] || fail "--from-seq past the tail"
grep -q 'outside' "$dir/err" || fail "--from-seq 6 message: $(cat "$dir/err")"
bounded "$shmbus" --bus "$bus" sub fromseq --from-seq x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --from-seq"
bounded "$shmbus" --bus "$bus" sub fromseq --from-time yesterday >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --from-time"
bounded "$shmbus" --bus "$bus" sub fromseq --from-seq 1 --from oldest >/dev/null 2>&1; [ $? -eq 2 ] || fail "two starts"
bounded "$shmbus" --bus "$bus" sub fromseq --from-seq 1 --group g >/dev/null 2>&1; [ $? -eq 2 ] || fail "--from-seq with --group"
bounded "$shmbus" --bus "$bus" pub >/dev/null 2>&1; [ $? -eq 2 ] || fail "pub without a topic"
bounded "$shmbus" --bus "$bus" sub prices --count x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --count"
bounded "$shmbus" --bus "$bus" pub 'bad/name' x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad topic name"
bounded "$shmbus" --bus "$bus" pub --capacity 64 prices x 2>"$dir/err"; [ $? -eq 1 ] || fail "mismatch"
grep -q 'other options' "$dir/err" || fail "mismatch message: $(cat "$dir/err")"
set -e

# SIGTERM with every client gone: the daemon removes its topics (none is in
# use) and its socket.
kill "$daemon"
wait_exit "$daemon" "the stopping daemon" || fail "daemon exit status $?"
daemon=""
ls /dev/shm | grep -q "^shmbus\.$bus\." && fail "segments left"
[ -e "$dir/shmbus/$bus.sock" ] && fail "socket left"

# With --bridge: stat shows the listen address, the totals and each remote
# connection (a RESP client named 'cli"1', subscribed to t1).
port=$(free_port)
log="$dir/daemon-bridge.log"
start_daemon "daemon with --bridge" --bridge "127.0.0.1:$port"
# t1 exists before the client subscribes (from the next message on): this
# tests stat, not the bridge linking topics created after a SUBSCRIBE.
bounded "$shmbus" --bus "$bus" pub t1 before
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
bounded "$shmbus" --bus "$bus" pub t1 hello
wait_stat '"msgs_out":1,"age_ms"' "the message sent to the bridge client"
bounded "$shmbus" --bus "$bus" stat >"$dir/stat.txt"
grep -q "^bridge 127.0.0.1:$port: 1 connection open, 1 accepted, 0 refused$" "$dir/stat.txt" ||
  fail "bridge totals: $(cat "$dir/stat.txt")"
grep -q '^  msgs_in 0, msgs_out 1, slow_closed 0, auth_failed 0, auth_expired 0, proto_errors 0, bad_cells 0$' \
  "$dir/stat.txt" || fail "bridge counters: $(cat "$dir/stat.txt")"
grep -Eq '^ +1 127\.0\.0\.1:[0-9]+ +resp +cli"1 +authed +1 +0 +0 +0 +1 +[0-9.]+s +t1$' \
  "$dir/stat.txt" || fail "bridge connection row: $(cat "$dir/stat.txt")"
bounded "$shmbus" --bus "$bus" stat --json >"$dir/stat.json"
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
timeout -k 5 -s INT 2 "$shmbus" --bus "$bus" stat --watch 0.2 --json >"$dir/watch.json" || true
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
bounded "$shmbus" --bus "$bus" stat >"$dir/stat.txt"
grep -q "^bridge 127.0.0.1:$port: 0 connections open, 1 accepted" "$dir/stat.txt" ||
  fail "bridge after the client left: $(cat "$dir/stat.txt")"
grep -q 'SUBSCRIPTIONS' "$dir/stat.txt" && fail "connection header without connections"
kill "$daemon"
wait_exit "$daemon" "the stopping daemon with --bridge" || fail "daemon with --bridge exit status $?"
daemon=""

# With --nats at a port nobody listens on (a socket bound there and never
# listening holds it), the daemon serves and stat shows the link
# connecting, its origin and prefix, and no server.
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
time.sleep(600)' >"$dir/dead.port" &
holder=$!
wait_file "$dir/dead.port" "a port nobody listens on"
log="$dir/daemon-nats-dead.log"
start_daemon "daemon with --nats at a dead port" --nats "nats://127.0.0.1:$(cat "$dir/dead.port")" \
  --nats-origin stat-A --nats-prefix sb.test --export 'fs.*'
wait_stat '"nats":{"state":"connecting","server":null,"origin":"stat-A","prefix":"sb.test",' \
  "the link connecting"
bounded "$shmbus" --bus "$bus" stat >"$dir/stat.txt"
grep -q '^nats connecting: origin stat-A, prefix sb.test, 0 topics, 0 reconnects, 0 refused' \
  "$dir/stat.txt" || fail "nats link connecting: $(cat "$dir/stat.txt")"
kill "$daemon"
wait_exit "$daemon" "the stopping daemon with --nats" || fail "daemon with --nats exit status $?"
daemon=""
stop "$holder" "the port holder"
holder=""

# With a nats-server of its own (a port it picks, written to a ports file):
# stat shows the link connected to it, and a message published on an
# exported topic counted out, in the topic's row and in the totals.
command -v nats-server >/dev/null || fail "nats-server not installed (make deps installs it)"
nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$dir" >"$dir/nats.log" 2>&1 &
natsd=$!
wait_file "$dir/nats-server_$natsd.ports" "nats-server's ports file"
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nats"][0])' \
  "$dir/nats-server_$natsd.ports")
log="$dir/daemon-nats.log"
start_daemon "daemon with --nats" --nats "$url" --nats-origin stat-A --export 'fs.*'
wait_stat "\"nats\":{\"state\":\"connected\",\"server\":\"$url\"" "the link connected"
# The topic exists, exported, before its one message is published.
"$shmbus" --bus "$bus" sub fs.a --count 1 >/dev/null &
client=$!
wait_stat '"name":"fs.a","export":true,"import":false,"persist":false,' "fs.a exported"
bounded "$shmbus" --bus "$bus" pub fs.a hello
wait_exit "$client" "sub fs.a" || fail "sub fs.a exited with $?"
client=""
wait_stat '"name":"fs.a","export":true,"import":false,"persist":false,"out":1,' \
  "the message sent to NATS"
bounded "$shmbus" --bus "$bus" stat >"$dir/stat.txt"
grep -q "^nats connected $url: origin stat-A, prefix shmbus, 1 topic, 0 reconnects, 0 refused, 0 errors$" \
  "$dir/stat.txt" || fail "nats link: $(cat "$dir/stat.txt")"
grep -Eq '^ +ID +TOPIC +FLAGS +OUT +IN +LOST_OUT +LOST_IN +DUPS +PENDING$' "$dir/stat.txt" ||
  fail "nats header: $(cat "$dir/stat.txt")"
grep -Eq '^ +[0-9]+ fs\.a +export +1 +0 +0 +0 +0 +0$' "$dir/stat.txt" ||
  fail "nats topic row: $(cat "$dir/stat.txt")"
grep -Eq '^ +total +1 +0 +0 +0 +0 +0$' "$dir/stat.txt" || fail "nats totals: $(cat "$dir/stat.txt")"
bounded "$shmbus" --bus "$bus" stat --json >"$dir/stat.json"
python3 - "$dir/stat.json" "$url" <<'PY'
import json, sys
n = json.load(open(sys.argv[1]))["nats"]
assert (n["state"], n["server"], n["origin"], n["prefix"]) == ("connected", sys.argv[2], "stat-A", "shmbus"), n
assert (n["federated"], n["reconnects"], n["refused"], n["errors"]) == (1, 0, 0, 0), n
assert (n["out"], n["in"], n["lost_out"], n["lost_in"], n["dups"], n["pending"]) == (1, 0, 0, 0, 0, 0), n
[t] = n["topics"]
assert (t["name"], t["export"], t["import"], t["persist"], t["out"], t["lost_out"]) == ("fs.a", True, False, False, 1, 0), t
PY
kill "$daemon"
wait_exit "$daemon" "the stopping daemon with --nats" || fail "daemon with --nats exit status $?"
daemon=""
stop "$natsd" "the nats-server"
natsd=""
echo "test_cli: ok"
