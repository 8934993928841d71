#!/usr/bin/env bash
# libFuzzer on the control-message decoders (fuzz/fuzz_wire.c) for a bounded
# time: scripts/fuzz.sh [SECONDS] (default 20), from the repository root.
#  1. builds build-fuzz/fuzz_wire with clang (libFuzzer + ASan + UBSan) and
#     the seed generator, and (re)writes the seed corpus fuzz/corpus/wire/:
#     one valid message of each kind (the files are deterministic);
#  2. replays every kept crash input in fuzz/regressions/wire/: one that
#     still fails is a regression, and the run fails;
#  3. fuzzes for SECONDS. Anything found (crash, leak, timeout, oom) is
#     copied to fuzz/regressions/wire/, to be committed, and the run fails.
# New corpus entries go to build-fuzz/corpus-wire/, never into the repository.
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

out=build-fuzz
seeds=fuzz/corpus/wire
regs=fuzz/regressions/wire
srcs=(fuzz/fuzz_wire.c libshmbus/src/registry/wire.c libshmbus/src/util/error.c)
flags=(-g -O1 -D_GNU_SOURCE -std=c11 -I libshmbus/include -I libshmbus/src)
mkdir -p "$out/corpus-wire" "$out/artifacts" "$seeds" "$regs"

# UB must stop the run like any other crash, not just print.
clang "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  "${srcs[@]}" -o "$out/fuzz_wire"
clang "${flags[@]}" -DFUZZ_WIRE_SEEDS "${srcs[@]}" -o "$out/wire_seeds"
"$out/wire_seeds" "$seeds"

shopt -s nullglob
kept=("$regs"/*)
if ((${#kept[@]} > 0)); then
  echo "fuzz.sh: replaying ${#kept[@]} regression input(s) from $regs"
  if ! "$out/fuzz_wire" "${kept[@]}" >"$out/replay.log" 2>&1; then
    tail -n 40 "$out/replay.log" >&2
    echo "fuzz.sh: a kept regression input still fails (log: $out/replay.log)" >&2
    exit 1
  fi
fi

rm -f "$out"/artifacts/*
echo "fuzz.sh: fuzzing sb_wire_decode_req/sb_wire_decode_reply for ${secs}s"
# Bodies are at most 168 bytes; 1 KiB covers every length check.
rc=0
"$out/fuzz_wire" -max_total_time="$secs" -max_len=1024 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/" "$out/corpus-wire" "$seeds" >"$out/fuzz.log" 2>&1 || rc=$?
grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added))' \
  "$out/fuzz.log" || true

found=("$out"/artifacts/{crash,leak,timeout,oom}-*)
for f in "${found[@]}"; do
  cp "$f" "$regs/"
  echo "fuzz.sh: kept $regs/$(basename "$f"); commit it" >&2
done
if ((rc != 0 || ${#found[@]} > 0)); then
  tail -n 60 "$out/fuzz.log" >&2
  echo "fuzz.sh: the fuzzer found a failure (exit $rc; log: $out/fuzz.log)" >&2
  exit 1
fi
echo "fuzz.sh: no failure in ${secs}s"
