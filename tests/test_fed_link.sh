#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The link to NATS when it cannot be made:
#  - no server listens at start: the daemon starts, serves its bus (a local
#    message goes through), shows state connecting; once a server comes up
#    on that port, it connects and federates.
#  - refused credentials (a server with a token, the daemon given a wrong
#    token file; a server with a user, the daemon given a wrong password):
#    logged, counted in errors, state never connected, the daemon alive and
#    serving its bus; the right credentials connect.
#  - a credentials file readable by others gets a warning naming it.
# Usage: test_fed_link.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"

# local_works BUS: a message published on BUS reaches a subscriber on it.
local_works() {
  local out="$nu_dir/$1.local" sub
  nu_sub "$1" local.t "$out" --count 1 --timeout-ms 10000
  sub=$nu_last
  "$fedcheck" pub --bus "$1" --topic local.t --count 1 --tag here || nu_fail "publish on $1"
  nu_sub_done "$sub" "$out" "local subscriber on $1"
  [ "$(nu_payloads "$out")" = here-1 ] || nu_fail "local message on $1: $(cat "$out")"
}

# refused BUS WHAT: BUS's daemon was refused: it counts an error, logs an
# authorization failure, is not connected, and serves its bus.
refused() {
  nu_until "$NU_WAIT" "$2: the daemon counts an error" nu_nats_ge "$1" errors 1
  nu_until "$NU_WAIT" "$2: the daemon logs it" grep -Eqi 'authori[sz]ation|auth' "$nu_dir/$1.log"
  local st
  st=$(nu_nats "$1" state)
  [ "$st" = connecting ] || [ "$st" = reconnecting ] || nu_fail "$2: state $st"
  local_works "$1"
  nu_daemon_up "$1"
}

# --- Nobody listens at start.
port=$(nu_free_port)
a=$(nu_bus)
nu_daemon "$a" --nats "nats://127.0.0.1:$port" --nats-origin "o$a" --federate 'fed.*'
nu_until "$NU_WAIT" "a shows state connecting" nu_nats_is "$a" state connecting
local_works "$a"
nu_nats_is "$a" origin "o$a" || nu_fail "a: origin $(nu_nats "$a" origin)"
nu_nats_is "$a" prefix shmbus || nu_fail "a: prefix $(nu_nats "$a" prefix)"
nu_server_at n1 "$port"
nu_until 30 "a connects once the server is up" nu_nats_is "$a" state connected
[[ "$(nu_nats "$a" server)" == *":$port"* ]] || nu_fail "a: server $(nu_nats "$a" server)"
b=$(nu_bus)
nu_daemon "$b" --nats "${nu_url[n1]}" --nats-origin "o$b" --federate 'fed.*'
nu_connected "$b"
nu_link_ready "$a" "$b" fed.late

# --- A token the server refuses; then the right one (a file others can read).
nu_server n2 --auth "tok-$$-right"
c=$(nu_bus)
echo "tok-$$-wrong" >"$nu_dir/wrong.token"
chmod 0600 "$nu_dir/wrong.token"
nu_daemon "$c" --nats "${nu_url[n2]}" --nats-token-file "$nu_dir/wrong.token" --federate 'fed.*'
refused "$c" "wrong token"
grep -F "$nu_dir/wrong.token" "$nu_dir/$c.log" | grep -Eqi 'readable|permission|mode' &&
  nu_fail "c warned about a token file only its owner reads"
d=$(nu_bus)
echo "tok-$$-right" >"$nu_dir/right.token"
chmod 0644 "$nu_dir/right.token"
nu_daemon "$d" --nats "${nu_url[n2]}" --nats-token-file "$nu_dir/right.token" --federate 'fed.*'
nu_connected "$d"
nu_until "$NU_WAIT" "d warns that its token file is readable by others" \
  nu_logged "$d" "$nu_dir/right.token" 'readable|permission|mode'

# --- A user whose password the server refuses; then the right one.
nu_server n3 --user "u$$" --pass "pw-$$-right"
e=$(nu_bus)
echo "u$$:pw-$$-wrong" >"$nu_dir/wrong.user"
chmod 0600 "$nu_dir/wrong.user"
nu_daemon "$e" --nats "${nu_url[n3]}" --nats-user-file "$nu_dir/wrong.user" --federate 'fed.*'
refused "$e" "wrong password"
f=$(nu_bus)
echo "u$$:pw-$$-right" >"$nu_dir/right.user"
chmod 0600 "$nu_dir/right.user"
nu_daemon "$f" --nats "${nu_url[n3]}" --nats-user-file "$nu_dir/right.user" --federate 'fed.*'
nu_connected "$f"
# No secret in the logs.
grep -rqF -e "pw-$$-" -e "tok-$$-" "$nu_dir"/t*.log && nu_fail "a daemon logged a secret"
nu_pass
