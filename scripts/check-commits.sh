#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every commit subject since the house rule took effect is at most 72
# characters (the why goes in the body). Commits before it (97d8863, the
# first of issue 12) are history and stay as they are. Merge commits count
# too. Usage: scripts/check-commits.sh [REV]; exit 1 naming each long one.
set -euo pipefail
cd "$(dirname "$0")/.."
base=97d8863
head=${1:-HEAD}

if git cat-file -e "$base^{commit}" 2>/dev/null; then
  range=("$base~1..$head")
else
  echo "check-commits: $base is not in this clone (shallow?): checking $head alone"
  range=(-1 "$head")
fi
long=$(git log --format='%h %s' "${range[@]}" | awk 'length($0) - index($0, " ") > 72')
if [ -n "$long" ]; then
  echo "commit subjects over 72 characters:"
  echo "$long"
  exit 1
fi
