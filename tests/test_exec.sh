#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shmbus sub --ack` (print, then acknowledge) and `shmbus sub --ack --exec`
# (a worker pool) against a private shmbusd: usage errors; printed messages
# acknowledged; a failing command retried --max-deliveries times, then
# dead-lettered to TOPIC.dlq with its metadata; --inflight 4 running four
# commands at once (overlapping timestamps the commands write), never more;
# a command killed by a signal (nacked, delivered again); SIGTERM with
# commands running (they finish and are acknowledged); a second signal
# (exits at once, the message goes back to the group); what a command
# starts with (descriptors, signals, a Ctrl-C); a 1 MiB payload on
# standard input; --count; a full pool waiting without spinning; a worker
# without stdin; an evicted worker
# (exit 1); two workers in a group, one SIGKILLed mid-command (its message
# redelivered to the other, every message processed). Every wait has a
# deadline; every process started and every segment of the bus go on every
# exit path.
# Usage: test_exec.sh SHMBUSD SHMBUS
# shellcheck disable=SC2016 # the commands' $ are for the sh -c of the worker
set -euo pipefail
shmbusd=$(realpath "$1") # the test works in its own directory
shmbus=$(realpath "$2")
dir=$(mktemp -d)
bus="exec$$"
export XDG_RUNTIME_DIR=$dir
unset SHMBUS_RUNTIME_DIR SHMBUS_DAEMON_UID SHMBUS_BUS # else the daemon and clients go elsewhere
daemon=""
bg=()                 # workers and readers started in the background
log="$dir/daemon.log" # the daemon's stderr
WAIT_TIMEOUT=20       # seconds for what a wait waits for
source "${BASH_SOURCE[0]%/*}/clitest.sh" # alive, stop, wait_*, bounded, start_daemon

cleanup() {
  for p in "${bg[@]}"; do stop "$p"; done
  # The commands a worker left running (SIGKILLed, or after a second
  # signal) lead process groups of their own, and wrote their pids here.
  if [ -f "$dir/pgids" ]; then
    while read -r pg; do kill -9 -- -"$pg" 2>/dev/null || true; done <"$dir/pgids"
  fi
  [ -n "$daemon" ] && stop "$daemon"
  # SBD_SEG_PREFIX (daemon/segfile.h) and the bus lock (daemon/config.c).
  rm -f /dev/shm/shmbus."$bus".* /dev/shm/shmbus-"$bus".lock
  rm -rf "$dir"
}
trap cleanup EXIT
# fail MESSAGE: say why, with the workers' stderr and the daemon's log.
fail() {
  echo "FAIL: $*" >&2
  for f in "$dir"/*.err "$log"; do
    [ -s "$f" ] && sed "s|^|  ${f##*/}: |" "$f" >&2
  done
  exit 1
}
# lines_ge FILE N: FILE has at least N lines.
lines_ge() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }
# forget PID: PID is no longer one for cleanup to stop.
forget() {
  local keep=() p
  for p in "${bg[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  bg=("${keep[@]}")
}
# expect_exit PID STATUS WHAT: the background PID exits (WAIT_TIMEOUT
# seconds at most) with STATUS, or fail.
expect_exit() {
  local st=0
  wait_until "$3 exiting" eval '! alive '"$1"
  wait "$1" || st=$?
  forget "$1"
  [ "$st" -eq "$2" ] || fail "$3 exited $st, not $2"
}
sb() { timeout "$WAIT_TIMEOUT" "$shmbus" --bus "$bus" "$@"; }
# subs TOPIC N: TOPIC has N subscribers (a reliable topic keeps nothing
# for subscribers to come: publish once they are there).
subs() { sb stat --json | grep -q "\"name\":\"$1\",[^}]*\"subscribers\":$2,"; }
# worker NAME ARGS...: a `shmbus sub ARGS` in the background, stderr in
# $dir/NAME.err; its pid in $wpid.
worker() {
  local name=$1
  shift
  "$shmbus" --bus "$bus" sub "$@" 2>"$dir/$name.err" &
  wpid=$!
  bg+=("$wpid")
}

start_daemon "the daemon"
cd "$dir"

