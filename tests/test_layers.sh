#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The include rules of docs/design.md's source map (scripts/check-layers.sh):
# the tree keeps them, and the check names every kind of break planted in
# a scratch tree, and nothing that keeps them.
# Usage: test_layers.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: test_layers.sh SOURCE_DIR}
check="$src/scripts/check-layers.sh"

"$check" "$src"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
mkdir -p libshmbus/include/shmbus libshmbus/src/{ring,shm,registry,util,journal} daemon/bridge tools
touch libshmbus/include/shmbus/shmbus.h libshmbus/src/ring/ring.h libshmbus/src/shm/layout.h \
  libshmbus/src/journal/file.h \
  libshmbus/src/registry/client.h libshmbus/src/registry/relay.h libshmbus/src/util/vec.h \
  daemon/log.h daemon/bridge/bridge.h daemon/bridge/state.h
# file|include|breaks a rule (1) or keeps them (0)
cases=(
  "libshmbus/include/shmbus/monitor.h|util/vec.h|1"
  "libshmbus/include/shmbus/monitor.h|shmbus/shmbus.h|0"
  "libshmbus/src/util/grow.c|ring/ring.h|1"
  "libshmbus/src/ring/pub.c|registry/client.h|1"
  "libshmbus/src/shm/segment.c|registry/client.h|1"
  "libshmbus/src/shm/segment.c|ring/ring.h|1"
  "libshmbus/src/shm/segment.c|util/vec.h|0"
  "libshmbus/src/shm/segment.c|shmbus/shmbus.h|0"
  "libshmbus/src/ring/sub.c|shm/layout.h|0"
  "libshmbus/src/ring/sub.c|util/vec.h|0"
  "libshmbus/src/ring/sub.c|registry/relay.h|1"
  "libshmbus/src/ring/sub.c|journal/file.h|0"
  "libshmbus/src/journal/reader.c|journal/file.h|0"
  "libshmbus/src/journal/reader.c|util/vec.h|0"
  "libshmbus/src/journal/reader.c|shmbus/shmbus.h|0"
  "libshmbus/src/journal/reader.c|ring/ring.h|1"
  "libshmbus/src/journal/reader.c|shm/layout.h|1"
  "libshmbus/src/journal/reader.c|registry/client.h|1"
  "libshmbus/src/util/grow.c|journal/file.h|1"
  "libshmbus/src/shm/segment.c|journal/file.h|1"
  "daemon/reaper.c|ring/ring.h|1"
  "daemon/adopt.c|shm/layout.h|1"
  "daemon/control.c|bridge/state.h|1"
  "daemon/main.c|bridge/bridge.h|0"
  "daemon/bridge/pump.c|registry/relay.h|0"
  "daemon/bridge/pump.c|log.h|0"
  "tools/cmd_stat.c|registry/client.h|1"
  "tools/cmd_stat.c|util/vec.h|0"
)
for c in "${cases[@]}"; do
  IFS='|' read -r file inc _ <<<"$c"
  printf '#include "%s"\n' "$inc" >>"$file"
done
out=$("$check" "$tmp" || true)
fail=0
for c in "${cases[@]}"; do
  IFS='|' read -r file inc bad <<<"$c"
  if grep -q "^$file:[0-9]*: includes \"$inc\"" <<<"$out"; then
    reported=1
  else
    reported=0
  fi
  if [ "$reported" != "$bad" ]; then
    echo "FAIL: $file including $inc: reported $reported, expected $bad" >&2
    fail=1
  fi
done
if "$check" "$tmp" >/dev/null; then
  echo "FAIL: the check exits 0 on a tree that breaks the rules" >&2
  fail=1
fi
[ "$fail" = 0 ] || { printf '%s\n' "$out" >&2; exit 1; }
echo "layers: ok (${#cases[@]} planted includes judged)"
