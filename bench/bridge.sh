#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The bridge benchmark: shmbusd's TCP bridge against redis-server, with the
# same hiredis client (shmbus-bridge-bench) for both, in one run. It starts
# a private shmbusd (--bridge, on a bus of its own) and a private
# redis-server, each on a free loopback port, runs every measurement against
# both in turn (alternating which goes first), REPS times, and prints the
# medians with the ratio shmbusd/redis. Both servers are stopped on exit.
#
#   bench/bridge.sh BUILD_DIR          (make bench-bridge runs it on the dev build)
#
# The throughput runs use hiredis's redisAppendCommand("PUBLISH %s %b"),
# then again with --preformatted (one redisFormatCommand, a restamped copy
# per message): formatting costs the publisher about as much as a server
# spends on the message, and a client that saturates first hides the
# servers' difference.
#
# Sizes come from the environment: REPS (3), COUNT (1000000 messages for the
# throughput runs), PP_COUNT (20000 ping-pong rounds), RATE (10000 msg/s for
# the paced run, PACED_COUNT 20000 messages), SUBS (100 fan-out connections),
# FAN_COUNT (20000 messages to each), FAN_RATE (1000 msg/s for the paced
# fan-out, FAN_PACED_COUNT 2000), CONNS (10000 idle connections).
#
# shmbusd creates a topic on the first PUBLISH as lossy with 1024 cells; the
# throughput and fan-out topics are created beforehand, with the shmbus CLI,
# as reliable with 65536 cells of 64 bytes, so that the bridge pushes back
# on the publisher instead of dropping (redis-server never drops; both
# disconnect a subscriber whose output passes 32 MiB, redis by its default
# client-output-buffer-limit, shmbusd by --bridge-max-output).
#
# Run it alone: nothing is pinned, and the servers share the machine's CPUs
# with the client processes (a publisher, a subscriber process, and
# shmbusd's I/O and pump threads or redis-server's one thread).
set -euo pipefail
build=${1:?usage: bridge.sh BUILD_DIR}
REPS=${REPS:-3}
COUNT=${COUNT:-1000000}
PP_COUNT=${PP_COUNT:-20000}
RATE=${RATE:-10000}
PACED_COUNT=${PACED_COUNT:-20000}
SUBS=${SUBS:-100}
FAN_COUNT=${FAN_COUNT:-20000}
FAN_RATE=${FAN_RATE:-1000}
FAN_PACED_COUNT=${FAN_PACED_COUNT:-2000}
CONNS=${CONNS:-10000}

bench=$build/bench/shmbus-bridge-bench
shmbusd=$build/daemon/shmbusd
cli=$build/tools/shmbus
for f in "$bench" "$shmbusd" "$cli"; do
  [ -x "$f" ] || { echo "bridge.sh: $f not built" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "bridge.sh: redis-server not installed" >&2; exit 1; }

