#!/usr/bin/env bash
# libFuzzer on the protocol decoders and the bridge for a bounded time:
# scripts/fuzz.sh [SECONDS] (default 20), from the repository root. Four
# targets share the time, in turn:
#   wire    fuzz/fuzz_wire.c    control-message decoders (registry/wire.c)
#   resp    fuzz/fuzz_resp.c    the bridge's RESP2 parser, encoders and glob
#   json    fuzz/fuzz_json.c    the bridge's JSON-lines parser and delivery encoder
#                               (both daemon/bridge_proto.c)
#   bridge  fuzz/fuzz_bridge.c  a live registry and bridge in process, driven
#                               by command sequences over several connections
#  1. builds build-fuzz/fuzz_NAME for each with clang (libFuzzer + ASan +
#     UBSan), and the wire seed generator, which (re)writes fuzz/corpus/wire/:
#     one valid message of each kind (the files are deterministic); the seeds
#     of the others are the files kept in fuzz/corpus/NAME/;
#  2. replays every kept crash input in fuzz/regressions/NAME/: one that
#     still fails is a regression, and the run fails;
#  3. fuzzes each target for its share of SECONDS (at least 1 s). Anything
#     found (crash, leak, timeout, oom) is copied to fuzz/regressions/NAME/,
#     to be committed, and the run fails once every target has had its turn.
# New corpus entries go to build-fuzz/corpus-NAME/, never into the repository.
# FUZZ_BUILD_DIR=dir builds and keeps corpora there instead of build-fuzz/.
set -euo pipefail

secs=${1:-20}
case "$secs" in
'' | *[!0-9]*)
  echo "usage: $0 [SECONDS]" >&2
  exit 2
  ;;
esac
cd "$(dirname "$0")/.."
if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz.sh: clang not found (install the clang package, or run make fuzz)" >&2
  exit 1
fi

out=${FUZZ_BUILD_DIR:-build-fuzz}
names=(wire resp json bridge)
# The library's sources, as libshmbus/CMakeLists.txt lists them, and the
# daemon's but its main (shmbusd_core).
lib_srcs=$(sed -n '/^set(SHMBUS_SOURCES/,/)/s|^ *\(src/[^ )]*\.c\).*|libshmbus/\1|p' \
  libshmbus/CMakeLists.txt | tr '\n' ' ')
daemon_srcs=$(find daemon -maxdepth 1 -name '*.c' ! -name main.c | sort | tr '\n' ' ')
declare -A srcs=(
  [wire]="fuzz/fuzz_wire.c libshmbus/src/registry/wire.c libshmbus/src/util/error.c"
  [resp]="fuzz/fuzz_resp.c daemon/bridge_proto.c"
  [json]="fuzz/fuzz_json.c daemon/bridge_proto.c"
  [bridge]="fuzz/fuzz_bridge.c $daemon_srcs $lib_srcs"
)
declare -A libs=([bridge]="-lurcu-memb -lurcu-cds -lpthread")
declare -A what=(
  [wire]="sb_wire_decode_req/sb_wire_decode_reply"
  [resp]="sbb_resp_parse/sbb_resp_bulk/sbb_glob_match"
  [json]="sbb_json_parse/sbb_json_delivery"
  [bridge]="the bridge's commands, budgets and closes"
)
# Wire bodies are at most 168 bytes; 1 KiB covers every length check. RESP
# limits are 64/128 bytes in the target, so 1 KiB holds many commands; JSON
# lines get more room for escapes. A bridge input is a budget byte, a
# protocol byte and two bytes a command: 512 holds more than its 48 steps.
declare -A max_len=([wire]=1024 [resp]=1024 [json]=2048 [bridge]=512)
# -I tests: fuzz_resp.c shares the glob reference matcher (tests/ref_glob.h).
flags=(-g -O1 -D_GNU_SOURCE -std=c11 -I libshmbus/include -I libshmbus/src -I daemon -I tests)

# UB must stop the run like any other crash, not just print.
for n in "${names[@]}"; do
  mkdir -p "$out/corpus-$n" "$out/artifacts-$n" "fuzz/corpus/$n" "fuzz/regressions/$n"
  # shellcheck disable=SC2086 # the source lists split on purpose
  clang "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    ${srcs[$n]} ${libs[$n]:-} -o "$out/fuzz_$n"
done
# shellcheck disable=SC2086
clang "${flags[@]}" -DFUZZ_WIRE_SEEDS ${srcs[wire]} -o "$out/wire_seeds"
"$out/wire_seeds" fuzz/corpus/wire

shopt -s nullglob
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

# Each target's share: the budget split evenly, the remainder to the first
# ones, and never 0 (libFuzzer reads -max_total_time=0 as "no limit").
failed=()
for i in "${!names[@]}"; do
  n=${names[$i]}
  share=$((secs / ${#names[@]} + (i < secs % ${#names[@]} ? 1 : 0)))
  ((share > 0)) || share=1
  rm -f "$out/artifacts-$n"/*
  echo "fuzz.sh: fuzzing ${what[$n]} for ${share}s"
  rc=0
  "$out/fuzz_$n" -max_total_time="$share" -max_len="${max_len[$n]}" -print_final_stats=1 \
    -artifact_prefix="$out/artifacts-$n/" "$out/corpus-$n" "fuzz/corpus/$n" \
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
