#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shmbus sub` and `shmbus pub` for daily use, against a private shmbusd:
# sub --format json (UTF-8 and binary payloads decoded back), raw (frames
# parsed back byte-exact, newlines and NULs included), hex and text with
# several topics; --latency's summary (at --count and at SIGINT); several
# topics and a pattern (a topic created after sub started gets through,
# an evicted one is not read again, one removed and created again is, one
# refused is reported once; Redis's glob, not fnmatch(3));
# pub --count, --rate (order and count; only a loose bound on time),
# --size, --file (and one too big), -0, a line too long for the topic
# (not held in memory), --timeout on a full reliable
# topic; usage errors. About 15 s.
# Usage: test_cli_formats.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
client=""
member=""       # a second background client
CLI_TIMEOUT=20  # seconds for one call of the shmbus command
WAIT_TIMEOUT=10 # seconds for what a wait loop waits for
source "${BASH_SOURCE[0]%/*}/clitest.sh" # private_bus, fail, stop, wait_*, bounded, start_daemon, bus_cleanup, subscribed
private_bus clf
cleanup() {
  [ -n "$client" ] && stop "$client" "a client at exit"
  [ -n "$member" ] && stop "$member" "a group member at exit"
  bus_cleanup
}
trap cleanup EXIT
# sub_bg OUT ERR ARGS...: start `shmbus sub ARGS...` in the background as
# $client, standard output to OUT and error to ERR.
sub_bg() {
  local out=$1 err=$2
  shift 2
  "$shmbus" --bus "$bus" sub "$@" >"$out" 2>"$err" &
  client=$!
}
# sub_done WHAT: the background sub exits 0.
sub_done() {
  wait_exit "$client" "$1" || fail "$1 exited with $?"
  client=""
}

start_daemon "daemon"

# json: UTF-8 text (quotes, a newline, a NUL and a control byte escaped as
# JSON requires) as a string, and binary payloads (an invalid byte, an
# overlong form, a surrogate) as base64; every one decoded back.
printf 'h\xc3\xa9llo "q"\\\n\0\x01\xf0\x9f\x98\x80' >"$dir/utf8"
printf '\xff\x00bin' >"$dir/bin1"
printf '\xc0\xaf' >"$dir/overlong"
printf '\xed\xa0\x80' >"$dir/surrogate"
sub_bg "$dir/json" "$dir/json.err" js --format json --count 4
wait_until "the js subscriber" subscribed js
for f in utf8 bin1 overlong surrogate; do bounded "$shmbus" --bus "$bus" pub js --file "$dir/$f"; done
sub_done "sub --format json"
python3 - "$dir" <<'PY' || fail "json: $(cat "$dir/json")"
import base64, json, os, sys
d = sys.argv[1]
lines = open(os.path.join(d, "json"), "rb").read().split(b"\n")
assert lines[-1] == b"", lines
objs = [json.loads(l) for l in lines[:-1]]
assert [o["seq"] for o in objs] == [0, 1, 2, 3], objs
for o, f in zip(objs, ["utf8", "bin1", "overlong", "surrogate"]):
    want = open(os.path.join(d, f), "rb").read()
    assert o["topic"] == "js" and o["lost"] == 0 and o["pid"] > 0 and o["timestamp_ns"] > 0, o
    if f == "utf8":
        assert "encoding" not in o and o["data"].encode() == want, o
    else:
        assert o["encoding"] == "base64" and base64.b64decode(o["data"]) == want, o
PY

# raw: frames parsed back byte-exact: payloads with newlines and NULs (-0
# input, and a file), and an empty one.
sub_bg "$dir/raw" "$dir/raw.err" rw --format raw --count 4
wait_until "the rw subscriber" subscribed rw
printf 'one\nline\0\0two\0' | bounded "$shmbus" --bus "$bus" pub rw -0
bounded "$shmbus" --bus "$bus" pub rw --file "$dir/utf8"
sub_done "sub --format raw"
python3 - "$dir" <<'PY' || fail "raw frames: $(od -c "$dir/raw" | head -20)"
import os, struct, sys
d = sys.argv[1]
buf = open(os.path.join(d, "raw"), "rb").read()
frames, off = [], 0
while off < len(buf):
    plen, tlen, seq, ts, lost, pid, zero = struct.unpack_from("<IIQQQII", buf, off)
    off += 40
    topic = buf[off:off + tlen]; off += tlen
    frames.append((topic, seq, lost, zero, buf[off:off + plen])); off += plen
