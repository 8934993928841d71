#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shmbus stat` against a private shmbusd, what issue 18 added: PATTERN
# (a Redis glob, in the text and the JSON, before or after the options).
# About 2 s.
# Usage: test_stat_ext.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
dir=$(mktemp -d)
bus="st$$"
export XDG_RUNTIME_DIR=$dir
unset SHMBUS_RUNTIME_DIR SHMBUS_DAEMON_UID # else the daemon and clients go elsewhere
daemon=""
log="$dir/daemon.log"
CLI_TIMEOUT=20
WAIT_TIMEOUT=10
source "${BASH_SOURCE[0]%/*}/clitest.sh" # alive, stop, wait_*, bounded, start_daemon
cleanup() {
  [ -n "$daemon" ] && stop "$daemon" "the daemon at exit"
  rm -f /dev/shm/shmbus."$bus".*
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -s "$log" ] && sed 's/^/  log: /' "$log" >&2
  exit 1
}
sb() { bounded "$shmbus" --bus "$bus" "$@" </dev/null; }
# names ARGS...: the topics `stat --json ARGS` lists, one line.
names() { sb stat --json "$@" | grep -o '"topics":\[.*' | grep -o '{"name":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' '; }

start_daemon "shmbusd"
for t in orders.eu orders.us orders.eu.late prices; do sb pub "$t" x || fail "pub $t"; done

[ "$(names)" = "orders.eu orders.eu.late orders.us prices " ] || fail "stat lists: $(names)"
[ "$(names 'orders.*')" = "orders.eu orders.eu.late orders.us " ] || fail "orders.*: $(names 'orders.*')"
[ "$(names 'orders.??')" = "orders.eu orders.us " ] || fail "orders.??: $(names 'orders.??')"
[ "$(names 'orders.[^e]*')" = "orders.us " ] || fail "orders.[^e]*: $(names 'orders.[^e]*')"
[ "$(sb stat 'pri*' --json | grep -o '{"name":"[^"]*"' | cut -d'"' -f4)" = prices ] ||
  fail "the options after PATTERN"
[ "$(names nothing)" = "" ] || fail "a pattern matching nothing lists: $(names nothing)"
sb stat 'orders.u?' | grep -q '^orders.us ' || fail "the text view of orders.u?"
if sb stat 'orders.u?' | grep -q '^prices '; then fail "the text view lists prices"; fi
set +e
sb stat a b 2>/dev/null
rc=$?
set -e
[ "$rc" = 2 ] || fail "two patterns: exit $rc, want 2"
echo "ok"
