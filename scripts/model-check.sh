#!/usr/bin/env bash
# Model-check docs/model/wakeup.pml with spin: no invalid end state (a
# subscriber asleep forever) with the relay, and one found without it.
set -euo pipefail
model=$(readlink -f "${1:?usage: model-check.sh model.pml}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

check() { # $1: extra -D flags; prints spin's error count
  spin -a $1 -DNSUB=3 -DNMSG=2 "$model" >/dev/null
  gcc -O2 -DCOLLAPSE -o pan pan.c
  ./pan -m200000 > pan.out 2>&1 || true
  grep -Eo 'errors: [0-9]+' pan.out | awk '{ print $2 }'
}

errors=$(check "")
grep -E 'states, stored' pan.out | sed 's/^/wakeup.pml: /'
if [ "$errors" != 0 ]; then
  cat pan.out
  echo "wakeup.pml: $errors error(s): a subscriber can sleep forever"
  exit 1
fi
errors=$(check "-DNORELAY")
if [ "$errors" = 0 ]; then
  echo "wakeup.pml -DNORELAY: no error found, but the model should fail without the relay"
  exit 1
fi
echo "wakeup.pml: 0 errors with the relay; without it spin finds the lost wake-up"