assert off == len(buf), (off, len(buf))
want = [b"one\nline", b"", b"two", open(os.path.join(d, "utf8"), "rb").read()]
assert [f[4] for f in frames] == want, frames
assert all(f[0] == b"rw" and f[2] == 0 and f[3] == 0 for f in frames), frames
assert [f[1] for f in frames] == [0, 1, 2, 3], frames
PY

# hex: a header line, `hexdump -C` lines, the length, an empty line; an
# empty payload, as hexdump -C, no dump and no length.
sub_bg "$dir/hex" "$dir/hex.err" hx --format hex --count 2
wait_until "the hx subscriber" subscribed hx
bounded "$shmbus" --bus "$bus" pub hx 'hello, world: 0123456789' ''
sub_done "sub --format hex"
grep -v '^hx seq=' "$dir/hex" >"$dir/hex.body"
printf '%s\n' \
  '00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 3a 20 30 31  |hello, world: 01|' \
  '00000010  32 33 34 35 36 37 38 39                           |23456789|' \
  '00000018' '' '' | cmp -s - "$dir/hex.body" || fail "hex: $(cat "$dir/hex")"
grep -Eq '^hx seq=0 len=24 pid=[0-9]+ ts=[0-9]+$' "$dir/hex" || fail "hex header: $(head -1 "$dir/hex")"
grep -Eq '^hx seq=1 len=0 pid=[0-9]+ ts=[0-9]+$' "$dir/hex" || fail "hex header: $(cat "$dir/hex")"

# --latency: the summary on stderr at --count (json output stays JSON) and
# at SIGINT (text lines keep their latency prefix).
lat_re='^latency \(us\) over 2 messages: p50=[0-9]+\.[0-9]{3} p90=[0-9.]+ p99=[0-9.]+ p99\.9=[0-9.]+ max=[0-9]+\.[0-9]{3}$'
sub_bg "$dir/lat" "$dir/lat.err" lt --format json --latency --count 2
wait_until "the lt subscriber" subscribed lt
bounded "$shmbus" --bus "$bus" pub lt a b
sub_done "sub --latency --count"
grep -Eq "$lat_re" "$dir/lat.err" || fail "latency summary: $(cat "$dir/lat.err")"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$dir/lat" || fail "json with --latency"
sub_bg "$dir/lat2" "$dir/lat2.err" lt2 --latency
wait_until "the lt2 subscriber" subscribed lt2
bounded "$shmbus" --bus "$bus" pub lt2 x y
wait_until "two latency lines" test "$(wc -l <"$dir/lat2")" -eq 2
kill -INT "$client"
sub_done "sub --latency at SIGINT"
grep -Eq "$lat_re" "$dir/lat2.err" || fail "latency summary at SIGINT: $(cat "$dir/lat2.err")"
grep -Eq '^[0-9]+\.[0-9]{3}	y$' "$dir/lat2" || fail "latency lines: $(cat "$dir/lat2")"

# Several topics: text lines start with their topic and a tab.
sub_bg "$dir/multi" "$dir/multi.err" ma mb --count 2
wait_until "the ma subscriber" subscribed ma
wait_until "the mb subscriber" subscribed mb
bounded "$shmbus" --bus "$bus" pub ma first
bounded "$shmbus" --bus "$bus" pub mb second
sub_done "sub ma mb"
printf 'ma\tfirst\nmb\tsecond\n' | cmp -s - "$dir/multi" || fail "multi: $(cat "$dir/multi")"

# A pattern: a topic that exists and one created after sub started (found
# by the next listing, read from its oldest message); others ignored.
bounded "$shmbus" --bus "$bus" pub pp.old --count 1 before
sub_bg "$dir/pat" "$dir/pat.err" --pattern 'pp.*' --format json --count 2
wait_until "the pp.old subscriber" subscribed pp.old
bounded "$shmbus" --bus "$bus" pub pq.other ignored
bounded "$shmbus" --bus "$bus" pub pp.new created-later
bounded "$shmbus" --bus "$bus" pub pp.old after
sub_done "sub --pattern"
python3 - "$dir/pat" <<'PY' || fail "pattern: $(cat "$dir/pat")"
import json, sys
got = sorted((o["topic"], o["data"]) for o in map(json.loads, open(sys.argv[1])))
assert got == [("pp.new", "created-later"), ("pp.old", "after")], got
PY
# The pattern is Redis's glob, as for stat PATTERN and the bridge: in
# [!a] the '!' is a plain character (fnmatch(3) would read "not a").
bounded "$shmbus" --bus "$bus" pub ga.1 --count 1 before
bounded "$shmbus" --bus "$bus" pub gb.1 --count 1 before
sub_bg "$dir/glob" "$dir/glob.err" --pattern 'g[!a].*' --format json --count 1
either_subscribed() { subscribed ga.1 || subscribed gb.1; }
wait_until "a g?.1 subscriber" either_subscribed
bounded "$shmbus" --bus "$bus" pub gb.1 not-matched
bounded "$shmbus" --bus "$bus" pub ga.1 matched
sub_done "sub --pattern 'g[!a].*'"
grep -qF '"topic":"ga.1"' "$dir/glob" || fail "pattern 'g[!a].*': $(cat "$dir/glob")"

