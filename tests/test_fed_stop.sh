#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The nats-server stopped (SIGSTOP) while bus a publishes, then continued
# (SIGCONT). A lossy topic over core NATS may lose messages, and counts
# each one: on a, every message published is counted once, sent (out) or
# lost (lost_out); on b, every message a published is counted once,
# written in (in) or not come in (lost_in, whichever side lost it); b's
# subscriber has exactly the messages b counted in, in order. A burst far larger than the ring
# and the socket buffers makes sure something is lost. A reliable
# persisted topic (JetStream) loses nothing: b gets every message, in
# order, exactly once.
# Usage: test_fed_stop.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"
BURST=40000 # lossy messages of 1000 bytes: 40 MB while the server sleeps
M=800       # persisted messages
lossy=loss.t
dur=dur.t
fed=(--federate 'loss.*' --federate 'dur.*,mode=reliable' --persist 'dur.*')

nu_server_js j1
a=$(nu_bus)
b=$(nu_bus)
nu_daemon "$a" --nats "${nu_url[j1]}" --nats-origin "o$a" "${fed[@]}"
nu_daemon "$b" --nats "${nu_url[j1]}" --nats-origin "o$b" "${fed[@]}"
nu_connected "$a"
nu_connected "$b"

# a's lossy topic: small, so that its exporter is overtaken while stuck.
"$fedcheck" sub --bus "$a" --topic "$lossy" --capacity 64 --timeout-ms 0 ||
  nu_fail "create $lossy on $a"
nu_sub "$b" "$lossy" "$nu_dir/bl.out" --timeout-ms 120000
subl=$nu_last
nu_sub "$b" "$dur" "$nu_dir/bd.out" --reliable --count "$M" --linger-ms 1000 --timeout-ms 60000
subd=$nu_last
nu_sub "$a" "$dur" "$nu_dir/ad.out" --reliable --count "$M" --timeout-ms 60000
suba=$nu_last
nu_federated "$a" "$lossy"
nu_until "$NU_WAIT" "the exporter on $a subscribes to $lossy" nu_topic_is "$a" "$lossy" slots 1
nu_until "$NU_WAIT" "the exporter on $a subscribes to $dur" nu_topic_is "$a" "$dur" slots 2
# One lossy message through first: b knows where a's seqs start.
"$fedcheck" pub --bus "$a" --topic "$lossy" --count 1 --tag first ||
  nu_fail "publish on $lossy of $a"
nu_until "$NU_WAIT" "b gets a's first lossy message" nu_lines_ge "$nu_dir/bl.out" 1

kill -STOP "${nu_pid[j1]}"
"$fedcheck" pub --bus "$a" --topic "$lossy" --count "$BURST" --size 1000 --tag l ||
  nu_fail "publish the burst on $lossy of $a"
"$fedcheck" pub --bus "$a" --topic "$dur" --reliable --count "$M" --tag d ||
  nu_fail "publish on $dur of $a"
# The server sleeps long enough for JetStream's acks to time out.
sleep 3
kill -CONT "${nu_pid[j1]}"

# The persisted topic: all of it, once, in order.
nu_sub_done "$subd" "$nu_dir/bd.out" "subscriber of $dur on $b" 60
nu_sub_done "$suba" "$nu_dir/ad.out" "subscriber of $dur on $a" 10
[ "$(nu_lines "$nu_dir/bd.out")" -eq "$M" ] ||
  nu_fail "bus $b got $(nu_lines "$nu_dir/bd.out") persisted messages, not $M"
nu_expect_flags "$nu_dir/bd.out" 1 d 1 "$M" "bus $b, persisted, after SIGSTOP/SIGCONT"
nu_expect_origin "$nu_dir/ad.out" "$nu_dir/bd.out" d "bus $b, persisted"

# The lossy topic: a last message through, so that b has seen every gap.
nu_until 30 "a is connected after SIGCONT" nu_nats_is "$a" state connected
"$fedcheck" pub --bus "$a" --topic "$lossy" --count 1 --tag last ||
  nu_fail "publish on $lossy of $a"
nu_until 60 "b gets a's last lossy message" grep -q ' last-1$' "$nu_dir/bl.out"
kill "$subl" 2>/dev/null || true
wait "$subl" 2>/dev/null || true
sent=$((BURST + 2))
out=$(nu_nats "$a" "$lossy" out)
lout=$(nu_nats "$a" "$lossy" lost_out)
in=$(nu_nats "$b" "$lossy" in)
lin=$(nu_nats "$b" "$lossy" lost_in)
echo "lossy: published $sent, a out $out lost_out $lout, b in $in lost_in $lin"
[ $((out + lout)) -eq "$sent" ] ||
  nu_fail "a: out $out + lost_out $lout is not the $sent messages published"
[ $((in + lin)) -eq "$sent" ] || nu_fail "b: in $in + lost_in $lin is not the $sent messages published"
[ $((lout + lin)) -gt 0 ] || nu_fail "a burst of $BURST messages into a stopped server lost nothing"
# b's subscriber: what it got and what its own ring lost of it (overtaken
# while it printed) are what b's daemon wrote in.
got=$(awk '{ n += 1 + $6 } END { print n + 0 }' "$nu_dir/bl.out")
[ "$got" -eq "$in" ] || nu_fail "b's subscriber got and lost $got lossy messages, b counted $in in"
bad=$(awk 'BEGIN { prev = -1 } $2 != 1 { print; next }
  { split($7, p, "-"); n = (p[1] == "first") ? 0 : (p[1] == "last") ? 1e9 : p[2] + 0
    if (n <= prev) print; prev = n }' "$nu_dir/bl.out" | head -3)
[ -z "$bad" ] || nu_fail "b's lossy messages out of order or not imported: $bad"
nu_pass
