#!/usr/bin/env bash
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

# Each bus: our subscriber, then the daemon's exporter (2 subscribers), so
# that no message is published before both read.
nu_sub "$a" "$topic" "$nu_dir/a.out" --count $((2 * N)) --linger-ms 1000 --timeout-ms 30000
suba=$nu_last
nu_sub "$b" "$topic" "$nu_dir/b.out" --count $((2 * N)) --linger-ms 1000 --timeout-ms 30000
subb=$nu_last
nu_federated "$a" "$topic"
nu_federated "$b" "$topic"
nu_until "$NU_WAIT" "the exporter on $a subscribes to $topic" nu_topic_is "$a" "$topic" subscribers 2
nu_until "$NU_WAIT" "the exporter on $b subscribes to $topic" nu_topic_is "$b" "$topic" subscribers 2

"$fedcheck" pub --bus "$a" --topic "$topic" --count "$N" --tag a &
puba=$!
nu_pids+=("$puba")
"$fedcheck" pub --bus "$b" --topic "$topic" --count "$N" --tag b &
pubb=$!
nu_pids+=("$pubb")
nu_wait_pid "$puba" "publisher on $a" || nu_fail "publisher on $a failed"
nu_wait_pid "$pubb" "publisher on $b" || nu_fail "publisher on $b failed"
nu_sub_done "$suba" "$nu_dir/a.out" "subscriber on $a" 40
nu_sub_done "$subb" "$nu_dir/b.out" "subscriber on $b" 40

# Exactly 2N lines on each bus (the linger saw no echo, no duplicate).
[ "$(nu_lines "$nu_dir/a.out")" -eq $((2 * N)) ] ||
  nu_fail "bus $a got $(nu_lines "$nu_dir/a.out") messages, not $((2 * N))"
[ "$(nu_lines "$nu_dir/b.out")" -eq $((2 * N)) ] ||
  nu_fail "bus $b got $(nu_lines "$nu_dir/b.out") messages, not $((2 * N))"
nu_expect_flags "$nu_dir/a.out" 0 a 1 "$N" "bus $a, its own messages"
nu_expect_flags "$nu_dir/a.out" 1 b 1 "$N" "bus $a, from $b"
nu_expect_flags "$nu_dir/b.out" 0 b 1 "$N" "bus $b, its own messages"
nu_expect_flags "$nu_dir/b.out" 1 a 1 "$N" "bus $b, from $a"
nu_expect_origin "$nu_dir/a.out" "$nu_dir/b.out" a "bus $b, from $a"
nu_expect_origin "$nu_dir/b.out" "$nu_dir/a.out" b "bus $a, from $b"
# Local messages carry no origin seq.
bad=$(awk '$2 == 0 && $3 != 0' "$nu_dir/a.out" "$nu_dir/b.out" | head -3)
[ -z "$bad" ] || nu_fail "local messages with an origin seq: $bad"

# The wire: 2N messages, each once, with the contract's headers. A
# message's Shmbus-Seq is its seq on its origin bus; the epoch is the same
# for all of one origin's; Nats-Msg-Id is ORIGIN/TOPIC/EPOCH/SEQ; a lossy
# topic sends no Shmbus-Prev.
nu_until 10 "$((2 * N)) messages on the wire" test "$(nu_lines "$wire")" -ge $((2 * N))
kill "$wirepid"
wait "$wirepid" 2>/dev/null || true
[ "$(nu_lines "$wire")" -eq $((2 * N)) ] || nu_fail "the wire had $(nu_lines "$wire") messages, not $((2 * N))"
bad=$(awk -v subj="shmbus.$topic" -v oa="o$a" -v ob="o$b" -v t="$topic" '
  FNR == NR { seq[$7] = $1; pid[$7] = $4; ts[$7] = $5; next }
  {
    delete h; n = 0
    for (i = 2; i < NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); h[k] = v; n++ }
    d = $NF; sub(/^data=/, "", d)
    o = (d ~ /^a-/) ? oa : ob
    if ($1 != subj || h["Shmbus-Origin"] != o || !(d in seq) || h["Shmbus-Seq"] != seq[d] ||
        h["Shmbus-Pid"] != pid[d] || h["Shmbus-Time"] != ts[d] ||
        h["Shmbus-Epoch"] !~ /^[0-9]+$/ || ("Shmbus-Prev" in h) ||
        h["Nats-Msg-Id"] != o "/" t "/" h["Shmbus-Epoch"] "/" seq[d] || n != 6) { print; next }
    if (o in epoch && epoch[o] != h["Shmbus-Epoch"]) { print "epoch changed: " $0; next }
    epoch[o] = h["Shmbus-Epoch"]
    if (++seen[d] > 1) print "twice: " $0
  }' <(awk '$2 == 0' "$nu_dir/a.out" "$nu_dir/b.out") "$wire" | head -5)
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
