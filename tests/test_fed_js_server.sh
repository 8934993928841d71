#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# JetStream through a three-server cluster: a reliable persisted topic on
# two buses, bus a's daemon attached to server s1, bus b's to s2.
#  1. a publishes a numbered stream; s1 is killed (SIGKILL) in mid-stream:
#     every message arrives on b, in order, exactly once.
#  2. b's daemon stops (SIGTERM); a publishes; b's daemon starts again: b
#     catches up, in order, exactly once.
#  3. b's daemon is killed (SIGKILL) while a publishes; started again, it
#     catches up, in order, exactly once (what its ring already held is
#     not written twice).
# Each message b gets is flagged imported with a's seq, pid and time.
# Usage: test_fed_js_server.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"
N=2000  # phase 1
M=500   # phase 2
K=1000  # phase 3
topic=dur.t
fed=(--federate 'dur.*,mode=reliable' --persist 'dur.*')

nu_cluster 3 s1 s2 s3
a=$(nu_bus)
b=$(nu_bus)
nu_daemon "$a" --nats "${nu_url[s1]}" --nats-origin "o$a" "${fed[@]}"
nu_daemon "$b" --nats "${nu_url[s2]}" --nats-origin "o$b" "${fed[@]}"
nu_connected "$a"
nu_connected "$b"

# A subscriber on each bus, then each daemon's exporter (a held slot).
nu_sub "$a" "$topic" "$nu_dir/a.out" --reliable --count $((N + M + K)) --timeout-ms 90000
suba=$nu_last
nu_sub "$b" "$topic" "$nu_dir/b1.out" --reliable --count "$N" --linger-ms 1000 --timeout-ms 60000
subb=$nu_last
for x in "$a" "$b"; do
  nu_federated "$x" "$topic"
  nu_until "$NU_WAIT" "the exporter on $x subscribes to $topic" nu_topic_is "$x" "$topic" slots 2
done

# 1. Kill s1 once b has a third of the stream.
"$fedcheck" pub --bus "$a" --topic "$topic" --reliable --count "$N" --tag n --interval-us 300 &
pub=$!
nu_pids+=("$pub")
nu_until 30 "b got a third of the stream" nu_lines_ge "$nu_dir/b1.out" $((N / 3))
kill -KILL "${nu_pid[s1]}"
nu_wait_pid "$pub" "publisher on $a" 60 || nu_fail "publisher on $a failed"
nu_sub_done "$subb" "$nu_dir/b1.out" "subscriber on $b (server killed)" 70
[ "$(nu_lines "$nu_dir/b1.out")" -eq "$N" ] ||
  nu_fail "bus $b got $(nu_lines "$nu_dir/b1.out") messages, not $N"
nu_expect_flags "$nu_dir/b1.out" 1 n 1 "$N" "bus $b after s1 was killed"
nu_until 20 "a's link is back (on s2 or s3)" nu_nats_is "$a" state connected
nu_until 20 "JetStream acknowledged all of a's messages" nu_nats_is "$a" "$topic" out "$N"
for f in pending:0 lost_out:0; do
  nu_nats_is "$a" "$topic" "${f%%:*}" "${f#*:}" || nu_fail "stat of $a: ${f%%:*} $(nu_nats "$a" "$topic" "${f%%:*}")"
done
nu_nats_ge "$a" reconnects 1 || nu_fail "stat of $a: reconnects $(nu_nats "$a" reconnects)"

# 2. b's daemon stopped (SIGTERM) while a publishes M, then started again.
nu_sub "$b" "$topic" "$nu_dir/b2.out" --reliable --count "$M" --linger-ms 1000 --timeout-ms 60000
subb=$nu_last
nu_daemon_stop "$b" TERM
"$fedcheck" pub --bus "$a" --topic "$topic" --reliable --count "$M" --tag p ||
  nu_fail "publisher on $a failed (b stopped)"
nu_until 20 "JetStream holds a's messages" nu_nats_is "$a" "$topic" out $((N + M))
nu_daemon_restart "$b"
nu_sub_done "$subb" "$nu_dir/b2.out" "subscriber on $b (daemon stopped)" 40
[ "$(nu_lines "$nu_dir/b2.out")" -eq "$M" ] ||
  nu_fail "bus $b got $(nu_lines "$nu_dir/b2.out") messages after its restart, not $M"
nu_expect_flags "$nu_dir/b2.out" 1 p 1 "$M" "bus $b after its daemon's restart (SIGTERM)"

# 3. b's daemon killed (SIGKILL) while a publishes K, then started again.
nu_connected "$b"
nu_sub "$b" "$topic" "$nu_dir/b3.out" --reliable --count "$K" --linger-ms 1000 --timeout-ms 60000
subb=$nu_last
"$fedcheck" pub --bus "$a" --topic "$topic" --reliable --count "$K" --tag k --interval-us 300 &
pub=$!
nu_pids+=("$pub")
nu_until 30 "b got a quarter of the stream" nu_lines_ge "$nu_dir/b3.out" $((K / 4))
nu_daemon_stop "$b" KILL
nu_wait_pid "$pub" "publisher on $a" 60 || nu_fail "publisher on $a failed (b killed)"
nu_until 20 "JetStream holds a's messages" nu_nats_is "$a" "$topic" out $((N + M + K))
nu_daemon_restart "$b"
nu_sub_done "$subb" "$nu_dir/b3.out" "subscriber on $b (daemon killed)" 40
[ "$(nu_lines "$nu_dir/b3.out")" -eq "$K" ] ||
  nu_fail "bus $b got $(nu_lines "$nu_dir/b3.out") messages around its daemon's SIGKILL, not $K"
nu_expect_flags "$nu_dir/b3.out" 1 k 1 "$K" "bus $b after its daemon's restart (SIGKILL)"

# a's own subscriber: every message once, local; b's copies carry a's
# seq, pid and time.
nu_sub_done "$suba" "$nu_dir/a.out" "subscriber on $a" 10
for t in n:"$N" p:"$M" k:"$K"; do
  nu_expect_flags "$nu_dir/a.out" 0 "${t%%:*}" 1 "${t#*:}" "bus $a, its own messages"
done
cat "$nu_dir"/b[123].out >"$nu_dir/b.out"
for t in n p k; do nu_expect_origin "$nu_dir/a.out" "$nu_dir/b.out" "$t" "bus $b, from $a"; done
nu_pass
