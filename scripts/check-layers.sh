#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Check the #include lines of the sources against the layering that
# docs/design.md's source map states, and name each include that breaks it:
#   libshmbus/include/shmbus/  includes only shmbus/ (and system headers)
#   libshmbus/src/util/        includes only util/ and shmbus/
#   libshmbus/src/shm/         includes only shm/, util/ and shmbus/
#   libshmbus/src/journal/     includes only journal/, util/ and shmbus/
#   libshmbus/src/ring/        includes only ring/, journal/, shm/, util/ and shmbus/
#   daemon/                    takes from libshmbus only shmbus/, registry/
#                              and util/; of a subsystem folder daemon/SUB/,
#                              files outside it include only SUB/SUB.h
#   tools/                     takes from libshmbus only shmbus/ and util/
#   tests/, fuzz/, bench/      anything
# A quoted include is libshmbus's when its first directory is one of
# libshmbus/include/ or libshmbus/src/ and the file is there.
# Usage: scripts/check-layers.sh [REPO]; exit 1 if an include breaks a rule.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

bad=0

# The libshmbus module of included path $1 (shmbus, util, ring, shm,
# journal, registry), or nothing if it is not libshmbus's.
lib_module() {
  local dir=${1%%/*}
  [ "$dir" != "$1" ] || return 0
  if [ -e "libshmbus/include/$1" ] || [ -e "libshmbus/src/$1" ]; then
    echo "$dir"
  fi
}

# Report file $1, line $2, include $3 as breaking rule $4.
report() {
  echo "$1:$2: includes \"$3\": $4"
  bad=1
}

# Check one include $3 (line $2) of file $1.
check_include() {
  local file=$1 line=$2 inc=$3 mod sub
  mod=$(lib_module "$inc")
  case "$file" in
    libshmbus/include/*)
      [ -z "$mod" ] || [ "$mod" = shmbus ] ||
        report "$file" "$line" "$inc" "the public header includes only shmbus/"
      ;;
    libshmbus/src/util/*)
      [ -z "$mod" ] || [ "$mod" = shmbus ] || [ "$mod" = util ] ||
        report "$file" "$line" "$inc" "util/ includes only util/ and shmbus/"
      ;;
    libshmbus/src/shm/*)
      case "$mod" in
        "" | shm | util | shmbus) ;;
        *) report "$file" "$line" "$inc" "shm/ includes only shm/, util/ and shmbus/" ;;
      esac
      ;;
    libshmbus/src/journal/*)
      case "$mod" in
        "" | journal | util | shmbus) ;;
        *) report "$file" "$line" "$inc" "journal/ includes only journal/, util/ and shmbus/" ;;
      esac
      ;;
    libshmbus/src/ring/*)
      case "$mod" in
        "" | ring | journal | shm | util | shmbus) ;;
        *) report "$file" "$line" "$inc" \
          "ring/ includes only ring/, journal/, shm/, util/ and shmbus/" ;;
      esac
      ;;
    daemon/*)
      case "$mod" in
        ring | shm)
          report "$file" "$line" "$inc" \
            "the daemon takes from libshmbus only shmbus/, registry/ and util/"
          return
          ;;
      esac
      [ -z "$mod" ] || return 0
      sub=${inc%%/*}
      # A header of subsystem daemon/SUB/ from outside it: only SUB/SUB.h.
      if [ "$sub" != "$inc" ] && [ -d "daemon/$sub" ] && [ "$inc" != "$sub/$sub.h" ] &&
        [[ "$file" != daemon/"$sub"/* ]]; then
        report "$file" "$line" "$inc" "outside daemon/$sub/ only $sub/$sub.h is included"
      fi
      ;;
    tools/*)
      case "$mod" in
        ring | shm | registry)
          report "$file" "$line" "$inc" "tools take from libshmbus only shmbus/ and util/"
          ;;
      esac
      ;;
  esac
}

while IFS= read -r file; do
  while IFS=: read -r line inc; do
    check_include "$file" "$line" "$inc"
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" |
    sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/' || true)
done < <(git ls-files 'libshmbus/*.[ch]' 'daemon/*.[ch]' 'tools/*.[ch]' 2>/dev/null ||
  find libshmbus daemon tools -name '*.[ch]')

exit "$bad"