# Usage errors exit 2, before anything is created.
usage() {
  local st=0
  sb sub "$@" >/dev/null 2>"$dir/usage.err" || st=$?
  [ "$st" -eq 2 ] || fail "sub $* exited $st, not 2"
}
usage u --ack
usage u --exec true
usage u --group g --exec true
usage u --group g --max-deliveries 3
usage u --group g --dead-letter d
usage u --group g --ack --inflight 2
usage u --group g --ack --exec true --inflight 0
usage u --group g --ack --exec true --inflight 65
usage u --group g --ack --exec true --retry-delay 3601
usage u --group g --ack --max-deliveries 0
usage u --group g --ack --max-deliveries 1001
usage u --group g --ack --dead-letter u
usage u --group g --ack --dead-letter .bad
usage u --group g --ack --exec true --latency
[ ! -e /dev/shm/shmbus."$bus".u ] || fail "a usage error created the topic"
# --help says that nothing bounds a command's run, and how to bound it.
sb sub --help | grep -q "Nothing bounds a command's run" || fail "sub --help: no word on bounds"

# --ack without --exec prints and acknowledges: a later member gets the new
# message only (an unacknowledged one would be redelivered first).
worker printed printed --group g --ack --count 3 >printed.out
wait_until "the printing member" subs printed 1
sb pub printed a b c
expect_exit "$wpid" 0 "sub --ack --count 3"
printf 'a\nb\nc\n' | cmp -s - printed.out || fail "printed: $(cat printed.out)"
worker printed2 printed --group g --ack >printed2.out
wait_until "the second printing member" subs printed 1
sb pub printed d
wait_until "the second member printing" lines_ge printed2.out 1
[ "$(cat printed2.out)" = d ] || fail "after acknowledgements: $(cat printed2.out)"
kill -TERM "$wpid"
expect_exit "$wpid" 0 "printing member"

# A failing command: delivered --max-deliveries times (SHMBUS_DELIVERY 1..3,
# the payload on stdin each time), nacked each time, then dead-lettered.
worker dlq poison.dlq --reliable --count 1 --dead-letters >dlq.out
dlq=$wpid
wait_until "the dead-letter reader" subs poison.dlq 1
worker poison poison --group g --ack --max-deliveries 3 \
  --exec 'echo "$SHMBUS_TOPIC $SHMBUS_SEQ $SHMBUS_DELIVERY $(cat)" >>poison.log; exit 3'
wait_until "the poison worker" subs poison 1
sb pub poison poison-pill
expect_exit "$dlq" 0 "the dead-letter reader"
printf 'poison 0 1 poison-pill\npoison 0 2 poison-pill\npoison 0 3 poison-pill\n' |
  cmp -s - poison.log || fail "attempts: $(cat poison.log)"
grep -q 'seq 0 (delivery 3): command exited with status 3; nacked' poison.err ||
  fail "no nack reported"
printf 'topic=poison seq=0 group=g deliveries=3 reason=nacked\tpoison-pill\n' |
  cmp -s - <(sed 's/ publisher_pid=[0-9]*//; s/ time_ns=[0-9]*//; s/ dead_ns=[0-9]*//' dlq.out) ||
  fail "dead letter: $(cat dlq.out)"
kill -TERM "$wpid"
expect_exit "$wpid" 0 "poison worker"
[ "$(wc -l <poison.log)" -eq 3 ] || fail "delivered after dead-lettering: $(cat poison.log)"

# --inflight 4: eight two-second commands, four at a time. Each writes
# when it started and ended; at most four overlap, and four do.
worker slow slow --group g --ack --inflight 4 \
  --exec 's=$(date +%s%N); sleep 2; echo "$SHMBUS_SEQ $s $(date +%s%N)" >>slow.log'
wait_until "the slow worker" subs slow 1
sb pub slow 0 1 2 3 4 5 6 7
wait_until "eight slow commands" lines_ge slow.log 8
python3 - slow.log <<'PY' || fail "overlap: $(cat slow.log)"
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
assert sorted(r[0] for r in rows) == list(range(8)), rows
events = sorted([(s, 1) for _, s, _ in rows] + [(e, -1) for _, _, e in rows],
                key=lambda x: (x[0], x[1]))
now = most = 0
for _, d in events:
    now += d
    most = max(most, now)
assert most == 4, f"{most} commands at once"
PY
kill -TERM "$wpid"
expect_exit "$wpid" 0 "slow worker"

