#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Stopping an importing daemon while messages pour in: bus a floods a
# lossy core-NATS topic and a persisted one; bus b's daemon, which imports
# both, is stopped (SIGTERM) and started again, again and again. Every
# stop must end cleanly (exit 0): the subscriptions that messages keep
# arriving for (the core import on PREFIX.>, the JetStream pull
# subscription, the acknowledgement inboxes) are destroyed only once the
# connection is closed, since cnats 3.4's read loop may hand a message to
# a subscription another thread destroys (freed memory written: under
# ASan a report and a non-zero exit, else heap corruption).
# Usage: test_fed_js_stopflow.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"
ROUNDS=${ROUNDS:-25}
fed=(--federate 'l.*' --federate 'dur.*,mode=reliable' --persist 'dur.*' --persist-replicas 1)

nu_server_js j1
a=$(nu_bus)
b=$(nu_bus)
nu_daemon "$a" --nats "${nu_url[j1]}" --nats-origin "o$a" "${fed[@]}"
nu_daemon "$b" --nats "${nu_url[j1]}" --nats-origin "o$b" "${fed[@]}"
nu_connected "$a"
nu_connected "$b"
"$fedcheck" pub --bus "$a" --topic l.t --count 20000000 --tag l --size 64 >/dev/null 2>&1 &
nu_pids+=("$!")
"$fedcheck" pub --bus "$a" --topic dur.t --reliable --count 20000000 --tag d --size 64 \
  --timeout-ms 600000 >/dev/null 2>&1 &
nu_pids+=("$!")
nu_until "$NU_WAIT" "bus $b imports l.t" nu_nats_ge "$b" l.t in 1000
nu_until "$NU_WAIT" "bus $b imports dur.t" nu_nats_ge "$b" dur.t in 100
for ((i = 1; i <= ROUNDS; i++)); do
  # A moment of flow into the daemon just started, then the stop.
  nu_connected "$b"
  nu_daemon_stop "$b" TERM
  nu_daemon_restart "$b"
done
nu_pass
