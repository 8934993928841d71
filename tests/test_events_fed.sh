#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The NATS link on the daemon's events topic: a daemon federating through
# a real nats-server tells "link_up" with the server's URL once connected,
# "link_down" when the server goes, and "link_up" again when one comes
# back on that port. Read with `shmbus sub _shmbus.events`. A second
# daemon federating every topic ('*') does not import the first one's
# events into its own events topic: only a daemon publishes there, and
# the import is refused (logged), while another topic crosses.
# Usage: test_events_fed.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"

# has OUT COUNT TEXT: OUT holds TEXT on at least COUNT lines.
has() {
  [ -e "$1" ] && [ "$(grep -cF -- "$3" "$1")" -ge "$2" ]
}

nu_server n1
port=${nu_port[n1]}
a=$(nu_bus)
nu_daemon "$a" --nats "${nu_url[n1]}" --federate '*'
out=$nu_dir/events.out
"$shmbus" --bus "$a" sub _shmbus.events --from oldest >"$out" 2>"$out.err" &
nu_pids+=("$!")
up="\"event\":\"link_up\",\"server\":\"nats://127.0.0.1:$port\"}"
down="\"event\":\"link_down\",\"server\":\"nats://127.0.0.1:$port\"}"
nu_until "$NU_WAIT" "link_up told" has "$out" 1 "$up"

# b federates everything too: a's events topic (exported by a) must not
# reach b's. A subscriber of a killed: a "reaped" event on a, exported.
b=$(nu_bus)
nu_daemon "$b" --nats "${nu_url[n1]}" --federate '*'
bout=$nu_dir/events.b.out
"$shmbus" --bus "$b" sub _shmbus.events --from oldest >"$bout" 2>"$bout.err" &
nu_pids+=("$!")
nu_until "$NU_WAIT" "b's link_up told" has "$bout" 1 "$up"
nu_link_ready "$a" "$b" fed.probe
nu_sub "$a" fed.victim "$nu_dir/victim.out"
victim=$nu_last
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true
nu_until "$NU_WAIT" "reaped told on a" has "$out" 1 "\"event\":\"reaped\",\"pid\":$victim,"
nu_until "$NU_WAIT" "b refuses a's events" nu_logged "$b" "_shmbus.events" "refused"
if grep -qF "\"bus\":\"$a\"" "$bout"; then
  nu_fail "b's events topic holds a's events: $(grep -F "\"bus\":\"$a\"" "$bout" | head -3)"
fi
nu_daemon_stop "$b" TERM

# The server goes: link_down; one comes back on the port: link_up again.
kill "${nu_pid[n1]}"
wait "${nu_pid[n1]}" 2>/dev/null || true
nu_until "$NU_WAIT" "link_down told" has "$out" 1 "$down"
nu_server_at n2 "$port"
nu_until 30 "link_up told again" has "$out" 2 "$up"
nu_daemon_stop "$a" TERM
echo "test_events_fed: ok"
