#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libFuzzer on the protocol decoders, the daemon's segment handling and the
# bridge for a bounded time: scripts/fuzz.sh [SECONDS] (default 20), from the
# repository root; or scripts/fuzz.sh --merge (make fuzz-merge). The targets are the
# table below, one line each; they share the time in turn, by weight:
#   wire     control-message decoders (registry/wire.c, and the NATS reply
#            body's in registry/monitor.c)
#   deadletter the dead-letter envelope's reader (registry/deadletter.c)
#   timefmt  the tool's time parser, RFC 3339 and integer ns (util/timefmt.h)
#   doctor   `shmbus doctor`'s parsers of host files: mounts, logind.conf,
#            the kernel release (tools/doctor.c)
#   resp     the bridge's RESP2 parser, encoders and glob
#   json     the bridge's JSON-lines parser and delivery encoder
#            (daemon/bridge/resp.c, json.c, libshmbus/src/util/glob.h)
#   metrics_http the metrics endpoint's HTTP request reader
#            (daemon/metrics/http.c)
#   fed      federation's parsers of NATS input: subject -> topic, decimal
#            header values, the Shmbus-* headers, the order per origin
#            (daemon/fed/meta.c)
#   fed_order the JetStream importer's order per origin (daemon/fed/order.c)
#   journal  the journal's reader, seeks, summary and recovery on arbitrary
#            segment and index files (libshmbus/src/journal/)
#   segment  the daemon (registry, reaper, stall timeouts, admin.c) against
#            segment words written between its scans (fuzz/fuzz_segment.c)
#   bridge   a live registry and bridge in process, driven by command
#            sequences over several connections (fuzz/fuzz_bridge.c)
#  1. builds build-fuzz/fuzz_NAME for each with clang (libFuzzer + ASan +
#     UBSan), and the wire seed generator, which writes build-fuzz/seeds-wire/:
#     one valid message of each kind, of the protocol as it is now;
#  2. replays every kept crash input in fuzz/regressions/NAME/: one that
#     still fails is a regression, and the run fails;
#  3. fuzzes each target for its share of SECONDS (at least 1 s), starting
#     from the corpus kept in the repository (fuzz/corpus/NAME/, read only),
#     the wire seeds, and what earlier runs found (build-fuzz/corpus-NAME/,
#     where new entries go). Anything found (crash, leak, timeout, oom) is
#     copied to fuzz/regressions/NAME/, to be committed, and the run fails
#     once every target has had its turn.
# --merge adds to fuzz/corpus/NAME/ the inputs of build-fuzz/corpus-NAME/
# (and the wire seeds) that reach coverage it lacks (libFuzzer's -merge=1;
# the inputs kept there stay); commit the result. Nothing else writes the
# repository's corpus.
# FUZZ_BUILD_DIR=dir builds and keeps corpora there instead of build-fuzz/.
set -euo pipefail

merge=0
secs=20
case "${1:-}" in
--merge) merge=1 ;;
'') ;;
*[!0-9]*)
  echo "usage: $0 [SECONDS] | $0 --merge" >&2
  exit 2
  ;;
*) secs=$1 ;;
esac
cd "$(dirname "$0")/.."
if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz.sh: clang not found (install the clang package, or run make fuzz)" >&2
  exit 1
fi

out=${FUZZ_BUILD_DIR:-build-fuzz}
lib=libshmbus/src
# The library's sources, as libshmbus/CMakeLists.txt lists them, and the
# daemon's but its main (shmbusd_core): the two live-daemon targets link both.
lib_srcs=$(sed -n '/^set(SHMBUS_SOURCES/,/)/s|^ *\(src/[^ )]*\.c\).*|libshmbus/\1|p' \
  libshmbus/CMakeLists.txt | tr '\n' ' ')
