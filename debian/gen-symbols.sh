#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Writes debian/PACKAGE.symbols, the library package's dpkg symbols file,
# from the exported-symbol list tests/test_abi_symbols.sh checks
# (libshmbus/abi/libshmbus.symbols, name@@NODE), so that the list stays the
# one place symbols are named. PACKAGE follows the built library's soname
# (libshmbus.so.0.3: libshmbus0.3), and debian/control must have it: a new
# soname without a renamed package stops here. Each symbol's minimal version
# is its node's (SHMBUS_0.4: 0.4.0), but never older than the soname's first
# release: no package with this soname existed before it.
# The library must export exactly the list (tests/test_abi_symbols.sh),
# or this fails: dpkg-gensymbols does fail on a symbol exported but not
# listed, but drops without a word one listed and not exported whose
# minimal version is the package's own, as every one is in a soname's
# first release.
# Usage: debian/gen-symbols.sh LIST LIBRARY.so
set -eu
list=$1
lib=$2
"$(dirname "$0")/../tests/test_abi_symbols.sh" "$lib" "$list" >&2 || {
  echo "gen-symbols: $lib does not export what $list lists" >&2
  exit 1
}
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
base=${soname%%.so.*}
package=$base${soname#"$base".so.}
if ! grep -qx "Package: $package" debian/control; then
  echo "gen-symbols: soname $soname wants a package $package in debian/control" >&2
  exit 1
fi
first=${soname#"$base".so.}.0
{
  echo "$soname $package #MINVER#"
  echo "* Build-Depends-Package: libshmbus-dev"
  grep -v '^#' "$list" | awk -F '@@' -v first="$first" '
    function minver(node,  v, a, b) {
      v = node; sub(/^SHMBUS_/, "", v); v = v ".0"
      split(v, a, "."); split(first, b, ".")
      if (a[1] + 0 > b[1] + 0 || (a[1] == b[1] && a[2] + 0 > b[2] + 0))
        return v
      return first
    }
    { print " " $1 "@" $2 " " minver($2); nodes[$2] = 1 }
    END { for (n in nodes) print " " n "@" n " " minver(n) }' | LC_ALL=C sort
} > "debian/$package.symbols"
