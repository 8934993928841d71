#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The man pages (man/): each renders through groff and man(1) without a
# warning, and documents every long option that `shmbusd --help`,
# `shmbus --help` and each command's help define (so that an option added
# without its documentation fails here), and has a section per command of
# `shmbus --help` and none for another; libshmbus(3) names every function
# the library exports, and no other.
# Usage: test_man.sh SOURCE_DIR SHMBUSD SHMBUS
set -euo pipefail
src=$1
shmbusd=$2
shmbus=$3
source "${BASH_SOURCE[0]%/*}/helpopts.sh" # help_options, help_commands
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
done

# documented PAGE_TEXT WHAT NAME...: each NAME (an option or a function)
# stands in PAGE_TEXT as a word of its own.
documented() {
  local text=$1 what=$2 name
  shift 2
  for name in "$@"; do
    grep -qE -- "(^|[^a-z0-9_-])$name([^a-z0-9_-]|$)" "$text" || fail "$what: $name is not documented"
  done
}

render "$src"/man/shmbusd.8 >"$dir/shmbusd.txt"
mapfile -t opts < <("$shmbusd" --help | help_options)
[ "${#opts[@]}" -gt 40 ] || fail "shmbusd --help: only ${#opts[@]} options found"
documented "$dir/shmbusd.txt" "shmbusd(8)" "${opts[@]}"

render "$src"/man/shmbus.1 >"$dir/shmbus.txt"
mapfile -t opts < <("$shmbus" --help | help_options)
documented "$dir/shmbus.txt" "shmbus(1)" "${opts[@]}"
mapfile -t commands < <(help_commands "$shmbus")
[ "${#commands[@]}" -ge 7 ] || fail "shmbus --help: only ${#commands[@]} commands found"
for c in $(sed -n 's/^   shmbus \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p' "$dir/shmbus.txt"); do
  printf '%s\n' "${commands[@]}" | grep -qxF "$c" ||
    fail "shmbus(1): a section for '$c', which shmbus --help does not list"
done
for c in "${commands[@]}"; do
  grep -qE "^   shmbus $c( |$)" "$dir/shmbus.txt" || fail "shmbus(1): no section for '$c'"
  mapfile -t opts < <("$shmbus" help "$c" | help_options)
  [ "${#opts[@]}" -gt 0 ] || fail "shmbus help $c: no option found"
  documented "$dir/shmbus.txt" "shmbus(1), $c" "${opts[@]}"
done

# Every function the library exports (the ABI list, name@@NODE).
render "$src"/man/libshmbus.3 >"$dir/libshmbus.txt"
mapfile -t funcs < <(sed -n 's/^\(shmbus_[a-z0-9_]*\)@@.*/\1/p' "$src"/libshmbus/abi/libshmbus.symbols)
[ "${#funcs[@]}" -gt 50 ] || fail "libshmbus.symbols: only ${#funcs[@]} functions found"
documented "$dir/libshmbus.txt" "libshmbus(3)" "${funcs[@]}"
for f in $(grep -oE 'shmbus_[a-z0-9_]+\(' "$dir/libshmbus.txt" | tr -d '(' | sort -u); do
  printf '%s\n' "${funcs[@]}" | grep -qxF "$f" || fail "libshmbus(3): $f is not exported"
done
echo "test_man: ok"
