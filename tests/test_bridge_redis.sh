#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The TCP bridge against the real redis-cli: PING, SUBSCRIBE, PSUBSCRIBE (a
# topic created after it), PUBLISH, and AUTH with -a, with the shmbus
# command on the other side in both directions. A private shmbusd on a
# free port and a private bus; every background process and segment is
# removed on any exit. Usage: test_bridge_redis.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
command -v redis-cli >/dev/null || { echo "redis-cli not installed: skipped"; exit 77; }
bus="brd$$"
# shellcheck source=tests/bridge_sh.sh
. "${BASH_SOURCE[0]%/*}/bridge_sh.sh" # bg: background redis-cli and shmbus processes

# wait_subscribers TOPIC N: the daemon counts N local subscribers of TOPIC.
wait_subscribers() {
  for _ in $(seq 200); do
    "$shmbus" --bus "$bus" stat --json | grep -q "\"name\":\"$1\"[^}]*\"subscribers\":$2" &&
      return 0
    sleep 0.05
  done
  fail "no $2 subscriber(s) on $1"
}

nl=$'\n'
start_daemon 127.0.0.1 --log-level warn
[ "$(redis-cli -p "$port" ping)" = PONG ] || fail "ping"
[ "$(redis-cli -p "$port" ping hello)" = hello ] || fail "ping with an argument"
[ "$(redis-cli -p "$port" echo "a b")" = "a b" ] || fail "echo"

# SUBSCRIBE (the topic does not exist yet) and PUBLISH from redis-cli, then
# from the local shmbus command.
redis-cli -p "$port" subscribe news >"$dir/sub.out" &
bg+=($!)
wait_for "$dir/sub.out" "subscribe${nl}news${nl}1"
[ "$(redis-cli -p "$port" publish news hello)" = 1 ] || fail "publish: receivers"
wait_for "$dir/sub.out" "message${nl}news${nl}hello"
"$shmbus" --bus "$bus" pub news "from local" "second line"
wait_for "$dir/sub.out" "message${nl}news${nl}from local${nl}message${nl}news${nl}second line"

# redis-cli PUBLISH to a local `shmbus sub`: the reply counts it.
"$shmbus" --bus "$bus" sub remote --count 2 >"$dir/local.out" &
sub=$!
bg+=("$sub")
wait_subscribers remote 1
[ "$(redis-cli -p "$port" publish remote one)" = 1 ] || fail "publish to a local subscriber"
# The last message: the subscriber may take it and leave before the
# bridge counts the receivers (counted after publishing), so 1 or 0.
out=$(redis-cli -p "$port" publish remote 'two words')
[ "$out" = 1 ] || [ "$out" = 0 ] || fail "second publish: $out"
wait "$sub" || fail "shmbus sub exited with $?"
printf 'one\ntwo words\n' | cmp -s - "$dir/local.out" || fail "shmbus sub printed: $(cat "$dir/local.out")"

# PSUBSCRIBE, then a topic created by a local publisher, and one by PUBLISH.
redis-cli -p "$port" psubscribe 'ps.*' >"$dir/psub.out" &
bg+=($!)
wait_for "$dir/psub.out" "psubscribe${nl}ps.*${nl}1"
"$shmbus" --bus "$bus" pub ps.created-later first
wait_for "$dir/psub.out" "pmessage${nl}ps.*${nl}ps.created-later${nl}first"
[ "$(redis-cli -p "$port" publish ps.remote r)" = 1 ] || fail "publish to a pattern subscriber"
wait_for "$dir/psub.out" "pmessage${nl}ps.*${nl}ps.remote${nl}r"
redis-cli -p "$port" publish other x >/dev/null
"$shmbus" --bus "$bus" pub ps.created-later last
wait_for "$dir/psub.out" "ps.created-later${nl}last"
grep -q other "$dir/psub.out" && fail "pattern ps.* got topic other"

# Errors as Redis words them.
out=$(redis-cli -p "$port" publish 'bad/name' x 2>&1 || true)
[[ "$out" == *"invalid topic name"* ]] || fail "bad topic name: $out"
out=$(redis-cli -p "$port" nosuchcommand 2>&1 || true)
[[ "$out" == *"unknown command 'nosuchcommand'"* ]] || fail "unknown command: $out"

stop_daemon

# AUTH: redis-cli -a with the token works, without or with a wrong one not.
printf '%s\n' "$token" >"$dir/token"
start_daemon 127.0.0.1 --log-level warn --bridge-token-file "$dir/token"
out=$(redis-cli -p "$port" ping 2>&1 || true)
[[ "$out" == *"NOAUTH Authentication required"* ]] || fail "ping without AUTH: $out"
out=$(redis-cli -p "$port" -a wrong --no-auth-warning ping 2>&1 || true)
[[ "$out" == *WRONGPASS* ]] || fail "wrong token: $out"
[ "$(redis-cli -p "$port" -a "$token" --no-auth-warning ping)" = PONG ] || fail "ping with AUTH"
redis-cli -p "$port" -a "$token" --no-auth-warning subscribe secret >"$dir/auth.out" &
bg+=($!)
wait_for "$dir/auth.out" "subscribe${nl}secret${nl}1"
[ "$(REDISCLI_AUTH=$token redis-cli -p "$port" publish secret s3)" = 1 ] || fail "publish with AUTH"
wait_for "$dir/auth.out" "message${nl}secret${nl}s3"

# SIGTERM with connections gone (stop_daemon ends the clients first):
# clean exit, nothing left in /dev/shm.
stop_daemon
# SBD_SEG_PREFIX (daemon/segfile.h), and the bus lock of daemon/config.c.
left=$(compgen -G "/dev/shm/shmbus.$bus.*" || true)$(compgen -G "/dev/shm/shmbus-$bus.lock" || true)
[ -z "$left" ] || fail "left in /dev/shm: $left"
[ -e "$dir/shmbus/$bus.sock" ] && fail "socket left"
echo "test_bridge_redis: ok"
