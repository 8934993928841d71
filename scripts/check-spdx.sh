#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source file the repository tracks names its license (Apache-2.0,
# LICENSE) in an SPDX line within its first two lines: C, headers, spin
# models, the linker map, shell, Python, CMake and make files. Documents
# (*.md), JSON (no comments), fuzz inputs and the Debian files whose
# formats take no comments (debian/changelog, debian/source/format, and
# debian/copyright, which states the license itself) are not source. Usage:
# scripts/check-spdx.sh; exit 1 naming each file without the line.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
while IFS= read -r f; do
  case "$f" in
    fuzz/corpus/* | fuzz/regressions/* | *.md | *.json | LICENSE | NOTICE) continue ;;
    debian/changelog | debian/copyright | debian/source/format) continue ;;
  esac
  if ! head -n 2 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0'; then
    missing+=("$f")
  fi
done < <(git ls-files)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "files without an SPDX-License-Identifier: Apache-2.0 line in their first two lines:"
  printf '  %s\n' "${missing[@]}"
  exit 1
fi
echo "check-spdx: every source file names its license"
