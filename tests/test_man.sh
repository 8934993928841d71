#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The man pages (man/): each renders through groff and man(1) without a
# warning or a hyphenated word, and a build of the library alone installs
# only libshmbus(3). Each long option that `shmbusd --help`, `shmbus
# --help` and each command's help define has an entry of its own (a
# tagged paragraph) in the page, and in shmbus(1) in its command's
# section (so that an option added without its documentation fails
# here); each entry, section and function the pages describe exists (so
# that documentation of what the programs do not have fails too); each
# environment variable the code reads is named in the page of the
# program that reads it.
# Usage: test_man.sh SOURCE_DIR SHMBUSD SHMBUS
set -euo pipefail
src=$1
shmbusd=$2
shmbus=$3
source "${BASH_SOURCE[0]%/*}/helpopts.sh" # help_options, help_commands, command_options
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# render PAGE: PAGE as plain text, wide and unhyphenated, so that every
# option stands whole on one line.
render() {
  groff -man -Tascii -P-cbou -rLL=250n -rHY=0 "$1"
}

for page in "$src"/man/shmbus.1 "$src"/man/shmbusd.8 "$src"/man/libshmbus.3; do
  out=$(groff -man -ww -z "$page" 2>&1) || fail "groff failed on ${page##*/}: $out"
  [ -z "$out" ] || fail "groff warns on ${page##*/}: $out"
  out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) ||
    fail "man -l failed on ${page##*/}: $out"
  [ -z "$out" ] || fail "man -l warns on ${page##*/}: $out"
  # No word hyphenated at a line's end (U+2010, as man renders it in UTF-8).
  out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null | grep -E -- $'\u2010$' || true)
  [ -z "$out" ] || fail "man -l hyphenates in ${page##*/}: $out"
done

# entries TEXT...: the long options that head a tagged paragraph (.TP) of
# the rendered TEXTs, sorted, one a line: the first word of a tag line
# (indented 7), and those a tag lists after it (", --nats-cert FILE").
entries() {
  grep -hE -- '^       --' "$@" | grep -oE -- '^       --[a-z0-9-]*[a-z0-9]|, --[a-z0-9-]*[a-z0-9]' |
    sed 's/^[ ,]*//' | sort -u
}
# same WHAT HELP_OPTIONS ENTRIES: the two sorted lists are equal, or the
# test fails naming the difference.
same() {
  local missing invented
  missing=$(comm -23 "$2" "$3" | paste -sd' ')
  invented=$(comm -13 "$2" "$3" | paste -sd' ')
  [ -z "$missing" ] || fail "$1: no entry for $missing"
  [ -z "$invented" ] || fail "$1: entries for what the program does not have: $invented"
}
# environment PAGE_TEXT WHAT FILE...: each variable FILEs getenv() stands
# in PAGE_TEXT's ENVIRONMENT section (the fault-injection hook of the
# tests aside). No `| grep -q` (here or below): grep exits at the first
# match, and with pipefail the writer's SIGPIPE would fail the test.
environment() {
  local text=$1 what=$2 v env
  shift 2
  env=$(sed -n '/^ENVIRONMENT/,/^[A-Z]/p' "$text")
  for v in $(grep -hoE 'getenv\("[A-Z_]+"\)' "$@" | sed 's/.*("\(.*\)")/\1/' | sort -u); do
    [ "$v" = SHMBUS_FAULT ] && continue
    grep -qE "^       ($v|.*, $v)([ ,]|\$)" <<<"$env" ||
      fail "$what: environment variable $v is not in ENVIRONMENT"
  done
}

# shmbusd(8): its options, and the variables the daemon reads, its own
# and those of the bus and socket it resolves as clients do.
render "$src"/man/shmbusd.8 >"$dir/shmbusd.txt"
"$shmbusd" --help | help_options >"$dir/shmbusd.opts"
[ "$(wc -l <"$dir/shmbusd.opts")" -gt 40 ] || fail "shmbusd --help: too few options found"
entries "$dir/shmbusd.txt" >"$dir/shmbusd.entries"
same "shmbusd(8)" "$dir/shmbusd.opts" "$dir/shmbusd.entries"
environment "$dir/shmbusd.txt" "shmbusd(8)" "$src"/daemon/*.c "$src"/daemon/*/*.c \
  "$src"/libshmbus/src/registry/client.c

