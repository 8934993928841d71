#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two buses as two real hosts: two network namespaces of their own joined
# by a veth pair, the nats-server and bus a's daemon in one, bus b's daemon
# in the other, reaching the server over the veth link only. Messages
# cross both ways exactly once, with no echo, as in test_fed_two.sh. The
# namespaces (and the veth pair with them) are deleted on every exit path.
# Needs root and iproute2 (`ip netns`); without them the test is skipped.
# Usage: test_fed_netns.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"
N=200
topic=fed.net

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
  echo "SKIP: network namespaces need root and iproute2"
  exit 77
fi
nsa=sbf$$a
nsb=sbf$$b
nu_netns+=("$nsa" "$nsb")
if ! ip netns add "$nsa" 2>"$nu_dir/netns.err"; then
  echo "SKIP: cannot create a network namespace: $(cat "$nu_dir/netns.err")"
  exit 77
fi
ip netns add "$nsb"
# The link: 10.213.0.1 (nsa) <-> 10.213.0.2 (nsb); each namespace's own lo
# up too (the server's monitoring port, the daemon on nsa's loopback).
ip link add "${nsa}0" type veth peer name "${nsb}0"
ip link set "${nsa}0" netns "$nsa"
ip link set "${nsb}0" netns "$nsb"
ip -n "$nsa" addr add 10.213.0.1/24 dev "${nsa}0"
ip -n "$nsb" addr add 10.213.0.2/24 dev "${nsb}0"
for ns in "$nsa" "$nsb"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "${ns}0" up
done

nu_exec_prefix="ip netns exec $nsa"
nu_server n1 -a 0.0.0.0
port=${nu_port[n1]}
a=$(nu_bus)
b=$(nu_bus)
nu_daemon "$a" --nats "nats://127.0.0.1:$port" --nats-origin "o$a" --federate 'fed.*'
nu_exec_prefix="ip netns exec $nsb"
# b cannot reach the server on its own loopback: only across the veth.
ip netns exec "$nsb" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null &&
  nu_fail "the server is reachable on $nsb's loopback: not two hosts"
nu_daemon "$b" --nats "nats://10.213.0.1:$port" --nats-origin "o$b" --federate 'fed.*'
nu_exec_prefix=
nu_connected "$a"
nu_connected "$b"
[[ "$(nu_nats "$b" server)" == *10.213.0.1* ]] || nu_fail "b's server: $(nu_nats "$b" server)"
nu_link_ready "$a" "$b" fed.warm
nu_link_ready "$b" "$a" fed.warm
nu_exchange "$topic" "$N" "$a" "$b"
for x in "$a" "$b"; do
  nu_until 10 "stat of $x shows $N out" nu_nats_is "$x" "$topic" out "$N"
  nu_nats_is "$x" "$topic" in "$N" || nu_fail "stat of $x: in $(nu_nats "$x" "$topic" in)"
done
nu_pass
