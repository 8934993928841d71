#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The federation benchmark: two buses, each with its own shmbusd, federated
# through one nats-server (JetStream on), against a plain cnats client pair
# through the same server, in one run. It starts a private nats-server on a
# free loopback port (its JetStream files in a temporary directory) and two
# shmbusd on buses of their own (A and B), runs every measurement through
# the buses and through cnats in turn (alternating which goes first), REPS
# times, and prints the medians with the ratio shmbus/nats. Everything it
# started is stopped, and its files removed, on every exit.
#
#   bench/nats.sh BUILD_DIR          (make bench-nats runs it on the dev build)
#
# Measurements (shmbus-nats-bench; side A sends, side B receives):
#   pingpong    A publishes nb.ping on bus A, B answers on nb.pong on bus B,
#               A waits for it: half the round trip. Baseline: two cnats
#               connections with SendAsap, cnats's setting for latency
#               (without it cnats 3.4's flusher holds a lone message 1 ms,
#               as it does shmbusd's).
#   throughput  A publishes lossy nb.tp as fast as it can, B counts what
#               reaches bus B per second and what is lost. Baseline: cnats's
#               buffered publishing (no SendAsap) to a cnats subscriber.
#   persist     A publishes the reliable, persisted nb.js as fast as the
#               exporter's gate lets it (JetStream acknowledgements, window
#               --persist-window), B receives on bus B. Baseline: cnats
#               js_PublishAsync with the same window into a stream that
#               copies the daemons' stream's configuration (a subject no
#               daemon imports, so that the daemons sit out its rounds), and
#               a pull consumer acknowledging each message.
#   paced       persist at RATE messages/s: latency without a queue (the
#               baseline with SendAsap, as for pingpong).
#
# Sizes come from the environment: REPS (3), PP_COUNT (20000 ping-pongs),
# TP_COUNT (1000000 messages), JS_COUNT (200000), RATE (2000 msg/s for the
# paced run, PACED_COUNT 10000 messages), WINDOW (256: --persist-window and
# the baseline's publish window).
#
# Pinning: the machine has 2 vCPUs, and five processes are on the path
# (side A, shmbusd A, nats-server, shmbusd B, side B): they cannot each have
# a CPU. Each bus plays a host: side A and shmbusd A (all its threads) on
# CPU 0, side B and shmbusd B on CPU 1; nats-server is not pinned (it runs
# on both). The baseline's sides are pinned the same way (A on CPU 0, B on
# CPU 1), with the same unpinned server. Run it alone.
set -euo pipefail
build=${1:?usage: nats.sh BUILD_DIR}
REPS=${REPS:-3}
PP_COUNT=${PP_COUNT:-20000}
TP_COUNT=${TP_COUNT:-1000000}
JS_COUNT=${JS_COUNT:-200000}
RATE=${RATE:-2000}
PACED_COUNT=${PACED_COUNT:-10000}
WINDOW=${WINDOW:-256}

bench=$build/bench/shmbus-nats-bench
shmbusd=$build/daemon/shmbusd
cli=$build/tools/shmbus
for f in "$bench" "$shmbusd" "$cli"; do
  [ -x "$f" ] || { echo "nats.sh: $f not built" >&2; exit 1; }
done
for c in nats-server taskset python3; do
  command -v "$c" >/dev/null || { echo "nats.sh: $c not installed" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/shmbus-nats-bench.XXXXXX)
