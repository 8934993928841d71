#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# dist/systemd/shmbusd.service passes `systemd-analyze verify` without a
# word (an unknown or misspelt directive is only warned about, so any
# output fails), with ExecStart= pointing at the built shmbusd, and keeps
# the settings the daemon relies on. Exit 77 (skipped) without
# systemd-analyze (Debian package systemd).
# Usage: test_unit.sh SOURCE_DIR SHMBUSD
set -euo pipefail
src=${1:?usage: test_unit.sh SOURCE_DIR SHMBUSD}
daemon=$(realpath "${2:?usage: test_unit.sh SOURCE_DIR SHMBUSD}")
unit="$src/dist/systemd/shmbusd.service"

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: no systemd-analyze (apt-get install systemd)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -q '^ExecStart=/usr/sbin/shmbusd ' "$unit"
sed "s|^ExecStart=/usr/sbin/shmbusd |ExecStart=$daemon |" "$unit" >"$tmp/shmbusd.service"
rc=0
out=$(systemd-analyze verify --man=no "$tmp/shmbusd.service" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
  echo "systemd-analyze verify (exit $rc): $out"
  exit 1
fi
# What the daemon relies on: readiness by notify, the runtime directory
# in the mode rundir.c gives one under --group (so it is not warned
# about) kept across a restart for containers that mount it, and
# segments kept across a restart.
for want in Type=notify 'ExecStart=/usr/sbin/shmbusd --foreground --group shmbus' \
  RuntimeDirectory=shmbus RuntimeDirectoryMode=0710 RuntimeDirectoryPreserve=yes RemoveIPC=no; do
  if ! grep -qx "$want" "$unit"; then
    echo "shmbusd.service lacks the line $want"
    exit 1
  fi
done
grep -q 'return c->have_group ? 0710 : 0700;' "$src/daemon/rundir.c" || {
  echo "daemon/rundir.c no longer makes --group's directory 0710: update RuntimeDirectoryMode"
  exit 1
}
echo "shmbusd.service: verified"
