#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Model-check a Promela model with spin: no error (assertion or invalid
# end state) as written, and at least one error with each given -D flag,
# which leaves out a protection the model must show is needed.
# Usage: model-check.sh model.pml FLAG...
#   docs/model/wakeup.pml NORELAY: a subscriber asleep forever without the relay;
#     PENDING_CLEAR_FIRST: the same with the wake-pending word cleared too early
#   docs/model/reap.pml NAME_FIRST NO_LEAVING: the daemon's take-backs underflow;
#     NO_RECHECK: two adopters win one kept slot; NO_GIVE_BACK_CAS: a
#     stale KEPT on a slot freed and taken meanwhile
#   docs/model/ack.pml SCAN_ENTRIES_FIRST DROP_HOLD_EARLY: a publisher
#     overwrites a message being taken; SEQ_AFTER_CAS FREE_SLOT_FIRST: a dead
#     member's take is lost; NO_GEN: a redelivery takes another message's
#     entry; NO_CURSOR_CHECK: a message both at the cursor and returned;
#     READ_RETURNED_IN_PLACE: a returned copy read while its cell is reused;
#     ACK_KEEPS_ALWAYS: an ack leaves its member two reservations
#   docs/model/join.pml NO_JOINS: a publisher overwrites the cell a reader
#     seated during its gate scan reads
#   docs/model/batch.pml END_AFTER_SEQ NO_CLAIM_END: a dead batch's seqs
#     after the one its record names are never ended; DAEMON_STORE
#     COUNT_ENDED: a seq the daemon ends in a stalled batch counted twice
set -euo pipefail
model=$(readlink -f "${1:?usage: model-check.sh model.pml FLAG...}")
shift
name=$(basename "$model")
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
grep -E 'states, stored' pan.out | sed "s/^/$name: /"
if [ "$errors" != 0 ]; then
  cat pan.out
  echo "$name: $errors error(s) in the protocol as written"
  exit 1
fi
for flag in "$@"; do
  errors=$(check "-D$flag")
  if [ "$errors" = 0 ]; then
    echo "$name -D$flag: no error found, but the model should fail without that protection"
    exit 1
  fi
  echo "$name -D$flag: spin finds the error the protection prevents"
done
echo "$name: 0 errors as written"