bus_a=nbA-$$
bus_b=nbB-$$
npid=
apid=
bpid=
cleanup() {
  for p in $apid $bpid $npid; do
    kill "$p" 2>/dev/null || true
  done
  for p in $apid $bpid $npid; do
    wait "$p" 2>/dev/null || true
  done
  # A daemon that stops removes the segments nobody uses; one that was
  # killed or hung may leave some: they are ours alone (buses named by pid).
  rm -f /dev/shm/shmbus."$bus_a".* /dev/shm/shmbus."$bus_b".*
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on (the kernel picks it; a tiny race).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until $1 (a command) succeeds; fail if pid $2 exits first.
wait_for() {
  for _ in $(seq 200); do
    if eval "$1" >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

nport=$(free_port)
url=nats://127.0.0.1:$nport
nats-server -a 127.0.0.1 -p "$nport" -js -sd "$tmp/js" -l "$tmp/nats-server.log" &
npid=$!
wait_for "(exec 3<>/dev/tcp/127.0.0.1/$nport)" "$npid" ||
  { echo "nats.sh: nats-server did not start:" >&2; cat "$tmp/nats-server.log" >&2; exit 1; }

# The daemons: control sockets in a private XDG_RUNTIME_DIR, one bus each.
export XDG_RUNTIME_DIR=$tmp
unset SHMBUS_RUNTIME_DIR SHMBUS_DAEMON_UID # else the daemon and clients go elsewhere
# start_daemon BUS CPU ORIGIN: shmbusd on CPU, federating the benchmark's
# topics (each named alone: one pattern per topic, no overlap).
start_daemon() {
  taskset -c "$2" "$shmbusd" --bus "$1" --foreground --nats "$url" --nats-origin "$3" \
    --federate nb.ping --federate nb.pong --federate nb.tp \
    --federate nb.js,mode=reliable --persist nb.js --persist-window "$WINDOW" \
    2>"$tmp/$1.log" &
}
start_daemon "$bus_a" 0 benchA
apid=$!
start_daemon "$bus_b" 1 benchB
bpid=$!
for b in "$bus_a:$apid" "$bus_b:$bpid"; do
  wait_for "'$cli' --bus ${b%%:*} stat" "${b##*:}" ||
    { echo "nats.sh: shmbusd ${b%%:*} did not start:" >&2; cat "$tmp/${b%%:*}.log" >&2; exit 1; }
done

echo "$(nats-server --version) pid $npid on 127.0.0.1:$nport (JetStream, files in $tmp/js), not pinned"
echo "shmbusd A pid $apid (bus $bus_a) on CPU 0, shmbusd B pid $bpid (bus $bus_b) on CPU 1"
echo "$(nproc) CPUs: side A on CPU 0 with shmbusd A, side B on CPU 1 with shmbusd B; the baseline's sides the same"
echo "REPS=$REPS PP_COUNT=$PP_COUNT TP_COUNT=$TP_COUNT JS_COUNT=$JS_COUNT RATE=$RATE PACED_COUNT=$PACED_COUNT WINDOW=$WINDOW"

results=$tmp/results
: >"$results"
failed=0

# run NAME VIA ARGS...: one measurement through shmbus or nats; its
# key=value line goes into $results as "NAME VIA k=v ...".
run() {
  local name=$1 via=$2 out rc line
  shift 2
  local -a where=(--via "$via" --cpu-a 0 --cpu-b 1)
  if [ "$via" = shmbus ]; then
    where+=(--bus-a "$bus_a" --bus-b "$bus_b")
  else
    where+=(--nats "$url")
  fi
  echo "\$ shmbus-nats-bench $* ${where[*]}"
  rc=0
  out=$("$bench" "$@" "${where[@]}" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then
    line=$(echo "$out" | tail -n 1)
    echo "$line"
    echo "$name $via $line" >>"$results"
  else
    failed=1
    echo "$out" | sed 's/^/  | /'
    echo "  FAILED (exit status $rc)"
  fi
  for p in "$npid:nats-server" "$apid:shmbusd A" "$bpid:shmbusd B"; do
    if ! kill -0 "${p%%:*}" 2>/dev/null; then
      echo "nats.sh: ${p#*:} (pid ${p%%:*}) is gone after: $*" >&2
      tail -n 20 "$tmp"/*.log >&2
      exit 1
    fi
  done
}

# both NAME [ARGS...] -- [BASELINE ARGS...]: the measurement through both,
# in order $order; the arguments after -- go to the baseline only.
both() {
  local name=$1 v
  shift
  local -a common=() base=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do common+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  base=("$@")
  for v in $order; do
    if [ "$v" = shmbus ]; then
      run "$name" shmbus "${common[@]}"
    else
      run "$name" nats "${common[@]}" "${base[@]}"
    fi
  done
}

for rep in $(seq "$REPS"); do
  if [ $((rep % 2)) -eq 1 ]; then order="shmbus nats"; else order="nats shmbus"; fi
  echo "== round $rep of $REPS ($order)"
  both pingpong pingpong --count "$PP_COUNT" -- --send-asap
  both throughput throughput --count "$TP_COUNT"
  both persist persist --count "$JS_COUNT" --window "$WINDOW" -- --stream-of shmbus.nb.js
  both paced persist --count "$PACED_COUNT" --rate "$RATE" --window "$WINDOW" -- \
    --stream-of shmbus.nb.js --send-asap
done

echo "== the daemons' view at the end"
for b in "$bus_a" "$bus_b"; do
  "$cli" --bus "$b" stat | sed -n '/[Nn][Aa][Tt][Ss]/,$p' || true
done

first=shmbus
second=nats
# shellcheck source=bench/results.sh
. "$(dirname "$0")/results.sh"

echo
echo "== medians of $REPS rounds, 64-byte messages over loopback ($(nproc) CPUs; A on CPU 0, B on CPU 1, nats-server on both)"
printf "%-44s %14s %14s %8s  %s\n" "measurement" "shmbus" "nats" "ratio" "unit"
row pingpong p50_ns "ping-pong one-way (RTT/2), p50" 1000 "us"
row pingpong p99_ns "  p99" 1000 "us"
row pingpong p999_ns "  p99.9" 1000 "us"
row pingpong timeouts "  unanswered pings" 1 "pings"
row throughput msgs_per_s "lossy throughput at B" 1000 "k msg/s"
row throughput lost "  lost" 1 "messages"
row throughput p50_ns "  latency under that load, p50" 1000 "us"
row throughput p99_ns "  p99" 1000 "us"
row persist msgs_per_s "persisted throughput at B" 1000 "k msg/s"
row persist lost "  lost" 1 "messages"
row persist p50_ns "  latency under that load, p50" 1000 "us"
row persist p99_ns "  p99" 1000 "us"
row paced p50_ns "persisted, paced $RATE msg/s, p50" 1000 "us"
row paced p99_ns "  p99" 1000 "us"
row paced p999_ns "  p99.9" 1000 "us"
row paced lost "  lost" 1 "messages"
echo
echo "Targets: ping-pong p50 ratio <= 1.2, lossy throughput ratio >= 0.8."
if [ "$failed" -ne 0 ]; then
  echo "nats.sh: some runs failed (see above)" >&2
  exit 1
fi