# --count 2 with --exec: two commands run, then the worker exits 0.
worker count counted --group g --ack --count 2 --exec 'echo "$SHMBUS_SEQ" >>count.log'
wait_until "the counting worker" subs counted 1
sb pub counted c0 c1 c2
expect_exit "$wpid" 0 "worker with --count 2"
[ "$(tr '\n' ' ' <count.log)" = "0 1 " ] || fail "with --count 2: $(cat count.log)"

# A full pool waits for its command without spinning: over a two-second
# command the worker uses next to no CPU (utime + stime, in clock ticks).
worker idle idle --group g --ack --exec 'sleep 2; echo >>idle.done'
wait_until "the idle worker" subs idle 1
sb pub idle i0
wait_until "the two-second command" lines_ge idle.done 1
ticks=$(sed 's/.*) //' /proc/"$wpid"/stat | awk '{ print $12 + $13 }')
[ "$ticks" -le $(($(getconf CLK_TCK) / 4)) ] || fail "the waiting worker used $ticks ticks of CPU"
kill -TERM "$wpid"
expect_exit "$wpid" 0 "idle worker"

# A command killed by a signal is nacked and delivered again.
worker killed killed --group g --ack \
  --exec '[ "$SHMBUS_DELIVERY" = 1 ] && kill -KILL $$; echo "$SHMBUS_SEQ $SHMBUS_DELIVERY $(cat)" >>killed.log'
wait_until "the killed worker" subs killed 1
sb pub killed victim
wait_until "the second delivery" lines_ge killed.log 1
[ "$(cat killed.log)" = "0 2 victim" ] || fail "killed: $(cat killed.log)"
grep -q 'seq 0 (delivery 1): command killed by signal 9' killed.err || fail "no kill reported"
kill -TERM "$wpid"
expect_exit "$wpid" 0 "killed worker"

# SIGTERM with two commands running: both finish and are acknowledged (a
# later member gets only the new message), and the worker exits 0.
worker term term --group g --ack --inflight 2 \
  --exec 'echo "$SHMBUS_SEQ" >>term.started; sleep 1; echo "$SHMBUS_SEQ" >>term.finished'
wait_until "the term worker" subs term 1
sb pub term t0 t1
wait_until "two commands started" lines_ge term.started 2
kill -TERM "$wpid"
expect_exit "$wpid" 0 "terminated worker"
[ "$(sort term.finished | tr '\n' ' ')" = "0 1 " ] || fail "finished: $(cat term.finished)"
grep -q 'stopping: waiting for 2 running commands' term.err || fail "no stopping message"
worker term2 term --group g --ack --exec 'echo "$SHMBUS_SEQ" >>term.again'
wait_until "the next member" subs term 1
sb pub term t2
wait_until "the next member's command" lines_ge term.again 1
[ "$(cat term.again)" = 2 ] || fail "after SIGTERM, delivered: $(cat term.again)"
kill -TERM "$wpid"
expect_exit "$wpid" 0 "second term worker"

# A second signal: the worker exits 1 at once, the command runs on, and
# its message goes back to the group (delivery 2 to the next member).
worker twice twice --group g --ack \
  --exec 'echo $$ >>pgids; echo started >>twice.started; sleep 5; echo finished >>twice.finished'
wait_until "the twice worker" subs twice 1
sb pub twice w0
wait_until "the command started" lines_ge twice.started 1
kill -TERM "$wpid"
wait_until "the stopping message" grep -q 'stopping' twice.err
kill -TERM "$wpid"
expect_exit "$wpid" 1 "twice-signalled worker"
[ ! -e twice.finished ] || fail "the worker waited for the command"
grep -q 'exiting without waiting: 1 command still running' twice.err || fail "no abandon message"
worker twice2 twice --group g --ack --exec 'echo "$SHMBUS_SEQ $SHMBUS_DELIVERY" >>twice.again'
wait_until "the redelivery" lines_ge twice.again 1
[ "$(cat twice.again)" = "0 2" ] || fail "after a second signal: $(cat twice.again)"
wait_until "the left command finishing" lines_ge twice.finished 1
kill -TERM "$wpid"
expect_exit "$wpid" 0 "second twice worker"

# What a command starts with: no descriptor of the worker's but the
# payload on 0 (no bus socket, segment or earlier payload), no signal
# blocked, and SIGPIPE (which the worker ignores), SIGINT, SIGTERM and
# SIGCHLD at their defaults; and a process group of its own: a Ctrl-C
# (SIGINT to the worker's process group, here one setsid made) stops the
# worker from taking, while the command finishes and is acknowledged.
setsid "$shmbus" --bus "$bus" sub slate --group g --ack --exec \
  'for f in /proc/$$/fd/*; do echo "${f##*/} $(readlink "$f")"; done >slate.fds
   grep -E "^Sig(Blk|Ign):" /proc/self/status >slate.sig; echo >>slate.started
   sleep 1; echo done >>slate.done' 2>slate.err &
