#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Three buses all-to-all through one nats-server, each publishing numbered
# messages on the same topic at once: each message arrives exactly once on
# each bus, in order per origin, flagged imported on the others with the
# origin's seq, pid and time. Bus c imports and exports the same pattern
# with --import and --export instead of --federate: it never sends an
# imported message out again, and the wire carries each message once. A
# fourth bus with --import only receives everything and sends nothing.
# Usage: test_fed_three.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"
N=200
topic=fed.three
total=$((3 * N))

nu_server n1
a=$(nu_bus)
b=$(nu_bus)
c=$(nu_bus)
d=$(nu_bus)
url=${nu_url[n1]}
nu_daemon "$a" --nats "$url" --nats-origin "o$a" --federate 'fed.*'
nu_daemon "$b" --nats "$url" --nats-origin "o$b" --federate 'fed.*'
nu_daemon "$c" --nats "$url" --nats-origin "o$c" --import 'fed.*' --export 'fed.*'
nu_daemon "$d" --nats "$url" --nats-origin "o$d" --import 'fed.*'
for x in "$a" "$b" "$c" "$d"; do nu_connected "$x"; done
# Each importer's subscription (one for every topic) is in place once a
# message came in; the exporters of the test's topic are waited for below.
nu_link_ready "$a" "$b" fed.warm
nu_link_ready "$b" "$c" fed.warm
nu_link_ready "$c" "$a" fed.warm
nu_link_ready "$a" "$d" fed.warm

wire=$nu_dir/wire
"$natsutil" sub "$url" "shmbus.$topic" 1000000 60000 "$wire.ready" >"$wire" 2>"$wire.err" &
wirepid=$!
nu_pids+=("$wirepid")
nu_until "$NU_WAIT" "the wire subscriber is ready" test -e "$wire.ready"

nu_exchange "$topic" "$N" "$a" "$b" "$c" "+$d"

# The wire: each of a's, b's and c's messages once, from its origin only.
nu_until 10 "$total messages on the wire" nu_lines_ge "$wire" "$total"
kill "$wirepid"
wait "$wirepid" 2>/dev/null || true
[ "$(nu_lines "$wire")" -eq "$total" ] || nu_fail "the wire had $(nu_lines "$wire") messages, not $total"
bad=$(awk '{ o = ""; d = $NF; sub(/^data=p/, "", d); sub(/-.*/, "", d)
             for (i = 2; i < NF; i++) if ($i ~ /^Shmbus-Origin=/) o = substr($i, 15)
             if (o != "o" d || ++seen[$NF] > 1) print }' "$wire" | head -5)
[ -z "$bad" ] || nu_fail "messages on the wire twice or from another origin: $bad"

for x in "$a" "$b" "$c"; do
  nu_until 10 "stat of $x shows $N out" nu_nats_is "$x" "$topic" out "$N"
  nu_nats_is "$x" "$topic" in $((2 * N)) || nu_fail "stat of $x: in $(nu_nats "$x" "$topic" in)"
done
nu_nats_is "$d" "$topic" in "$total" || nu_fail "stat of $d: in $(nu_nats "$d" "$topic" in)"
nu_nats_is "$d" "$topic" out 0 || nu_fail "stat of $d: out $(nu_nats "$d" "$topic" out)"
nu_pass
