#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The examples (examples/) against a private shmbusd with its TCP bridge,
# so that they cannot rot: pubsub's subscriber process gets what its
# publisher process sends on `prices`, made lossy first by the CLI as in
# the README's walkthrough (the example's NULL options take it as it is);
# zerocopy's claimed and committed message read in place; group's work
# queue (a nacked job delivered again, three done); waitset's two topics;
# bridge_client.py through the bridge with redis-py. Every process started
# and every segment of the bus go on every exit path. A few seconds.
# Usage: test_examples.sh SHMBUSD SHMBUS EXAMPLES_BUILD_DIR EXAMPLES_SOURCE_DIR
set -euo pipefail
shmbusd=$(realpath "$1")
shmbus=$(realpath "$2")
bin=$(realpath "$3")
src=$(realpath "$4")
WAIT_TIMEOUT=20 # seconds for what a wait waits for
CLI_TIMEOUT=30  # seconds for one example's run
source "${BASH_SOURCE[0]%/*}/clitest.sh" # private_bus, stop, wait_*, bounded, ...
private_bus examples
unset SHMBUS_BRIDGE_TOKEN # the bridge serves local users without one
sub="" # pubsub's subscriber
cleanup() {
  [ -n "$sub" ] && stop "$sub"
  bus_cleanup
}
trap cleanup EXIT
# fail MESSAGE: say why, with the examples' output and the daemon's log.
fail() { fail_showing "$*" "$dir"/*.out "$dir"/*.err "$log"; }
# run NAME CMD...: CMD within CLI_TIMEOUT, its output in $dir/NAME.out.
run() {
  local name=$1
  shift
  bounded "$@" </dev/null >"$dir/$name.out" 2>"$dir/$name.err" || fail "$name: exit status $?"
}
# has NAME LINE: NAME's output holds LINE.
has() { grep -qxF -- "$2" "$dir/$1.out" || fail "$1: no line '$2'"; }

port=$(free_port)
start_daemon "shmbusd --bridge" --bridge "127.0.0.1:$port"

# pubsub, two processes, on the README's topic as its walkthrough makes it.
run cli "$shmbus" pub prices "made by the CLI"
"$bin/pubsub" sub prices 2 </dev/null >"$dir/sub.out" 2>"$dir/sub.err" &
sub=$!
wait_until "pubsub sub subscribed" grep -q '^subscribed to prices$' "$dir/sub.out"
run pub1 "$bin/pubsub" pub prices "EURUSD 1.08493"
run pub2 "$bin/pubsub" pub prices "EURUSD 1.08494"
wait_exit "$sub" "pubsub sub" || fail "pubsub sub: exit status $?"
sub=""
has sub "seq 1 (0 lost before it): EURUSD 1.08493"
has sub "seq 2 (0 lost before it): EURUSD 1.08494"

run zerocopy "$bin/zerocopy"
has zerocopy "seq 0: written in place as seq 0"

run group "$bin/group"
has group "member 1: job 1 (seq 1, delivery 1): failed, given back"
grep -qE '^member [01]: job 1 \(seq 1, delivery 2\): done$' "$dir/group.out" ||
  fail "group: job 1 not done on its second delivery"
[ "$(grep -c ': done$' "$dir/group.out")" = 3 ] || fail "group: not three jobs done"

run waitset "$bin/waitset"
has waitset "ready: example.quotes (seq 0)"
has waitset "ready: example.trades (seq 0)"

# Debian's python3, whose redis-py python3-redis is (not a pyenv one first in PATH).
run bridge /usr/bin/python3 "$src/bridge_client.py" 127.0.0.1 "$port" example.bridge
has bridge "receivers: 1"
has bridge "received on example.bridge: EURUSD 1.08495"
echo "test_examples: ok"
