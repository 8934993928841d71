#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# JetStream refusing every publish at once: the stream of a reliable
# persisted topic is deleted under a running daemon (an operator's
# `nats stream rm`), so each publish gets "no responders" back at once.
# The exporter goes back to the oldest message not acknowledged and sends
# again, pausing between attempts (backoff up to a second) instead of
# spinning: over three seconds the daemon uses a small part of a CPU.
# Usage: test_fed_js_refused.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"
topic=dur.t
# Clock ticks (utime + stime) the daemon may use in 3 s: a third of a CPU.
# Spinning, it used more than one CPU (over 400 on a 100 Hz clock).
max_ticks=$(getconf CLK_TCK)

# nu_stream_name NAME: the name of the one stream on server NAME.
nu_stream_name() {
  nu_mon "$1" 'jsz?accounts=true&streams=true' | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(s["name"] for a in d.get("account_details", []) for s in a.get("stream_detail", [])))'
}

# nu_streams NAME: how many streams server NAME holds.
nu_streams() {
  nu_mon "$1" jsz | python3 -c 'import json, sys; print(json.load(sys.stdin)["streams"])'
}

# nu_ticks PID: the clock ticks PID used so far (user + system).
nu_ticks() {
  awk '{print $14 + $15}' "/proc/$1/stat"
}

nu_server_js j1
a=$(nu_bus)
nu_daemon "$a" --nats "${nu_url[j1]}" --nats-origin "o$a" --export 'dur.*' --persist 'dur.*' \
  --persist-replicas 1
nu_connected "$a"
nu_sub "$a" "$topic" "$nu_dir/a.out" --reliable --count 150 --timeout-ms 60000
nu_federated "$a" "$topic"
nu_until "$NU_WAIT" "the exporter on $a subscribes to $topic" nu_topic_is "$a" "$topic" slots 2
"$fedcheck" pub --bus "$a" --topic "$topic" --reliable --count 100 --tag r ||
  nu_fail "publisher on $a failed"
nu_until "$NU_WAIT" "JetStream acknowledged a's messages" nu_nats_is "$a" "$topic" out 100

stream=$(nu_stream_name j1)
[ -n "$stream" ] || nu_fail "server j1 holds no stream"
"$natsutil" pub "${nu_url[j1]}" "\$JS.API.STREAM.DELETE.$stream" "" >/dev/null ||
  nu_fail "cannot ask j1 to delete stream $stream"
nu_until "$NU_WAIT" "stream $stream is gone" [ "$(nu_streams j1)" = 0 ]

# Fewer than the ring holds: the publisher ends; the exporter keeps trying.
"$fedcheck" pub --bus "$a" --topic "$topic" --reliable --count 50 --tag s ||
  nu_fail "publisher on $a failed (stream gone)"
nu_until "$NU_WAIT" "a's exporter is refused" \
  nu_logged "$a" "JetStream refused or did not acknowledge" "no responders"
t0=$(nu_ticks "${nu_dpid[$a]}")
sleep 3 # a measured span, not a wait for a condition
t1=$(nu_ticks "${nu_dpid[$a]}")
[ $((t1 - t0)) -le "$max_ticks" ] ||
  nu_fail "shmbusd on $a used $((t1 - t0)) clock ticks in 3 s while refused (at most $max_ticks)"
nu_nats_is "$a" "$topic" lost_out 0 || nu_fail "stat of $a: lost_out $(nu_nats "$a" "$topic" lost_out)"
nu_pass