daemon_srcs=$(find daemon -maxdepth 2 -name '*.c' ! -name main.c | sort | tr '\n' ' ')
urcu="-lurcu-memb -lurcu-cds -lurcu-common -lpthread"
# The daemon's sources include federation's, which call cnats.
nats="-lnats"
# The targets: NAME | weight | -max_len | what it fuzzes | sources
# (fuzz/fuzz_NAME.c first) | libraries. A target's share of the time is
# its weight's: the stateful targets run tens of inputs a second where the
# parsers run tens of thousands, so they get more. Wire bodies are at most 344 bytes and a
# NATS topic 192: 1 KiB covers every length check and three topics. A federation input is a
# subject, a decimal or a few headers: 512 bytes pass every bound. RESP limits are 64/128 bytes in the target, so 1 KiB holds
# many commands; JSON lines get more room for escapes. A segment input is
# steps of at most 21 bytes: 2 KiB is about a hundred. A bridge input is a
# budget byte, a protocol byte and two bytes a command: 512 holds more than
# its 48 steps. A dead letter's header is at most 239 bytes: 1 KiB holds
# it and a payload. A time is under 64 bytes: 128 passes the length bound.
# A doctor input is a selector byte and a file's text: 2 KiB holds many mounts
# and logind.conf lines, and lines longer than their 512/1024-byte buffers.
# A journal input is two files of up to 64 KiB; 4 KiB holds dozens of
# records and a damaged index.
targets=(
  "wire|1|1024|sb_wire_decode_req/sb_wire_decode_reply/sb_monitor_nats_page|fuzz/fuzz_wire.c $lib_srcs|-lpthread"
  "deadletter|1|1024|shmbus_dead_letter_parse|fuzz/fuzz_deadletter.c $lib_srcs|-lpthread"
  "timefmt|1|128|sb_time_parse/sb_time_format|fuzz/fuzz_timefmt.c|"
  "doctor|1|2048|doctor_mounts_find/doctor_logind_removeipc/doctor_kernel_parse|fuzz/fuzz_doctor.c tools/doctor.c|"
  "resp|1|1024|sbb_resp_parse/sbb_resp_bulk/sb_glob_match|fuzz/fuzz_resp.c daemon/bridge/resp.c|"
  "json|1|2048|sbb_json_parse/sbb_json_delivery|fuzz/fuzz_json.c daemon/bridge/json.c daemon/bridge/resp.c|"
  "metrics_http|1|1024|sbm_http_parse|fuzz/fuzz_metrics_http.c daemon/metrics/http.c|"
  "fed|1|512|sbf_meta_topic/sbf_meta_u64/sbf_meta_decode/sbf_meta_order|fuzz/fuzz_fed.c daemon/fed/meta.c|"
  "fed_order|1|1024|sbf_order_judge/sbf_order_delivered|fuzz/fuzz_fed_order.c daemon/fed/order.c|"
  "journal|2|4096|the journal's reader, seeks, summary and recovery|fuzz/fuzz_journal.c $lib_srcs|-lpthread"
  "segment|2|2048|the reaper and admin.c on scribbled segments|fuzz/fuzz_segment.c $daemon_srcs $lib_srcs|$urcu $nats"
  "bridge|3|512|the bridge's commands, budgets and closes|fuzz/fuzz_bridge.c $daemon_srcs $lib_srcs|$urcu $nats"
)
# -I tests: fuzz_resp.c shares the glob reference matcher (tests/ref_glob.h);
# -I tools: fuzz_doctor.c the checks' header (tools/doctor.h).
# shmbus/version.h as CMake's configure_file makes it, from project(VERSION).
ver=$(sed -n 's/^project(shmbus VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
IFS=. read -r ver_major ver_minor ver_patch <<<"$ver"
mkdir -p "$out/include/shmbus"
sed -e "s/@PROJECT_VERSION_MAJOR@/$ver_major/" -e "s/@PROJECT_VERSION_MINOR@/$ver_minor/" \
  -e "s/@PROJECT_VERSION_PATCH@/$ver_patch/" -e "s/@PROJECT_VERSION@/$ver/" \
  libshmbus/include/shmbus/version.h.in >"$out/include/shmbus/version.h"
flags=(-g -O1 -D_GNU_SOURCE -std=c11 -I libshmbus/include -I "$out/include" -I libshmbus/src -I daemon
  -I tests -I tools)

names=()
declare -A srcs what max_len libs weight
weights=0
for row in "${targets[@]}"; do
  IFS='|' read -r n wt len w s l <<<"$row"
  names+=("$n")
  weight[$n]=$wt
  weights=$((weights + wt))
  max_len[$n]=$len
  what[$n]=$w
  srcs[$n]=$s
  libs[$n]=$l
done

# UB must stop the run like any other crash, not just print.
for n in "${names[@]}"; do
  mkdir -p "$out/corpus-$n" "$out/artifacts-$n" "fuzz/corpus/$n" "fuzz/regressions/$n"
  # shellcheck disable=SC2086 # the source and library lists split on purpose
  clang "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    ${srcs[$n]} ${libs[$n]} -o "$out/fuzz_$n"
done
# shellcheck disable=SC2086
clang "${flags[@]}" -DFUZZ_WIRE_SEEDS ${srcs[wire]} ${libs[wire]} -o "$out/wire_seeds"
mkdir -p "$out/seeds-wire"
"$out/wire_seeds" "$out/seeds-wire"
# The inputs each target starts from besides its own: the generated seeds.
declare -A seeds=([wire]="$out/seeds-wire")

shopt -s nullglob
if ((merge)); then
  for n in "${names[@]}"; do
    before=$(find "fuzz/corpus/$n" -type f | wc -l)
    # shellcheck disable=SC2086 # no seeds: no argument
    "$out/fuzz_$n" -merge=1 -max_len="${max_len[$n]}" "fuzz/corpus/$n" "$out/corpus-$n" \
      ${seeds[$n]:-} >"$out/merge-$n.log" 2>&1 ||
      {
        tail -n 20 "$out/merge-$n.log" >&2
        exit 1
      }
    echo "fuzz.sh: fuzz/corpus/$n: $before inputs, now $(find "fuzz/corpus/$n" -type f | wc -l)"
  done
  exit 0
fi

for n in "${names[@]}"; do
  kept=(fuzz/regressions/"$n"/*)
  ((${#kept[@]} > 0)) || continue
  echo "fuzz.sh: replaying ${#kept[@]} regression input(s) from fuzz/regressions/$n"
  if ! "$out/fuzz_$n" "${kept[@]}" >"$out/replay-$n.log" 2>&1; then
    tail -n 40 "$out/replay-$n.log" >&2
    echo "fuzz.sh: a kept regression input still fails (log: $out/replay-$n.log)" >&2
    exit 1
  fi
done

# The bridge's evict* seeds must still close a connection for holding the
# most memory (fuzz/fuzz_bridge.c checks it with FUZZ_BRIDGE_EXPECT_EVICTED):
# a seed that no longer reaches its path would keep no coverage of it.
echo "fuzz.sh: replaying the bridge's evict seeds, which must evict"
if ! FUZZ_BRIDGE_EXPECT_EVICTED=1 "$out/fuzz_bridge" fuzz/corpus/bridge/evict* \
  >"$out/expect-bridge.log" 2>&1; then
  tail -n 40 "$out/expect-bridge.log" >&2
  echo "fuzz.sh: an evict seed closed no connection (log: $out/expect-bridge.log)" >&2
  exit 1
fi

# Each target's share: the budget split by weight (rounded down), and
# never 0 (libFuzzer reads -max_total_time=0 as "no limit").
failed=()
for n in "${names[@]}"; do
  share=$((secs * weight[$n] / weights))
  ((share > 0)) || share=1
  rm -f "$out/artifacts-$n"/*
  echo "fuzz.sh: fuzzing ${what[$n]} for ${share}s"
  rc=0
  # shellcheck disable=SC2086 # no seeds: no argument
  "$out/fuzz_$n" -max_total_time="$share" -max_len="${max_len[$n]}" -print_final_stats=1 \
    -artifact_prefix="$out/artifacts-$n/" "$out/corpus-$n" "fuzz/corpus/$n" ${seeds[$n]:-} \
    >"$out/fuzz-$n.log" 2>&1 || rc=$?
  grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added))' \
    "$out/fuzz-$n.log" || true

  found=("$out/artifacts-$n"/{crash,leak,timeout,oom}-*)
  for f in "${found[@]}"; do
    cp "$f" "fuzz/regressions/$n/"
    echo "fuzz.sh: kept fuzz/regressions/$n/$(basename "$f"); commit it" >&2
  done
  if ((rc != 0 || ${#found[@]} > 0)); then
    tail -n 60 "$out/fuzz-$n.log" >&2
    echo "fuzz.sh: fuzz_$n found a failure (exit $rc; log: $out/fuzz-$n.log)" >&2
    failed+=("$n")
  fi
done
if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: no failure in ${secs}s"
