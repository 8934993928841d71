#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The core-NATS link and import under load, each case one that failed
# before its fix:
#  - an idle link does not spin: a daemon that only exports (its link
#    thread sleeps between checks, with no import subscription to wait on)
#    and one whose token the server refuses (its link thread waits before
#    making a new connection) use a small fraction of a core;
#  - a burst the importer takes in several batches arrives whole: the
#    importing daemon is stopped (SIGSTOP) while 2000 messages are sent, so
#    that they wait in cnats when it goes on; every one arrives, in order,
#    and nothing is counted lost;
#  - a full reliable imported topic (its one subscriber stopped) does not
#    hold the other topics' imports: after 300 messages for it, a message
#    for another topic arrives within a few seconds; the full topic counts
#    what did not fit as lost_in;
#  - an exporter evicted from a reliable topic (it blocked in cnats's write
#    to a stopped server past the topic's stall timeout) counts what it
#    skipped, in lost_out and in Shmbus-Count: every message the exporting
#    bus published arrives at the importing bus or is counted in its lost_in.
# Usage: test_fed_core.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"

# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks.
cpu_ticks() {
  sed 's/.*) //' /proc/"$1"/stat | awk '{ print $12 + $13 }'
}

nu_server n1
nu_server n2 --auth "tok-$$-right"
# Bus names as nu_bus makes them, numbered here (not in a subshell).
a="t$$x1" b="t$$x2" c="t$$x3"
nu_daemon "$a" --nats "${nu_url[n1]}" --nats-origin "o$a" --export 'core.*' --export 'full.*'
nu_daemon "$b" --nats "${nu_url[n1]}" --nats-origin "o$b" --import 'core.*' --import 'full.*'
echo "tok-$$-wrong" >"$nu_dir/wrong.token"
chmod 0600 "$nu_dir/wrong.token"
nu_daemon "$c" --nats "${nu_url[n2]}" --nats-token-file "$nu_dir/wrong.token" --federate 'core.*'
nu_connected "$a"
nu_connected "$b"
nu_until "$NU_WAIT" "c counts its refused token" nu_nats_ge "$c" errors 1
nu_link_ready "$a" "$b" core.warm

# --- Idle links sleep: over 2 s, under half a second of CPU each.
hz=$(getconf CLK_TCK)
a0=$(cpu_ticks "${nu_dpid[$a]}")
c0=$(cpu_ticks "${nu_dpid[$c]}")
sleep 2
a1=$(cpu_ticks "${nu_dpid[$a]}")
c1=$(cpu_ticks "${nu_dpid[$c]}")
[ $((a1 - a0)) -lt $((hz / 2)) ] ||
  nu_fail "the exporting daemon used $((a1 - a0)) ticks of CPU ($hz a second) in 2 s idle"
[ $((c1 - c0)) -lt $((hz / 2)) ] ||
  nu_fail "the refused daemon used $((c1 - c0)) ticks of CPU ($hz a second) in 2 s"

# --- A burst waiting in cnats: every message of it, in order.
n=2000
nu_sub "$b" core.burst "$nu_dir/burst.out" --capacity 4096 --count "$n" --linger-ms 500 \
  --timeout-ms 20000
sub=$nu_last
"$fedcheck" sub --bus "$a" --topic core.burst --capacity 4096 --timeout-ms 0 ||
  nu_fail "create core.burst on $a"
nu_until "$NU_WAIT" "the exporter on $a subscribes to core.burst" \
  nu_topic_is "$a" core.burst subscribers 1
nu_federated "$b" core.burst
kill -STOP "${nu_dpid[$b]}"
"$fedcheck" pub --bus "$a" --topic core.burst --count "$n" --tag burst || nu_fail "publish the burst"
nu_until "$NU_WAIT" "a sent the burst" nu_nats_is "$a" core.burst out "$n"
sleep 0.5 # the server writes it to b's socket, which b does not read yet
kill -CONT "${nu_dpid[$b]}"
nu_sub_done "$sub" "$nu_dir/burst.out" "subscriber of core.burst on $b"
nu_expect_flags "$nu_dir/burst.out" 1 burst 1 "$n" "b, core.burst"
[ "$(nu_lines "$nu_dir/burst.out")" -eq "$n" ] ||
  nu_fail "b got $(nu_lines "$nu_dir/burst.out") messages of core.burst, not $n"
