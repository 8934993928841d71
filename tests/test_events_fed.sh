#!/usr/bin/env bash
# The NATS link on the daemon's events topic: a daemon federating through
# a real nats-server tells "link_up" with the server's URL once connected,
# "link_down" when the server goes, and "link_up" again when one comes
# back on that port. Read with `shmbus sub _shmbus.events`.
# Usage: test_events_fed.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"

# has OUT COUNT TEXT: OUT holds TEXT on at least COUNT lines.
has() {
  [ "$(grep -cF -- "$3" "$1")" -ge "$2" ]
}

nu_server n1
port=${nu_port[n1]}
a=$(nu_bus)
nu_daemon "$a" --nats "${nu_url[n1]}" --federate 'fed.*'
out=$nu_dir/events.out
"$shmbus" --bus "$a" sub _shmbus.events --from oldest >"$out" 2>"$out.err" &
nu_pids+=("$!")
up="\"event\":\"link_up\",\"server\":\"nats://127.0.0.1:$port\"}"
down="\"event\":\"link_down\",\"server\":\"nats://127.0.0.1:$port\"}"
nu_until "$NU_WAIT" "link_up told" has "$out" 1 "$up"

# The server goes: link_down; one comes back on the port: link_up again.
kill "${nu_pid[n1]}"
wait "${nu_pid[n1]}" 2>/dev/null || true
nu_until "$NU_WAIT" "link_down told" has "$out" 1 "$down"
nu_server_at n2 "$port"
nu_until 30 "link_up told again" has "$out" 2 "$up"
nu_daemon_stop "$a" TERM
echo "test_events_fed: ok"
