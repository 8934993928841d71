#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Remove test segments whose creating process is gone: a test killed with
# SIGKILL (a ctest timeout) cannot clean up after itself. Test segments are
# named shmbus-test.<pid>.<tag>.<n> (testutil.h tu_name()); the buses of
# tests that run a daemon are t<pid>x<n> (daemonutil.h du_prepare()), whose
# daemon keeps the topics live processes use when it stops, and whose lock
# file a killed daemon leaves. Runs as the cleanup fixture of every test.
# shmbus.BUS.*: SBD_SEG_PREFIX (daemon/segfile.h); shmbus-BUS.lock: the bus
# lock of sbd_config_parse() (daemon/config.c).
set -u
removed=0
for f in /dev/shm/shmbus-test.* /dev/shm/shmbus.t*x* /dev/shm/shmbus-t*x*.lock; do
  [ -e "$f" ] || continue
  case "$f" in
    /dev/shm/shmbus-test.*) pid=$(basename "$f" | cut -d. -f2) ;;
    *) pid=$(basename "$f" | sed -n 's/^shmbus[.-]t\([0-9][0-9]*\)x[0-9][0-9]*[.].*$/\1/p') ;;
  esac
  case "$pid" in ''|*[!0-9]*) continue ;; esac
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$f" && removed=$((removed + 1))
  fi
done
echo "removed $removed segment(s) left by dead test processes"
