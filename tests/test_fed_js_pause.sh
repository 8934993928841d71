#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# JetStream: the importing daemon paused (SIGSTOP) while its pull request
# is out. The server delivers a burst for that request into the stopped
# daemon's socket; on SIGCONT the fetch has timed out, and cnats puts the
# burst among the subscription's pending messages. cnats before 3.9
# (Debian's 3.4.1) overflows its own batch array when a fetch finds more
# than half a batch pending (nats.c PR 749): the daemon must never ask it
# for more than one message at a time there (daemon/fed/jsimport.c).
# Bus b, paused again and again, gets every message, in order, exactly
# once, and its daemon survives (under ASan: no report).
#
# How long b takes is no measure of loss. With such a cnats every message
# costs b two round trips through the server (its fetch, its confirmed
# acknowledgement), so on a starved CPU (ASan, a neighbour test) b imports
# a few dozen a second: with the daemons and the server on one CPU beside
# seven busy loops of higher priority, b had 2841 of the 6000 after 60 s,
# and the rest came later, in order, none redelivered, none lost (the
# consumer acknowledged to 6000). A lost message stops the flow instead: its
# successor waits for it (order.c, 30 s), then goes with `lost` set, which
# nu_expect_flags refuses; one dropped as a duplicate, or the last one,
# never comes and the subscriber never reaches its count. So the bound is
# on silence, STALL s without a new message while some are missing (more
# than the 10 s in which JetStream gives again what was not acknowledged,
# and the 10 s a batch's acknowledgement may be asked to confirm), and on
# TOTAL s in all, for a flow that never ends.
# Usage: test_fed_js_pause.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"
N=6000
STALL=45
TOTAL=300
topic=dur.t
fed=(--federate 'dur.*,mode=reliable' --persist 'dur.*' --persist-replicas 1)

nu_server_js j1
a=$(nu_bus)
b=$(nu_bus)
nu_daemon "$a" --nats "${nu_url[j1]}" --nats-origin "o$a" "${fed[@]}"
nu_daemon "$b" --nats "${nu_url[j1]}" --nats-origin "o$b" "${fed[@]}"
nu_connected "$a"
nu_connected "$b"
nu_sub "$b" "$topic" "$nu_dir/b.out" --reliable --count "$N" --linger-ms 500 \
  --timeout-ms $(((TOTAL + 60) * 1000))
subb=$nu_last
nu_federated "$b" "$topic"

# A steady flow (about 3000 a second), and b paused again and again in
# its midst: each pause catches the burst its open pull request gets.
"$fedcheck" pub --bus "$a" --topic "$topic" --reliable --count "$N" --tag p --interval-us 300 &
pub=$!
nu_pids+=("$pub")
pauses=0
while nu_alive "$pub"; do
  sleep 0.1
  kill -STOP "${nu_dpid[$b]}"
  sleep 0.25 # past b's fetch deadline (100 ms): the burst waits in its socket
  kill -CONT "${nu_dpid[$b]}"
  pauses=$((pauses + 1))
done
nu_wait_pid "$pub" "publisher on $a" 10 || nu_fail "publisher on $a failed"
[ "$pauses" -ge 3 ] || nu_fail "only $pauses pauses while the stream flowed"
# The subscriber ends once it has its count (or at its own timeout, after
# TOTAL).
end=$((SECONDS + TOTAL)) seen=-1 since=$SECONDS
while nu_alive "$subb"; do
  got=$(nu_lines "$nu_dir/b.out")
  if [ "$got" -ne "$seen" ]; then
    seen=$got since=$SECONDS
  fi
  [ $((SECONDS - since)) -lt "$STALL" ] ||
    nu_fail "bus $b: no message for $STALL s, $got of $N (a message lost stops the flow)"
  [ "$SECONDS" -lt "$end" ] || nu_fail "bus $b: $got of $N messages after $TOTAL s"
  nu_daemons_alive
  sleep 0.2
done
nu_sub_done "$subb" "$nu_dir/b.out" "subscriber on $b"
[ "$(nu_lines "$nu_dir/b.out")" -eq "$N" ] ||
  nu_fail "bus $b got $(nu_lines "$nu_dir/b.out") messages, not $N"
nu_expect_flags "$nu_dir/b.out" 1 p 1 "$N" "bus $b, paused $pauses times"
nu_pass
