#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shmbus stat` against a private shmbusd, what issue 18 added: PATTERN
# (a Redis glob, in the text and the JSON, before or after the options,
# right after a --watch without seconds);
# the bus's shm use against --max-shm (and topics, clients) in the text
# and the JSON; publishers per process (a live `shmbus pub` and its pid);
# `shmbus top`: frames without escapes when stdout is no terminal, sorted
# by rate or lag (a stopped subscriber's topic first), PATTERN, and on a
# terminal (script(1)) q quits and the cursor comes back, also on SIGTERM
# and SIGHUP. About 11 s.
# Usage: test_stat_ext.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
pub=""
sub=""
term=""
CLI_TIMEOUT=20
WAIT_TIMEOUT=10
source "${BASH_SOURCE[0]%/*}/clitest.sh" # private_bus, fail, stop, wait_*, bounded, start_daemon, bus_cleanup, subscribed
private_bus st
cleanup() {
  exec 3>&- 2>/dev/null || true
  exec 4>&- 2>/dev/null || true
  [ -n "$pub" ] && stop "$pub" "pub at exit"
  [ -n "$sub" ] && stop "$sub" "sub at exit"
  [ -n "$term" ] && stop "$term" "script(1) at exit"
  bus_cleanup
}
trap cleanup EXIT
sb() { bounded "$shmbus" --bus "$bus" "$@" </dev/null; }
# names ARGS...: the topics `stat --json ARGS` lists, one line.
names() { sb stat --json "$@" | grep -o '"topics":\[.*' | grep -o '{"name":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' '; }

start_daemon "shmbusd" --max-shm 64M --max-topics 100
for t in orders.eu orders.us orders.eu.late prices; do sb pub "$t" x || fail "pub $t"; done

[ "$(names)" = "orders.eu orders.eu.late orders.us prices " ] || fail "stat lists: $(names)"
[ "$(names 'orders.*')" = "orders.eu orders.eu.late orders.us " ] || fail "orders.*: $(names 'orders.*')"
[ "$(names 'orders.??')" = "orders.eu orders.us " ] || fail "orders.??: $(names 'orders.??')"
[ "$(names 'orders.[^e]*')" = "orders.us " ] || fail "orders.[^e]*: $(names 'orders.[^e]*')"
[ "$(sb stat 'pri*' --json | grep -o '{"name":"[^"]*"' | cut -d'"' -f4)" = prices ] ||
  fail "the options after PATTERN"
[ "$(names nothing)" = "" ] || fail "a pattern matching nothing lists: $(names nothing)"
sb stat 'orders.u?' | grep -q '^orders.us ' || fail "the text view of orders.u?"
if sb stat 'orders.u?' | grep -q '^prices '; then fail "the text view lists prices"; fi
rc=0
sb stat a b 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "two patterns: exit $rc, want 2"
# --watch PATTERN: a word that is no number of seconds is the PATTERN,
# not a bad --watch value (the default second, then).
"$shmbus" --bus "$bus" stat --watch 'pri*' --json >"$dir/watch" 2>"$dir/watch.err" </dev/null &
sub=$!
watched() { [ -s "$dir/watch" ] || ! alive "$sub"; }
wait_until "a refresh of stat --watch 'pri*'" watched
stop "$sub" "stat --watch"
sub=""
[ "$(head -1 "$dir/watch" | grep -o '{"name":"[^"]*"' | cut -d'"' -f4)" = prices ] ||
  fail "stat --watch 'pri*': $(cat "$dir/watch" "$dir/watch.err")"

# The limits: 64 MiB and 100 topics as started; 4 topics, and the shm of
# their segments and the events topic's (counted in --max-shm too).
sb stat | grep -q '^shm [0-9.]* of 64.0 MiB ([0-9.]*%, --max-shm), topics 4 of 100, clients 1 of ' ||
  fail "the limits line: $(sb stat | sed -n 2p)"
limits=$(sb stat --json | grep -o '"limits":{[^}]*}')
python3 -c '
import json, sys
l = json.loads(sys.argv[1].split(":", 1)[1])
assert l["max_shm"] == 64 << 20 and l["topics"] == 4 and l["max_topics"] == 100, l
assert 4 * 1024 * 1024 < l["shm_bytes"] < l["max_shm"], l
' "$limits" || fail "the JSON limits: $limits"

# Publishers per process: a live publisher's pid, one record.
mkfifo "$dir/in"
"$shmbus" --bus "$bus" pub prices <"$dir/in" 2>/dev/null &
pub=$!
exec 3>"$dir/in"
echo y >&3
has_pub() { sb stat --json prices | grep -q "\"publisher_pids\":\[{\"pid\":$pub,\"publishers\":1,\"dead\":0}\]"; }
wait_until "prices's publisher pid $pub in stat --json" has_pub
sb stat prices | grep -A1 PUB_PID | grep -q "^ *$pub  *1 0$" || fail "the text view: $(sb stat prices)"
exec 3>&-
wait_exit "$pub" "pub" || fail "pub failed"
pub=""

# top, not on a terminal: two frames, no escape, the busiest topic first.
( for i in $(seq 1 400); do echo "$i"; sleep 0.002; done ) | "$shmbus" --bus "$bus" pub orders.us &
pub=$!
sleep 0.3
sb top --iterations 2 --interval 200 >"$dir/top" || fail "top --iterations 2"
[ "$(grep -c '^shmbus top - bus ' "$dir/top")" = 2 ] || fail "top printed: $(cat "$dir/top")"
if grep -q $'\033' "$dir/top"; then fail "top wrote escapes to a file"; fi
[ "$(grep -A1 '^TOPIC' "$dir/top" | sed -n 2p | cut -d' ' -f1)" = orders.us ] ||
  fail "top by rate: $(cat "$dir/top")"
grep -q '^shm [0-9.]* of 64.0 MiB' "$dir/top" || fail "top's limits line: $(cat "$dir/top")"
wait_exit "$pub" "pub orders.us" || fail "pub orders.us failed"
pub=""
sb top --sort lag --iterations 1 --interval 100 'pri*' >"$dir/top" || fail "top --sort lag"
[ "$(grep -A9 '^TOPIC' "$dir/top" | sed 1d | grep -c .)" = 1 ] || fail "top pri*: $(cat "$dir/top")"
grep -q '1 topic, by lag' "$dir/top" || fail "top --sort lag says: $(head -1 "$dir/top")"
# --sort lag: the topic of a stopped subscriber 5 behind comes first,
# though its name sorts last and others published more.
"$shmbus" --bus "$bus" sub zz.lag >/dev/null 2>&1 </dev/null &
sub=$!
wait_until "zz.lag's subscriber" subscribed zz.lag
kill -STOP "$sub"
sb pub zz.lag a b c d e || fail "pub zz.lag"
sb top --sort lag --iterations 1 --interval 100 >"$dir/top" || fail "top --sort lag"
[ "$(grep -A1 '^TOPIC' "$dir/top" | sed -n 2p | tr -s ' ' | cut -d' ' -f1,3)" = "zz.lag 5" ] ||
  fail "top by lag: $(cat "$dir/top")"
stop "$sub" "sub zz.lag"
sub=""
rc=0
sb top --sort size 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "top --sort size: exit $rc, want 2"

# top on a terminal: redrawn with escapes, q quits, the cursor shown again.
(sleep 1; printf q) | timeout 20 script -qec "$shmbus --bus $bus top --interval 200" /dev/null \
  >"$dir/tty" || fail "top on a terminal did not quit on q"
grep -q $'\033\\[H\033\\[2Jshmbus top' "$dir/tty" || fail "top on a terminal: no redraw"
grep -q $'\033\\[?25h' "$dir/tty" || fail "top did not show the cursor again"
# SIGTERM or SIGHUP (its terminal closed) on a terminal: the same way out.
# script(1) reads a FIFO held open meanwhile (fd 4), so that it sees no
# end of input.
mkfifo "$dir/keys"
redrawn() { grep -q $'\033\\[H\033\\[2Jshmbus top' "$dir/tty" && [ -s "$dir/top.pid" ]; }
for sig in TERM HUP; do
  rm -f "$dir/top.pid" "$dir/tty"
  timeout 20 script -qec \
    "sh -c 'echo \$\$ >$dir/top.pid; exec $shmbus --bus $bus top --interval 200'" /dev/null \
    <"$dir/keys" >"$dir/tty" &
  term=$!
  exec 4>"$dir/keys"
  wait_until "top on a terminal" redrawn
  kill -"$sig" "$(cat "$dir/top.pid")"
  wait_exit "$term" "top after SIG$sig" || true
  term=""
  exec 4>&-
  grep -q $'\033\\[?25h' "$dir/tty" || fail "SIG$sig left top's terminal unrestored"
done
echo "ok"