# A pattern's topic whose subscriber is evicted is dropped and not taken
# again by the next listings (which would read it from its oldest message).
bounded "$shmbus" --bus "$bus" pub ev.a --reliable --capacity 2 --stall-timeout 0.2 --count 1 m0
sub_bg "$dir/ev" "$dir/ev.err" --pattern 'ev.*'
wait_until "the ev.a subscriber" subscribed ev.a
kill -STOP "$client"
bounded "$shmbus" --bus "$bus" pub ev.a --count 3 x
kill -CONT "$client"
wait_until "the eviction" grep -q "ev.a.*no longer read" "$dir/ev.err"
sleep 1.3 # past the next listing
bounded "$shmbus" --bus "$bus" pub ev.a after
sleep 0.3
kill -INT "$client"
sub_done "sub --pattern, evicted"
! grep -q after "$dir/ev" || fail "an evicted topic was read again: $(cat "$dir/ev" "$dir/ev.err")"

# A pattern's topic removed and created again at once (before the next
# listing) is a new topic: read from its oldest message.
bounded "$shmbus" --bus "$bus" pub rg.a --count 1 old
sub_bg "$dir/rg" "$dir/rg.err" --pattern 'rg.*' --count 1
wait_until "the rg.a subscriber" subscribed rg.a
bounded "$shmbus" --bus "$bus" rm --force rg.a
bounded "$shmbus" --bus "$bus" pub rg.a fresh
sub_done "sub --pattern, a topic created again"
[ "$(cat "$dir/rg")" = "rg.a	fresh" ] || fail "a topic created again: $(cat "$dir/rg" "$dir/rg.err")"

# A pattern's topic that cannot be subscribed to (group g is a work
# queue there) is reported once, not at every listing.
"$shmbus" --bus "$bus" sub jb.a --group g --ack >/dev/null 2>&1 &
member=$!
wait_until "the jb.a member" subscribed jb.a
sub_bg "$dir/jb" "$dir/jb.err" --pattern 'jb.*' --group g
wait_until "the refusal" grep -q "cannot subscribe to 'jb.a'" "$dir/jb.err"
sleep 2.2 # two more listings
kill -INT "$client"
sub_done "sub --pattern, refused"
stop "$member" "the jb.a member"
member=""
[ "$(grep -c "cannot subscribe to 'jb.a'" "$dir/jb.err")" -eq 1 ] ||
  fail "a refused topic, reported $(grep -c "cannot subscribe to 'jb.a'" "$dir/jb.err") times: $(cat "$dir/jb.err")"

# pub --count --rate: every message, in order; 20 at 50/s take at least
# 0.38 s (a loose lower bound only: the machine is noisy).
sub_bg "$dir/rate" "$dir/rate.err" rt --format json --count 20
wait_until "the rt subscriber" subscribed rt
t0=$(date +%s%N)
bounded "$shmbus" --bus "$bus" pub rt --rate 50 --count 20 m1 m2
t1=$(date +%s%N)
sub_done "sub rt"
[ $(((t1 - t0) / 1000000)) -ge 370 ] || fail "--rate 50: 20 messages in $(((t1 - t0) / 1000000)) ms"
python3 - "$dir/rate" <<'PY' || fail "rate: $(cat "$dir/rate")"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
assert [o["seq"] for o in objs] == list(range(20)), objs
assert [o["data"] for o in objs] == ["m1", "m2"] * 10, objs
PY