wpid=$!
bg+=("$wpid")
wait_until "the slate worker" subs slate 1
sb pub slate s0
wait_until "the slate command started" lines_ge slate.started 1
kill -INT -- -"$wpid"
expect_exit "$wpid" 0 "worker stopped by a Ctrl-C"
[ "$(cat slate.done 2>/dev/null)" = done ] || fail "Ctrl-C reached the command: $(cat slate.err)"
! grep -q nacked slate.err || fail "Ctrl-C: $(cat slate.err)"
! grep -Eq 'socket:|/dev/shm/|^[1-9][0-9]* /memfd:' slate.fds || fail "leaked: $(cat slate.fds)"
grep -q '^0 /memfd:shmbus-payload' slate.fds || fail "payload fd: $(cat slate.fds)"
while read -r what mask; do
  # SIGINT, SIGPIPE, SIGTERM and SIGCHLD: bits 1, 12, 14 and 16.
  [ $((0x$mask & 0x15002)) -eq 0 ] || fail "command's $what $mask"
done <slate.sig
[ "$(wc -l <slate.sig)" -eq 2 ] || fail "signal state: $(cat slate.sig)"

# A 1 MiB payload reaches the command's standard input whole.
head -c 786432 /dev/urandom | base64 -w0 >big.in
worker big big --group g --ack --max-msg 2097152 --capacity 4 \
  --exec 'cat >big.tmp && mv big.tmp big.out'
wait_until "the big worker" subs big 1
sb pub big <big.in
wait_until "the big payload" test -e big.out
cmp -s big.in big.out || fail "big payload: $(wc -c <big.out) bytes, differs"
kill -TERM "$wpid"
expect_exit "$wpid" 0 "big worker"

# A worker started with its standard input closed: its connection to the
# daemon takes descriptor 0, and the command still reads the payload there.
worker closed closed --group g --ack --exec 'cat >closed.tmp && mv closed.tmp closed.out' <&-
wait_until "the worker without stdin" subs closed 1
sb pub closed "no stdin here"
wait_until "the payload without stdin" test -e closed.out
[ "$(cat closed.out)" = "no stdin here" ] || fail "without stdin: $(cat closed.out)"
kill -TERM "$wpid"
expect_exit "$wpid" 0 "worker without stdin"

# A worker whose command holds publishers back past the stall timeout is
# evicted: its acknowledgement fails, and it exits 1 saying so.
worker evict evict --group g --ack --capacity 2 --stall-timeout 0.3 \
  --exec 'echo "$SHMBUS_SEQ" >>evict.started; sleep 1.5'
wait_until "the evict worker" subs evict 1
sb pub evict e0
wait_until "the evicted member's command" lines_ge evict.started 1
sb pub evict e1 e2 e3 || fail "publisher held back for good"
expect_exit "$wpid" 1 "evicted worker"
grep -q 'evicted' evict.err || fail "evicted worker said: $(cat evict.err)"

# Two workers share a group; one is SIGKILLed mid-command. The message it
# held is delivered to the other, and every message is processed.
cmd='echo $$ >>pgids; echo "$SHMBUS_SEQ $PPID" >>share.started; sleep 1; echo "$SHMBUS_SEQ" >>share.done'
worker shareA share --group g --ack --exec "$cmd"
a=$wpid
worker shareB share --group g --ack --exec "$cmd"
b=$wpid
wait_until "two workers sharing" subs share 2
sb pub share m0 m1 m2 m3 m4 m5 m6 m7 m8 m9
wait_until "worker A starting a command" grep -q " $a\$" share.started
kill -KILL "$a"
wait "$a" 2>/dev/null || true
forget "$a"
held=$(awk -v a="$a" '$2 == a { s = $1 } END { print s }' share.started)
wait_until "every message processed" eval '[ "$(sort -un share.done 2>/dev/null | wc -l)" -eq 10 ]'
wait_until "seq $held redelivered to B" grep -q "^$held $b\$" share.started
kill -TERM "$b"
expect_exit "$b" 0 "worker B"
echo "PASS"
