#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The symbols libshmbus.so exports, each with its version node, against the
# committed list: fails naming every symbol added or removed.
# usage: test_abi_symbols.sh LIBSHMBUS.SO LIST
set -eu
lib=$1
list=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Defined symbols of the dynamic table, as name@@NODE; the node's own
# version definition (an absolute symbol named after it) is not a symbol.
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | LC_ALL=C sort >"$tmp/built"
grep -v '^#' "$list" | LC_ALL=C sort >"$tmp/want"
LC_ALL=C comm -13 "$tmp/want" "$tmp/built" >"$tmp/added"
LC_ALL=C comm -23 "$tmp/want" "$tmp/built" >"$tmp/removed"
if [ -s "$tmp/added" ] || [ -s "$tmp/removed" ]; then
  sed 's/^/added (not in the list): /' "$tmp/added"
  sed 's/^/removed (in the list, not exported): /' "$tmp/removed"
  echo "FAIL: $lib exports another set than $list (see the ABI section of docs/design.md)"
  exit 1
fi
echo "ok: $(wc -l <"$tmp/built") symbols as listed"