# shmbus(1), cut into its sections: sec.NAME for each section (SH),
# cmd.C for the section of command C ("shmbus C ..." at its top).
render "$src"/man/shmbus.1 >"$dir/shmbus.txt"
awk -v d="$dir" '
  /^[A-Z]/ { f = d "/sec." $1 }
  /^   shmbus [a-z]+( |$)/ { f = d "/cmd." $2 }
  { print > f }' "$dir/shmbus.txt"
"$shmbus" --help | help_options >"$dir/global.opts"
entries "$dir/sec.GLOBAL" >"$dir/global.entries"
same "shmbus(1), GLOBAL OPTIONS" "$dir/global.opts" "$dir/global.entries"
help_commands "$shmbus" >"$dir/commands"
mapfile -t commands <"$dir/commands"
[ "${#commands[@]}" -ge 7 ] || fail "shmbus --help: only ${#commands[@]} commands found"
for f in "$dir"/cmd.*; do
  c=${f##*/cmd.}
  grep -qxF -- "$c" "$dir/commands" ||
    fail "shmbus(1): a section for '$c', which shmbus --help does not list"
done
entries "$dir/sec.TOPIC" >"$dir/topic.entries"
for c in "${commands[@]}"; do
  [ -f "$dir/cmd.$c" ] || fail "shmbus(1): no section for '$c'"
  command_options "$shmbus" "$c" >"$dir/$c.opts" || fail "shmbus $c --help failed"
  # --bus (every command's) has its entry in GLOBAL OPTIONS, and the
  # options of a topic's creation theirs in TOPIC OPTIONS.
  { entries "$dir/cmd.$c"; grep -xF -- --bus "$dir/$c.opts" || true
    comm -12 "$dir/$c.opts" "$dir/topic.entries"; } | sort -u >"$dir/$c.entries"
  same "shmbus(1), $c" "$dir/$c.opts" "$dir/$c.entries"
done
environment "$dir/shmbus.txt" "shmbus(1)" "$src"/tools/*.c "$src"/libshmbus/src/*/*.c

# libshmbus(3): every function the library exports (the ABI list,
# name@@NODE), and no other; and the variables the library reads.
render "$src"/man/libshmbus.3 >"$dir/libshmbus.txt"
sed -n 's/^\(shmbus_[a-z0-9_]*\)@@.*/\1/p' "$src"/libshmbus/abi/libshmbus.symbols |
  sort -u >"$dir/abi.funcs"
[ "$(wc -l <"$dir/abi.funcs")" -gt 50 ] || fail "libshmbus.symbols: too few functions found"
grep -oE 'shmbus_[a-z0-9_]+\(' "$dir/libshmbus.txt" | tr -d '(' | sort -u >"$dir/page.funcs"
same "libshmbus(3)" "$dir/abi.funcs" "$dir/page.funcs"
environment "$dir/libshmbus.txt" "libshmbus(3)" "$src"/libshmbus/src/*/*.c
# A build of the library alone (configured only) installs libshmbus(3)
# and neither page nor completion of the programs it does not build.
cmake -S "$src" -B "$dir/lib" -DSHMBUS_BUILD_DAEMON=OFF -DSHMBUS_BUILD_TOOLS=OFF \
  -DSHMBUS_BUILD_TESTS=OFF -DSHMBUS_BUILD_BENCH=OFF -DSHMBUS_BUILD_PYTHON=OFF \
  >"$dir/lib.log" 2>&1 || fail "library-only configure: $(tail -5 "$dir/lib.log")"
cmake -DCMAKE_INSTALL_PREFIX="$dir/prefix" -P "$dir/lib/man/cmake_install.cmake" >/dev/null
got=$(cd "$dir/prefix" && find . -type f | sort | paste -sd' ')
[ "$got" = "./share/man/man3/libshmbus.3" ] || fail "library-only install of man/: $got"
echo "test_man: ok"
