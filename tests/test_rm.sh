#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shmbus rm` (shmbus_topic_remove()) against a private shmbusd: an idle
# topic removed and its segment gone; a missing one refused; one held by a
# live subscriber or publisher refused (busy) and its segment kept; with
# --force both get SHMBUS_ERR_TOPIC_GONE on their next receive or
# publish; the name created again at once with other options; another
# uid's topic refused, its own removed; the daemon's _shmbus. topic
# refused; a recorded one refused even with --force, saying why; a
# topic_removed event on _shmbus.events; a removed segment
# still counted in --max-shm; removers killed -9 around their request.
# About 4 s.
# Usage: test_rm.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
sub=""
pub=""
events=""
CLI_TIMEOUT=20
WAIT_TIMEOUT=10
source "${BASH_SOURCE[0]%/*}/clitest.sh" # private_bus, fail, stop, wait_*, bounded, start_daemon, bus_cleanup, subscribed, shm_bytes
private_bus rm
cleanup() {
  exec 3>&- 2>/dev/null || true
  for p in "$sub" "$pub" "$events"; do [ -n "$p" ] && stop "$p" "a client at exit"; done
  bus_cleanup
}
trap cleanup EXIT
sb() { bounded "$shmbus" --bus "$bus" "$@" </dev/null; }
seg() { [ -e "/dev/shm/shmbus.$bus.$1" ]; }
has_pub() { "$shmbus" --bus "$bus" stat --json </dev/null | grep -q "\"name\":\"$1\".*\"publishers\":1"; }
grepq() { grep -q "$1" "$2" 2>/dev/null; }
nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }

chmod 711 "$dir" # nobody reaches the socket below it
mkdir "$dir/journal"
start_daemon "shmbusd" --allow-uid 65534 --record 'rec.*' --journal-dir "$dir/journal"

# An idle topic: removed, segment and listing gone; then missing.
sb pub idle hello || fail "pub idle"
seg idle || fail "no segment for idle"
before=$(shm_bytes)
sb rm idle || fail "rm of an idle topic"
# The daemon maps a removed segment until it stops: it stays in --max-shm.
[ "$(shm_bytes)" = "$before" ] || fail "shm_bytes went from $before to $(shm_bytes) at rm"
seg idle && fail "rm left idle's segment"
"$shmbus" --bus "$bus" stat --json </dev/null | grep -q '"name":"idle"' && fail "stat lists idle"
rc=0
sb rm idle 2>"$dir/err" || rc=$?
[ "$rc" = 1 ] || fail "rm of a missing topic: exit $rc, want 1"
grepq "no such topic" "$dir/err" || fail "rm of a missing topic says: $(cat "$dir/err")"

# A live subscriber: refused, then forced; its next receive is TOPIC_GONE.
"$shmbus" --bus "$bus" sub held >"$dir/sub.out" 2>"$dir/sub.err" </dev/null &
sub=$!
wait_until "sub's slot on held" subscribed held
rc=0
sb rm held 2>"$dir/err" || rc=$?
[ "$rc" = 1 ] || fail "rm of a topic in use: exit $rc, want 1"
grepq "busy" "$dir/err" || fail "rm of a topic in use says: $(cat "$dir/err")"
seg held || fail "a refused rm removed the segment"
sb rm --force held || fail "rm --force held"
seg held && fail "rm --force left the segment"
rc=0
wait_exit "$sub" "sub after rm --force" || rc=$?
sub=""
[ "$rc" = 1 ] || fail "sub after rm --force: exit $rc, want 1"
grepq "removed from the bus" "$dir/sub.err" || fail "sub says: $(cat "$dir/sub.err")"

# The name again at once, with other options.
sb pub --capacity 64 held again || fail "re-create held with --capacity 64"
"$shmbus" --bus "$bus" stat --json </dev/null | grep -q '"name":"held".*"capacity":64' ||
  fail "held not re-created with capacity 64"

# A live publisher: its next publish after rm --force is TOPIC_GONE.
mkfifo "$dir/in"
"$shmbus" --bus "$bus" pub pubbed <"$dir/in" 2>"$dir/pub.err" &
pub=$!
exec 3>"$dir/in"
echo first >&3
wait_until "pub's record on pubbed" has_pub pubbed
rc=0
sb rm pubbed 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "rm of a published topic: exit $rc, want 1"
sb rm --force pubbed || fail "rm --force pubbed"
echo second >&3
exec 3>&-
rc=0
wait_exit "$pub" "pub after rm --force" || rc=$?
pub=""
[ "$rc" = 1 ] || fail "pub after rm --force: exit $rc, want 1"
grepq "removed from the bus" "$dir/pub.err" || fail "pub says: $(cat "$dir/pub.err")"

# Who may: not another uid's topic, its own yes; never the daemon's own.
rc=0
nobody "$shmbus" --bus "$bus" rm held </dev/null 2>"$dir/err" || rc=$?
if [ "$rc" != 1 ] || ! grepq "refused" "$dir/err"; then
  fail "nobody removing root's topic: exit $rc, $(cat "$dir/err")"
fi
seg held || fail "a refused uid removed held"
nobody "$shmbus" --bus "$bus" pub mine x </dev/null || fail "nobody creates mine"
nobody "$shmbus" --bus "$bus" rm mine </dev/null || fail "nobody removes its own topic"
rc=0
sb rm _shmbus.events 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "rm of _shmbus.events: exit $rc, want 1"
# A recorded topic: busy, with or without --force, and said to be the
# daemon's doing (not a process that --force would override).
sb pub rec.a x || fail "pub rec.a"
for force in "" --force; do
  rc=0
  sb rm $force rec.a 2>"$dir/err" || rc=$?
  if [ "$rc" != 1 ] || ! grepq "busy.*records or federates" "$dir/err"; then
    fail "rm $force of a recorded topic: exit $rc, $(cat "$dir/err")"
  fi
  seg rec.a || fail "rm $force removed a recorded topic"
done
grepq "not removable while it runs" "$dir/err" || fail "rm --force rec.a says: $(cat "$dir/err")"

# A remover killed (-9) around its request: the removal is one request
# the daemon handles whole, so the topic is either removed or not, the
# daemon serves on, and the name works again either way.
for i in 1 2 3 4 5; do
  sb pub "killed$i" x || fail "pub killed$i"
  "$shmbus" --bus "$bus" rm "killed$i" </dev/null 2>/dev/null &
  kill -9 $! 2>/dev/null || true
  wait $! 2>/dev/null || true
  alive "$daemon" || fail "the daemon died after a remover was killed"
  sb rm "killed$i" 2>/dev/null || true # removed now if not then
  sb pub --capacity 64 "killed$i" y || fail "killed$i not usable again"
done

# The events: one topic_removed per removal, forced or not; read from the
# ring's start (the topic holds 1024), so none is missed by starting late.
"$shmbus" --bus "$bus" sub --from-seq 0 _shmbus.events >"$dir/events" 2>&1 </dev/null &
events=$!
wait_until "topic_removed of held" grepq '"event":"topic_removed".*"topic":"held".*"force":1' "$dir/events"
wait_until "topic_removed of idle" grepq '"event":"topic_removed".*"topic":"idle".*"force":0' "$dir/events"
wait_until "topic_removed of mine" grepq '"event":"topic_removed".*"topic":"mine".*"uid":65534' "$dir/events"
echo "ok"
