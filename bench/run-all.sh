#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The benchmark suite behind `make bench`, and behind docs/benchmarks.md.
# Each command measures shmbus and its baseline in the same run and prints
# key=value figures as its last line. Run it alone: the spinning sides use
# both cores, and anything else running skews them. `pingpong --bus`, `ack` and
# `registry` start a private shmbusd of their own (the one built with the
# benchmark; $SHMBUS_BENCH_SHMBUSD overrides it). Last, federation through
# NATS (bench/nats.sh, on the same build), when nats-server is installed.
# The floor of pingpong and throughput is the one-line ring of
# bench/bench_ring.c (docs/benchmarks.md, "How the benchmarks work").
set -euo pipefail
bench=${1:?usage: run-all.sh path/to/shmbus-bench}

run() {
  echo "\$ shmbus-bench $*"
  "$bench" "$@" | tail -n 1
}

for mode in lossy reliable; do
  run pingpong --wait spin --mode "$mode" --size 64 --count 200000
  run pingpong --wait spin --mode "$mode" --exclusive --size 64 --count 200000
done
run pingpong --wait adaptive --mode lossy --size 64 --count 200000
run pingpong --wait block --mode lossy --size 64 --count 20000 --warmup 2000
# One-line messages (32 B: the cell is one line) beside the 64 B rows.
for mode in lossy reliable; do
  run pingpong --wait spin --mode "$mode" --size 32 --count 200000
done
run pingpong --wait spin --mode reliable --exclusive --size 32 --count 200000
# Publisher and sleeping subscriber on one CPU, against the futex rings there.
run pingpong --wait block --same-cpu --mode reliable --size 64 --count 20000 --warmup 2000
# Through the daemon and the bus API, against the direct ring in the same run.
for mode in lossy reliable; do
  run pingpong --bus --wait spin --mode "$mode" --size 64 --count 200000
done
for mode in lossy reliable; do
  run throughput --mode "$mode" --size 64 --seconds 6 --rounds 3
  run throughput --mode "$mode" --exclusive --size 64 --seconds 6 --rounds 3
done
# The batch API: shmbus_publish_vec() of N, shmbus_poll() of N at most.
for batch in 8 64; do
  run throughput --mode reliable --batch "$batch" --size 64 --seconds 6 --rounds 3
done
# Publisher and sleeping subscriber on CPU 0, against the futex ring there.
for mode in lossy reliable; do
  run throughput --same-cpu --mode "$mode" --size 64 --seconds 6 --rounds 3
done
run fanout --subscribers 8 --count 5000 --rounds 3
# What sleepers cost a publisher (one publish every 50 us): none, 1 and 8
# sleeping, 8 lazy (wake_bound_ns 10 ms).
run fanout --wake-tax --subscribers 8 --count 5000 --rounds 3 --lazy-us 10000
# A work queue: group throughput with acknowledgements (max_inflight 1 and
# 16), 1 and 4 members, against the same group without, through private
# shmbusds; then the members' own cost per message (draining a full topic).
run ack --size 64 --seconds 2 --rounds 5 --inflight 16 --members 1,4
run ack --drain --size 64 --count 500000 --rounds 15 --inflight 16 --members 1,4
run pubonly --count 1000000
# The journal: a recorder on a reliable (and a lossy) topic against the same
# subscriber unrecorded, to tmpfs and to disk, per sync policy; reading a
# journal back; a paced publisher's latency with and without a recorder.
for sync in none batch; do
  run journal --part record --mode reliable --sync "$sync" --size 64 --seconds 2 --rounds 5
done
run journal --part record --mode lossy --sync none --size 64 --seconds 2 --rounds 5
run journal --part replay --mode reliable --size 64 --count 2000000 --rounds 5
for sync in none batch; do
  run journal --part latency --mode reliable --sync "$sync" --interval-us 10 --count 100000 --rounds 5
done
# The journal writer's I/O: write() + fdatasync against io_uring (when built
# with liburing), batches of 4 KiB to 1 MiB, on tmpfs and on the disk.
if "$bench" journal-io --help >/dev/null 2>&1; then
  for dir in /dev/shm /var/tmp; do
    for sync in batch none; do
      for batch in 4096 65536 1048576; do
        run journal-io --dir "$dir" --batch "$batch" --sync "$sync" --seconds 1 --rounds 3
      done
    done
  done
else
  echo "(built without liburing: skipping journal-io)"
fi
# shmbusd's own memory with 1000 topics and 500 clients; lookup time at
# 100, 1000 and 10000 topics.
run registry --topics 1000 --clients 500 --opens 2 --lookup-max 10000

# A publisher nobody waits on makes no system call: the same total with
# 10^3 and 10^6 messages (everything counted is setup and teardown).
if command -v strace >/dev/null; then
  out=$(mktemp)
  trap 'rm -f "$out"' EXIT
  for n in 1000 1000000; do
    strace -f -c -o "$out" "$bench" pubonly --count "$n" >/dev/null
    calls=$(awk '$NF == "total" { print $4 }' "$out")
    echo "pubonly --count $n under strace -c: $calls system calls in total"
  done
else
  echo "(strace not installed: skipping the system-call count)"
fi

# Two buses federated through one nats-server, against a plain cnats pair.
if command -v nats-server >/dev/null; then
  echo "\$ bench/nats.sh $(dirname "$(dirname "$bench")")"
  "$(dirname "$0")/nats.sh" "$(dirname "$(dirname "$bench")")" | sed -n '/^== medians/,$p'
else
  echo "(nats-server not installed: skipping the federation benchmark)"
fi