nu_nats_is "$b" core.burst in "$n" || nu_fail "b: core.burst in $(nu_nats "$b" core.burst in)"
nu_nats_is "$b" core.burst lost_in 0 ||
  nu_fail "b: core.burst lost_in $(nu_nats "$b" core.burst lost_in)"
nu_nats_is "$b" lost_in 0 || nu_fail "b: lost_in $(nu_nats "$b" lost_in) in all"

# --- A full reliable topic: 16 cells, its subscriber stopped.
nu_sub "$b" full.r "$nu_dir/full.out" --reliable --capacity 16 --count 1000 --timeout-ms 60000
stuck=$nu_last
kill -STOP "$stuck"
nu_sub "$b" core.after "$nu_dir/after.out" --count 1 --timeout-ms 20000
after=$nu_last
"$fedcheck" sub --bus "$a" --topic full.r --timeout-ms 0 || nu_fail "create full.r on $a"
nu_until "$NU_WAIT" "the exporter on $a subscribes to full.r" nu_topic_is "$a" full.r subscribers 1
"$fedcheck" pub --bus "$a" --topic full.r --count 300 --tag full || nu_fail "publish on full.r"
nu_until "$NU_WAIT" "a sent full.r's 300" nu_nats_is "$a" full.r out 300
start=$(date +%s%N)
"$fedcheck" pub --bus "$a" --topic core.after --count 1 --tag after || nu_fail "publish on core.after"
nu_sub_done "$after" "$nu_dir/after.out" "subscriber of core.after on $b"
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 5000 ] || nu_fail "core.after took $ms ms behind the full topic's messages"
nu_expect_flags "$nu_dir/after.out" 1 after 1 1 "b, core.after"
nu_until "$NU_WAIT" "b counts full.r's 284 lost" nu_nats_is "$b" full.r lost_in 284
nu_nats_is "$b" full.r in 16 || nu_fail "b: full.r in $(nu_nats "$b" full.r in)"
[ "$(grep -c 'full.r: full for' "$nu_dir/$b.log")" -eq 1 ] ||
  nu_fail "b did not log full.r's episode exactly once"
kill -CONT "$stuck"
kill -KILL "$stuck"

# --- An exporter evicted from a reliable topic: what it skipped is counted
# on both sides. The server is stopped while big messages go out, so that
# the exporter blocks in cnats's write past the topic's stall timeout.
n=300
"$fedcheck" sub --bus "$b" --topic core.rel --max-msg 65536 --timeout-ms 0 ||
  nu_fail "create core.rel on $b"
"$shmbus" --bus "$a" pub --reliable --capacity 16 --max-msg 65536 --stall-timeout 0.3 \
  core.rel pre-1 || nu_fail "create core.rel on $a"
nu_until "$NU_WAIT" "b imports core.rel's first message" nu_nats_is "$b" core.rel in 1
kill -STOP "${nu_pid[n1]}"
"$fedcheck" pub --bus "$a" --topic core.rel --count "$n" --size 60000 --tag rel ||
  nu_fail "publish on core.rel"
nu_until "$NU_WAIT" "a's exporter is evicted from core.rel" \
  nu_logged "$a" core.rel 'exporter evicted'
kill -CONT "${nu_pid[n1]}"
nu_connected "$a"
nu_connected "$b"
"$fedcheck" pub --bus "$a" --topic core.rel --count 1 --tag post || nu_fail "publish post-1"
# Every message of a's reaches b or is counted lost there: in + lost_in.
in_and_lost() {
  local i l
  i=$(nu_nats "$b" core.rel in) l=$(nu_nats "$b" core.rel lost_in)
  [[ "$i" =~ ^[0-9]+$ && "$l" =~ ^[0-9]+$ ]] && [ $((i + l)) -eq "$1" ]
}
nu_until 10 "b: core.rel in $(nu_nats "$b" core.rel in) + lost_in $(nu_nats "$b" core.rel lost_in) = $((n + 2))" \
  in_and_lost $((n + 2))
nu_nats_ge "$a" core.rel lost_out 1 || nu_fail "a: core.rel lost_out $(nu_nats "$a" core.rel lost_out)"
nu_pass
