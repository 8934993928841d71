#!/usr/bin/env bash
# Remove test segments whose creating process is gone: a test killed with
# SIGKILL (a ctest timeout) cannot clean up after itself. Test segments are
# named shmbus-test.<pid>.<tag>.<n> (testutil.h tu_name()). Runs as the
# cleanup fixture of every test.
set -u
removed=0
for f in /dev/shm/shmbus-test.*; do
  [ -e "$f" ] || continue
  pid=$(basename "$f" | cut -d. -f2)
  case "$pid" in ''|*[!0-9]*) continue ;; esac
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$f" && removed=$((removed + 1))
  fi
done
echo "removed $removed segment(s) left by dead test processes"
