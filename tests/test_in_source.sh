#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cmake run in the source tree (`cmake -DSHMBUS_BUILD_...` typed in the
# checkout, no -B) must refuse before it generates anything: CMake's
# Makefile would replace the project's own. The top CMakeLists.txt is
# copied beside a stand-in Makefile into a temporary directory, which is
# configured in place: cmake fails naming the in-source build, and the
# Makefile is untouched. Well under a second.
# Usage: test_in_source.sh SOURCE_DIR
set -euo pipefail
src=$(realpath "$1")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
  echo "FAIL: $*" >&2
  sed 's/^/  cmake: /' "$dir/cmake.out" >&2
  exit 1
}

cp "$src/CMakeLists.txt" "$dir/"
echo "the project's Makefile" >"$dir/Makefile"
if (cd "$dir" && cmake -DSHMBUS_BUILD_DAEMON=OFF . >cmake.out 2>&1); then
  fail "cmake configured the source tree"
fi
grep -q 'no in-source build' "$dir/cmake.out" || fail "cmake did not name the in-source build"
[ "$(cat "$dir/Makefile")" = "the project's Makefile" ] || fail "the Makefile was overwritten"
echo "test_in_source: ok"
