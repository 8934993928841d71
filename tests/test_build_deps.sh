#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What each build asks of the machine, as the README promises it: the run
# preset (make run) configures with cmocka, hiredis and liburing absent,
# and the library alone (every SHMBUS_BUILD_* of a program off) with no
# pkg-config package at all (no liburcu, cnats, cmocka or hiredis). The
# absence is a pkg-config that refuses the packages named, given to cmake
# as PKG_CONFIG_EXECUTABLE; each configure must succeed. A few seconds.
# Usage: test_build_deps.sh SOURCE_DIR
set -euo pipefail
src=$(realpath "$1")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
  echo "FAIL: $*" >&2
  sed 's/^/  /' "$dir"/*.log >&2
  exit 1
}
real_pc=$(command -v pkg-config)

# configure NAME DENIED CMAKE_ARG...: configure the source into $dir/NAME
# with pkg-config refusing every package DENIED (a case pattern) matches.
configure() {
  local name=$1 denied=$2
  shift 2
  cat >"$dir/pc-$name" <<PC
#!/bin/sh
for a; do
  case \$a in -*) ;; $denied) echo "pkg-config: \$a refused" >&2; exit 1 ;; esac
done
exec "$real_pc" "\$@"
PC
  chmod +x "$dir/pc-$name"
  (cd "$src" && cmake "$@" -B "$dir/$name" -DPKG_CONFIG_EXECUTABLE="$dir/pc-$name") \
    >"$dir/$name.log" 2>&1 || fail "$name: configure asked for a package it must not need"
}

configure run '*cmocka*|*hiredis*|*liburing*' --preset run
configure library '*' -S "$src" -DSHMBUS_BUILD_DAEMON=OFF -DSHMBUS_BUILD_TOOLS=OFF \
  -DSHMBUS_BUILD_TESTS=OFF -DSHMBUS_BUILD_BENCH=OFF
echo "test_build_deps: ok"
