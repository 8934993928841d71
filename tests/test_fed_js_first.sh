#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# JetStream export from a topic's very first message: the exporter's slot
# is made in the registry's listener, before the topic's creator gets its
# OPEN answered (daemon/fed/jsexport.c sbf_jsexport_add()). It was made on
# the exporter thread instead, from the next message, so what the creator
# published before that thread ran was never exported, on a reliable topic
# too (no slot gated it yet), and counted nowhere: under load beside
# another test, test_fed_js_pause's importing bus lacked the first 18.
# Here the daemon runs on one CPU at the lowest priority and each
# publisher on the same CPU at the default one, so that after the answer
# the publisher's burst runs before the daemon's threads do; the stream
# must hold every message of every topic.
# Usage: test_fed_js_first.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"
command -v taskset >/dev/null || {
  echo "SKIP: taskset is not installed"
  exit 77
}
N=200
TOPICS=5

# nu_stored NAME: the messages JetStream on server NAME holds.
nu_stored() {
  nu_mon "$1" jsz | python3 -c 'import json, sys; print(json.load(sys.stdin)["messages"])'
}

# nu_stored_is NAME N: server NAME holds N messages (a condition for
# nu_until, which runs it again at each poll).
nu_stored_is() {
  [ "$(nu_stored "$1")" = "$2" ]
}

nu_server_js j1
a=$(nu_bus)
nu_exec_prefix="taskset -c 0 nice -n 19"
nu_daemon "$a" --nats "${nu_url[j1]}" --nats-origin "o$a" \
  --federate 'dur.*,mode=reliable' --persist 'dur.*' --persist-replicas 1
nu_exec_prefix=
nu_connected "$a"
for i in $(seq 1 "$TOPICS"); do
  taskset -c 0 "$fedcheck" pub --bus "$a" --topic "dur.t$i" --reliable --count "$N" --tag "f$i" ||
    nu_fail "publisher of dur.t$i on $a failed"
done
want=$((N * TOPICS))
# 120 s: the daemon, at the lowest priority, may be starved by neighbours.
nu_until 120 "the stream holds the $want messages published" nu_stored_is j1 "$want"
nu_pass