tmp=$(mktemp -d /tmp/shmbus-bridge-bench.XXXXXX)
spid=
rpid=
cleanup() {
  for p in $spid $rpid; do
    kill "$p" 2>/dev/null || true
  done
  for p in $spid $rpid; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on (the kernel picks it; a tiny race).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until something accepts on port $1; fail if pid $2 exits first.
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# shmbusd: its control socket in a private XDG_RUNTIME_DIR, a bus of its own.
export XDG_RUNTIME_DIR=$tmp
unset SHMBUS_RUNTIME_DIR SHMBUS_DAEMON_UID # else the daemon and clients go elsewhere
bus=bbench-$$
sport=$(free_port)
"$shmbusd" --bus "$bus" --foreground --bridge "127.0.0.1:$sport" 2>"$tmp/shmbusd.log" &
spid=$!
wait_port "$sport" "$spid" || { echo "bridge.sh: shmbusd did not start:" >&2; cat "$tmp/shmbusd.log" >&2; exit 1; }
for topic in bb.pubsub bb.fanout; do
  "$cli" --bus "$bus" pub --reliable --capacity 65536 --max-msg 64 "$topic" </dev/null
done

rport=$(free_port)
mkdir "$tmp/redis"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --dir "$tmp/redis" --logfile "$tmp/redis.log" --maxclients $((CONNS + 200)) &
rpid=$!
wait_port "$rport" "$rpid" || { echo "bridge.sh: redis-server did not start:" >&2; cat "$tmp/redis.log" >&2; exit 1; }

echo "shmbusd pid $spid on 127.0.0.1:$sport (bus $bus); $(redis-server --version | cut -d' ' -f1-3) pid $rpid on 127.0.0.1:$rport"
echo "$(nproc) CPUs, nothing pinned: each server shares them with the client processes."
echo "REPS=$REPS COUNT=$COUNT PP_COUNT=$PP_COUNT RATE=$RATE SUBS=$SUBS FAN_COUNT=$FAN_COUNT CONNS=$CONNS"

results=$tmp/results
: >"$results"
failed=0

# run NAME SERVER ARGS...: one measurement against one server; its key=value
# line goes into $results as "NAME SERVER k=v ...".
run() {
  local name=$1 server=$2 port pid out rc line
  shift 2
  if [ "$server" = shmbusd ]; then port=$sport pid=$spid; else port=$rport pid=$rpid; fi
  echo "\$ shmbus-bridge-bench $* --port $port --label $server"
  rc=0
  out=$("$bench" "$@" --port "$port" --label "$server" --server-pid "$pid" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then
    line=$(echo "$out" | tail -n 1)
    echo "$line"
    # A round whose subscriber lost messages or was disconnected (a server
    # drops a subscriber that falls 32 MiB behind) measured something else:
    # it is counted, not averaged.
    if [[ "$line" =~ (^| )(lost|errors)=[1-9] ]]; then
      echo "  (left out of the medians: messages lost or the subscriber disconnected)"
      echo "$name $server incomplete=1" >>"$results"
    else
      echo "$name $server $line" >>"$results"
    fi
  else
    failed=1
    echo "$out" | sed 's/^/  | /'
    echo "  FAILED (exit status $rc)"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "bridge.sh: $server (pid $pid) is gone after: $*" >&2
    [ "$server" = shmbusd ] && tail -n 20 "$tmp/shmbusd.log" >&2
    exit 1
  fi
}

# both NAME ARGS...: the measurement against both servers, in order $order.
both() {
  local name=$1 s
  shift
  for s in $order; do
    run "$name" "$s" "$@"
  done
}

for rep in $(seq "$REPS"); do
  if [ $((rep % 2)) -eq 1 ]; then order="shmbusd redis"; else order="redis shmbusd"; fi
  echo "== round $rep of $REPS ($order)"
  # Memory first: in round 1 the servers have served nothing yet. Later
  # rounds may reuse memory freed earlier, so the table shows the largest.
  both idle idle --conns "$CONNS"
  both window pubsub --count "$COUNT" --window 1000 --batch 16
  both replyoff pubsub --count "$COUNT" --reply-off --batch 16
  # The same with a lighter publisher: hiredis formats PUBLISH once, and
  # each message is a restamped copy (redisAppendFormattedCommand).
  both windowpre pubsub --count "$COUNT" --window 1000 --batch 16 --preformatted
  both replyoffpre pubsub --count "$COUNT" --reply-off --batch 16 --preformatted
  both pingpong pingpong --count "$PP_COUNT"
  both paced pubsub --count "$PACED_COUNT" --rate "$RATE"
  both fanout fanout --subscribers "$SUBS" --count "$FAN_COUNT" --window 1000 --batch 16
  both fanpaced fanout --subscribers "$SUBS" --count "$FAN_PACED_COUNT" --rate "$FAN_RATE"
done

echo "== shmbusd's view at the end"
"$cli" --bus "$bus" stat | tail -n 3 || true

first=shmbusd
second=redis
# shellcheck source=bench/results.sh
. "$(dirname "$0")/results.sh"

echo
echo "== medians of $REPS rounds, 64-byte messages over loopback ($(nproc) CPUs shared with the clients, nothing pinned)"
printf "%-44s %14s %14s %8s  %s\n" "measurement" "shmbusd" "redis" "ratio" "unit"
row window msgs_per_s "throughput, PUBLISH window 1000" 1000 "k msg/s at subscriber"
row window p50_ns "  latency under that load, p50" 1000 "us"
row window p99_ns "  p99" 1000 "us"
row window p999_ns "  p99.9" 1000 "us"
row window lost "  lost" 1 "messages"
row window server_cpus "  server CPU" 1 "CPUs"
row replyoff msgs_per_s "throughput, CLIENT REPLY OFF" 1000 "k msg/s at subscriber"
row replyoff p50_ns "  latency under that load, p50" 1000 "us"
row replyoff p99_ns "  p99" 1000 "us"
row replyoff p999_ns "  p99.9" 1000 "us"
row replyoff lost "  lost" 1 "messages"
row replyoff server_cpus "  server CPU" 1 "CPUs"
row windowpre msgs_per_s "throughput, window 1000, preformatted" 1000 "k msg/s at subscriber"
row windowpre p50_ns "  latency under that load, p50" 1000 "us"
row windowpre p99_ns "  p99" 1000 "us"
row windowpre server_cpus "  server CPU" 1 "CPUs"
row replyoffpre msgs_per_s "throughput, REPLY OFF, preformatted" 1000 "k msg/s at subscriber"
row replyoffpre p50_ns "  latency under that load, p50" 1000 "us"
row replyoffpre p99_ns "  p99" 1000 "us"
row replyoffpre server_cpus "  server CPU" 1 "CPUs"
row pingpong p50_ns "latency, ping-pong (one at a time), p50" 1000 "us"
row pingpong p99_ns "  p99" 1000 "us"
row pingpong p999_ns "  p99.9" 1000 "us"
row paced p50_ns "latency, paced $RATE msg/s, p50" 1000 "us"
row paced p99_ns "  p99" 1000 "us"
row paced lost "  lost" 1 "messages"
row fanout deliveries_per_s "fan-out to $SUBS, deliveries" 1000 "k/s"
row fanout p50_ns "  latency under that load, p50" 1000 "us"
row fanout p99_ns "  p99" 1000 "us"
row fanout lost "  lost" 1 "deliveries"
row fanpaced p50_ns "fan-out to $SUBS, paced $FAN_RATE msg/s, p50" 1000 "us"
row fanpaced p99_ns "  p99" 1000 "us"
row fanpaced worst_p99_ns "  worst connection's p99" 1000 "us"
row idle rss_delta_mib "$CONNS idle connections: VmRSS growth" 1 "MiB (largest of the rounds)" largest
row idle bytes_per_conn "  per connection" 1 "bytes (largest)" largest
for m in window replyoff windowpre replyoffpre pingpong paced fanout fanpaced; do
  for sv in shmbusd redis; do
    n=$(values "$m" "$sv" incomplete | wc -l)
    if [ "$n" -gt 0 ]; then
      echo "$m against $sv: $n of $REPS rounds left out (lost messages or a disconnected subscriber)"
    fi
  done
done
echo
echo "Targets: throughput ratio >= 2, ping-pong p50 ratio <= 1, idle growth < 160 MiB."
if [ "$failed" -ne 0 ]; then
  echo "bridge.sh: some runs failed (see above)" >&2
  exit 1
fi
