#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# JetStream: the exporting daemon killed (SIGKILL) in mid-stream. Through
# a three-server JetStream cluster (bus a's daemon attached to server s1,
# b's to s2), bus a publishes a numbered stream on a reliable persisted
# topic; its daemon is killed while the publisher goes on (the library
# needs no daemon to publish), and started again once more messages were
# published. Nothing
# a's publisher published is lost: the exporter's slot was held (gating
# the publisher up to what JetStream acknowledged) and kept (left for the
# next daemon to adopt and resend from), and JetStream's dedupe makes the
# resend safe. Bus b gets every message, in order, exactly once, flagged
# imported with a's seq, pid and time.
# Usage: test_fed_js_daemon.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"
N=3000
topic=dur.t
fed=(--federate 'dur.*,mode=reliable' --persist 'dur.*')

nu_cluster 3 s1 s2 s3
a=$(nu_bus)
b=$(nu_bus)
nu_daemon "$a" --nats "${nu_url[s1]}" --nats-origin "o$a" "${fed[@]}"
nu_daemon "$b" --nats "${nu_url[s2]}" --nats-origin "o$b" "${fed[@]}"
nu_connected "$a"
nu_connected "$b"

nu_sub "$a" "$topic" "$nu_dir/a.out" --reliable --count "$N" --timeout-ms 60000
suba=$nu_last
nu_sub "$b" "$topic" "$nu_dir/b.out" --reliable --count "$N" --linger-ms 1000 --timeout-ms 60000
subb=$nu_last
for x in "$a" "$b"; do
  nu_federated "$x" "$topic"
  nu_until "$NU_WAIT" "the exporter on $x subscribes to $topic" nu_topic_is "$x" "$topic" slots 2
done

"$fedcheck" pub --bus "$a" --topic "$topic" --reliable --count "$N" --tag r --interval-us 300 &
pub=$!
nu_pids+=("$pub")
nu_until 30 "b got a quarter of the stream" nu_lines_ge "$nu_dir/b.out" $((N / 4))
nu_daemon_stop "$a" KILL
# The publisher goes on without a daemon: a's own subscriber sees 300 more.
seen=$(nu_lines "$nu_dir/a.out")
nu_until 30 "a's publisher publishes with its daemon dead" \
  nu_lines_ge "$nu_dir/a.out" $((seen + 300 < N ? seen + 300 : N))
nu_daemon_restart "$a"
nu_wait_pid "$pub" "publisher on $a" 60 || nu_fail "publisher on $a failed"
nu_sub_done "$suba" "$nu_dir/a.out" "subscriber on $a" 10
nu_sub_done "$subb" "$nu_dir/b.out" "subscriber on $b" 60
[ "$(nu_lines "$nu_dir/b.out")" -eq "$N" ] ||
  nu_fail "bus $b got $(nu_lines "$nu_dir/b.out") messages, not $N"
nu_expect_flags "$nu_dir/a.out" 0 r 1 "$N" "bus $a, its own messages"
nu_expect_flags "$nu_dir/b.out" 1 r 1 "$N" "bus $b, a's daemon killed and restarted"
nu_expect_origin "$nu_dir/a.out" "$nu_dir/b.out" r "bus $b, from $a"
nu_until 20 "a's exporter has nothing pending" nu_nats_is "$a" "$topic" pending 0
nu_pass