# --size: B bytes, the message's number as a little-endian u64 first,
# then the offsets mod 256.
sub_bg "$dir/size" "$dir/size.err" sz --format raw --count 3
wait_until "the sz subscriber" subscribed sz
bounded "$shmbus" --bus "$bus" pub sz --size 300 --count 3
sub_done "sub sz"
python3 - "$dir/size" <<'PY' || fail "--size payloads"
import struct, sys
buf, off, n = open(sys.argv[1], "rb").read(), 0, 0
while off < len(buf):
    plen, tlen = struct.unpack_from("<II", buf, off)
    p = buf[off + 40 + tlen:off + 40 + tlen + plen]
    off += 40 + tlen + plen
    assert plen == 300 and struct.unpack_from("<Q", p)[0] == n, (n, p[:8])
    assert p[8:] == bytes(i % 256 for i in range(8, 300)), p
    n += 1
assert n == 3, n
PY

# --file larger than the topic's largest message; --size likewise.
head -c 100 /dev/zero >"$dir/big"
set +e
bounded "$shmbus" --bus "$bus" pub small --max-msg 64 --file "$dir/big" 2>"$dir/big.err"
st=$?
set -e
[ "$st" -eq 1 ] || fail "--file too big: exit $st"
grep -q "larger than the topic's largest message (64 bytes" "$dir/big.err" || fail "too big: $(cat "$dir/big.err")"

# A line longer than the topic's largest message fails alone, read without
# being held in memory: 100 MB without a newline leave pub's peak resident
# size far below 100 MB, and the line after it goes through.
sub_bg "$dir/long" "$dir/long.err" long --max-msg 64 --count 1
wait_until "the long subscriber" subscribed long
mkfifo "$dir/in"
"$shmbus" --bus "$bus" pub long --max-msg 64 <"$dir/in" 2>"$dir/pub.err" &
pub=$!
exec 7>"$dir/in"
# Returns once pub read all but what the pipe holds (64 KiB).
head -c 100000000 /dev/zero | tr '\0' a >&7
hwm=$(awk '/^VmHWM/ { print $2 }' /proc/"$pub"/status)
printf '\nok\n' >&7
exec 7>&-
set +e
wait_exit "$pub" "pub of a long line"
st=$?
set -e
sub_done "sub long"
[ "$hwm" -lt 50000 ] || fail "pub held a long line in memory: peak $hwm kB"
[ "$st" -eq 1 ] || fail "pub of a too long line: exit $st"
grep -q 'message 1 (100000000 bytes) not published' "$dir/pub.err" || fail "long line: $(cat "$dir/pub.err")"
[ "$(cat "$dir/long")" = ok ] || fail "the line after a long one: $(head -c 100 "$dir/long")"

# --timeout: a stopped subscriber holds a reliable topic of 2 cells; the
# third message waits 0.3 s, fails, and publishing stops (exit 1).
sub_bg /dev/null "$dir/full.err" full --reliable --capacity 2
wait_until "the full subscriber" subscribed full
kill -STOP "$client"
set +e
t0=$(date +%s%N)
bounded "$shmbus" --bus "$bus" pub full --timeout 0.3 --count 5 x 2>"$dir/to.err"
st=$?
t1=$(date +%s%N)
set -e
kill -CONT "$client"
stop "$client" "sub full"
client=""
[ "$st" -eq 1 ] || fail "--timeout on a full topic: exit $st"
[ $(((t1 - t0) / 1000000)) -ge 290 ] || fail "--timeout 0.3 gave up after $(((t1 - t0) / 1000000)) ms"
grep -q 'message 3 (1 byte) not published: the reliable topic stayed full' "$dir/to.err" ||
  fail "--timeout said: $(cat "$dir/to.err")"
grep -q 'gave up at message 3' "$dir/to.err" || fail "--timeout said: $(cat "$dir/to.err")"

# --timeout 0 in decimals too: fail at once (a lossy topic never waits).
bounded "$shmbus" --bus "$bus" pub t0 --timeout 0.0 x || fail "--timeout 0.0: exit $?"

# Usage errors: exit 2 with the hint.
for args in "sub x --format xml" "sub --pattern '' " "sub a b --ack --group g" \
  "sub a b --from-seq 1" "sub x --format json --dead-letters" "pub x --rate 0" \
  "pub x --count 0" "pub x --size 0" "pub x --size 17M" "pub x --timeout -1" \
  "pub x --timeout 0." "pub x --timeout .0" \
  "pub x --file f m" "pub x -0 m" "pub x --size 8 --file f"; do
  set +e
  eval "bounded \"\$shmbus\" --bus \"\$bus\" $args" 2>"$dir/usage.err"
  st=$?
  set -e
  [ "$st" -eq 2 ] || fail "'$args': exit $st"
  grep -q -- "--help" "$dir/usage.err" || fail "'$args' said: $(cat "$dir/usage.err")"
done
echo "ok"
