#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# An installed prefix as its consumers see it: `cmake --install` of the
# build into a temporary prefix; examples/pubsub.c built against that
# prefix only, through pkg-config (with the rpath the README gives) and
# through find_package(shmbus 0.3) in a ten-line CMake project, once with
# shmbus::shmbus and once with shmbus::shmbus_static; the exported targets
# free of source and build paths; then each binary, and the installed
# shmbus command, against the installed shmbusd: a subscriber of each gets
# what another publishes. Skipped (77) in sanitizer builds, whose library
# needs the sanitizer's runtime in every consumer. Every process started and
# every segment of the bus go on every exit path. A few seconds.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR SANITIZER
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
if [ -n "${3:-}" ]; then
  echo "test_install: skipped in a $3 sanitizer build"
  exit 77
fi
WAIT_TIMEOUT=20 # seconds for what a wait waits for
CLI_TIMEOUT=30  # seconds for one client's run
source "${BASH_SOURCE[0]%/*}/clitest.sh" # private_bus, stop, wait_*, bounded, ...
private_bus install
unset PKG_CONFIG_PATH CMAKE_PREFIX_PATH LD_LIBRARY_PATH # the prefix only
prefix=$dir/prefix
shmbusd=$prefix/sbin/shmbusd # start_daemon's
sub=""
cleanup() {
  [ -n "$sub" ] && stop "$sub"
  bus_cleanup
}
trap cleanup EXIT
fail() { fail_showing "$*" "$dir"/*.log "$dir"/*.out "$dir"/*.err; }

cmake --install "$build" --prefix "$prefix" >"$dir/install.log" || fail "cmake --install"
pc=$(find "$prefix" -name shmbus.pc)
[ -n "$pc" ] && [ -x "$shmbusd" ] && [ -x "$prefix/bin/shmbus" ] || fail "install layout"
[ -f "$prefix/include/shmbus/version.h" ] || fail "no shmbus/version.h"
# The Python package, when the build made it: in the prefix's
# lib/python3.X/dist-packages, where Debian's python3 X looks under
# /usr/local (lib/python3/dist-packages only under /usr), importable
# with the libshmbus installed beside it.
if ext=$(ls "$build"/python/shmbus/_shmbus.cpython-3*.so 2>/dev/null); then
  minor=${ext##*/_shmbus.cpython-3}
  minor=${minor%%-*}
  site=$prefix/lib/python3.$minor/dist-packages
  [ -f "$site/shmbus/__init__.py" ] || fail "the Python package is not in $site"
  PYTHONPATH=$site python3 -c 'import shmbus' 2>"$dir/py.err" || fail "import shmbus from the prefix"
fi
if grep -rlF -e "$src" -e "$build" "$prefix"/lib*/cmake "$pc"; then
  fail "installed package files name the source or build tree"
fi

# pkg-config, the README's line; the build was configured for another
# prefix, and the .pc file finds this one from its own place.
export PKG_CONFIG_PATH=${pc%/*}
# shellcheck disable=SC2046 # pkg-config's flags are words
cc -Wall -Wextra -Werror -o "$dir/pubsub_pc" "$src/examples/pubsub.c" \
  $(pkg-config --cflags --libs shmbus) -Wl,-rpath,"$(pkg-config --variable=libdir shmbus)" \
  2>"$dir/cc.err" || fail "pkg-config build"
[ "$(realpath "$(pkg-config --variable=libdir shmbus)")" = "$(realpath "${pc%/*/*}")" ] ||
  fail "pkg-config's libdir is not the installed one"
unset PKG_CONFIG_PATH

# find_package(shmbus 0.3): the shared and the static library.
mkdir "$dir/consumer"
cat >"$dir/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(consumer LANGUAGES C)
find_package(shmbus 0.3 REQUIRED)
add_executable(pubsub_shared $src/examples/pubsub.c)
target_link_libraries(pubsub_shared PRIVATE shmbus::shmbus)
add_executable(pubsub_static $src/examples/pubsub.c)
target_link_libraries(pubsub_static PRIVATE shmbus::shmbus_static)
target_compile_options(pubsub_static PRIVATE -Wall -Wextra -Werror)
CMAKE
cmake -S "$dir/consumer" -B "$dir/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$dir/cmake.log" 2>&1 || fail "consumer configure"
cmake --build "$dir/consumer/build" >>"$dir/cmake.log" 2>&1 || fail "consumer build"
if ldd "$dir/consumer/build/pubsub_static" | grep -q libshmbus; then
  fail "pubsub_static links libshmbus.so"
fi

"$prefix/bin/shmbus" --version >"$dir/version.out" 2>&1 || fail "installed shmbus --version"
start_daemon "installed shmbusd"
# round SUB PUB: SUB's subscriber gets what PUB (pubsub or shmbus) publishes.
round() {
  rm -f "$dir/sub.out" # not the last round's "subscribed"
  "$1" sub prices 1 </dev/null >"$dir/sub.out" 2>"$dir/sub.err" &
  sub=$!
  wait_until "$1 subscribed" grep -q '^subscribed to prices$' "$dir/sub.out"
  bounded "$2" pub prices "from $2" </dev/null >"$dir/pub.out" 2>"$dir/pub.err" ||
    fail "$2 pub: exit status $?"
  wait_exit "$sub" "$1 sub" || fail "$1 sub: exit status $?"
  sub=""
  grep -qF ": from $2" "$dir/sub.out" || fail "$1 did not get what $2 published"
}
b=$dir/consumer/build
round "$dir/pubsub_pc" "$b/pubsub_shared"
round "$b/pubsub_shared" "$b/pubsub_static"
round "$b/pubsub_static" "$dir/pubsub_pc"
round "$b/pubsub_static" "$prefix/bin/shmbus"
echo "test_install: ok"
