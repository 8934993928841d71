#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# debian/gen-symbols.sh, which make deb runs, writes the library package's
# symbols file from the committed list, one line per listed symbol and
# version node, and stops when the built library exports a symbol the
# list lacks or lacks one it lists (dpkg-gensymbols lets the second pass
# in a soname's first release).
# Usage: test_deb_symbols.sh SOURCE_DIR LIBSHMBUS.SO
set -eu
src=$(realpath "$1")
lib=$(realpath "$2")
list=$src/libshmbus/abi/libshmbus.symbols
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/debian"
cp "$src/debian/control" "$tmp/debian/"
cd "$tmp"

"$src/debian/gen-symbols.sh" "$list" "$lib" 2>/dev/null
out=$(ls debian/*.symbols)
want=$(grep -vc '^#' "$list")
nodes=$(grep -v '^#' "$list" | sed 's/.*@@//' | sort -u | wc -l)
got=$(grep -c '^ ' "$out")
[ "$got" -eq $((want + nodes)) ] || {
  echo "FAIL: $out has $got symbol lines, not $want symbols and $nodes nodes"
  exit 1
}

grep -v '^#' "$list" | sed '1d' >"$tmp/fewer"
{ cat "$list" && echo "shmbus_not_exported@@SHMBUS_0.3"; } >"$tmp/more"
for bad in fewer more; do
  if "$src/debian/gen-symbols.sh" "$tmp/$bad" "$lib" 2>/dev/null; then
    echo "FAIL: gen-symbols.sh took a list with $bad symbols than the library exports"
    exit 1
  fi
done
echo "ok: $out, $want symbols in $nodes nodes; a list that disagrees stops it"
