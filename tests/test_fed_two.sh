#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two buses, each with its own shmbusd (two "hosts"), federated both ways
# (--federate) through one nats-server. Both publish numbered messages at
# once on the same topic: each bus receives its own messages once (no echo)
# and the other's once, in order, flagged imported with the origin's seq,
# pid and time. On the wire, each message went out exactly once, with the
# contract's headers. Stat counts what went out and came in, no loss.
# Usage: test_fed_two.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"
N=300
topic=fed.two

nu_server n1
a=$(nu_bus)
b=$(nu_bus)
nu_daemon "$a" --nats "${nu_url[n1]}" --nats-origin "o$a" --federate 'fed.*'
nu_daemon "$b" --nats "${nu_url[n1]}" --nats-origin "o$b" --federate 'fed.*'
nu_connected "$a"
nu_connected "$b"
nu_link_ready "$a" "$b" fed.warm
nu_link_ready "$b" "$a" fed.warm

# What crosses the server, read off the wire by a plain NATS client.
wire=$nu_dir/wire
"$natsutil" sub "${nu_url[n1]}" "shmbus.$topic" 1000000 60000 "$wire.ready" >"$wire" 2>"$wire.err" &
wirepid=$!
nu_pids+=("$wirepid")
nu_until "$NU_WAIT" "the wire subscriber is ready" test -e "$wire.ready"

nu_exchange "$topic" "$N" "$a" "$b"

# The wire: 2N messages, each once, with the contract's headers. A
# message's Shmbus-Seq is its seq on its origin bus; the epoch is the same
# for all of one origin's; Nats-Msg-Id is ORIGIN/TOPIC/EPOCH/SEQ; a lossy
# topic sends no Shmbus-Prev. Shmbus-Count (the exporter's count of what
# it sent on the topic, which tells the importer a loss from the seqs of
# imported messages between two local ones) runs 1, 2, ... per origin.
nu_until 10 "$((2 * N)) messages on the wire" nu_lines_ge "$wire" $((2 * N))
kill "$wirepid"
wait "$wirepid" 2>/dev/null || true
[ "$(nu_lines "$wire")" -eq $((2 * N)) ] || nu_fail "the wire had $(nu_lines "$wire") messages, not $((2 * N))"
bad=$(awk -v subj="shmbus.$topic" -v t="$topic" '
  FNR == NR { seq[$7] = $1; pid[$7] = $4; ts[$7] = $5; next }
  {
    delete h; n = 0
    for (i = 2; i < NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); h[k] = v; n++ }
    d = $NF; sub(/^data=/, "", d)
    o = d; sub(/^p/, "o", o); sub(/-.*/, "", o)
    if ($1 != subj || h["Shmbus-Origin"] != o || !(d in seq) || h["Shmbus-Seq"] != seq[d] ||
        h["Shmbus-Pid"] != pid[d] || h["Shmbus-Time"] != ts[d] ||
        h["Shmbus-Epoch"] !~ /^[0-9]+$/ || ("Shmbus-Prev" in h) ||
        h["Nats-Msg-Id"] != o "/" t "/" h["Shmbus-Epoch"] "/" seq[d] ||
        n != 6 + ("Shmbus-Count" in h)) { print; next }
    if (("Shmbus-Count" in h) && h["Shmbus-Count"] != ++count[o]) { print "count: " $0; next }
    if (o in epoch && epoch[o] != h["Shmbus-Epoch"]) { print "epoch changed: " $0; next }
    epoch[o] = h["Shmbus-Epoch"]
    if (++seen[d] > 1) print "twice: " $0
  }' <(awk '$2 == 0' "$nu_dir/$a.$topic.out" "$nu_dir/$b.$topic.out") "$wire" | head -5)
[ -z "$bad" ] || nu_fail "messages on the wire with wrong headers: $bad"

# Stat: N out and N in on each side, nothing lost, no duplicate.
for bus in "$a" "$b"; do
  nu_until 10 "stat of $bus shows $N out" nu_nats_is "$bus" "$topic" out "$N"
  for f in in:"$N" lost_out:0 lost_in:0 dups:0; do
    v=$(nu_nats "$bus" "$topic" "${f%%:*}")
    [ "$v" = "${f#*:}" ] || nu_fail "stat of $bus: $topic ${f%%:*} is '$v', not ${f#*:}"
  done
  [ "$(nu_nats "$bus" origin)" = "o$bus" ] || nu_fail "stat of $bus: origin '$(nu_nats "$bus" origin)'"
done
nu_pass
