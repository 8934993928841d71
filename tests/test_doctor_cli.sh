#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shmbus doctor` on this machine: six lines "LEVEL CHECK: found [-> fix]"
# in a fixed order, exit status 0 exactly when no line is FAIL; a runtime
# directory without a daemon is a WARN; a socket path too long for
# sockaddr_un is a FAIL with status 1; --json gives the same checks and
# levels as JSON lines; --help and usage errors.
# Usage: test_doctor_cli.sh SHMBUS
set -euo pipefail
shmbus=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export XDG_RUNTIME_DIR=$dir
unset SHMBUS_RUNTIME_DIR SHMBUS_BUS
mkdir -m 700 "$dir/shmbus" # the runtime directory, as shmbusd makes it

fail() { echo "FAIL: $*" >&2; exit 1; }

rc=0
timeout 20 "$shmbus" doctor >"$dir/out" || rc=$?
cat "$dir/out"
[ "$(wc -l <"$dir/out")" -eq 6 ] || fail "expected 6 lines"
checks=$(awk '{print $2}' "$dir/out" | paste -sd' ')
[ "$checks" = "kernel syscalls shm removeipc nofile rundir" ] || fail "checks: $checks"
grep -Evq '^(OK|WARN|FAIL) +[a-z]+ +[^ ]' "$dir/out" && fail "a line out of format"
if grep -q '^FAIL' "$dir/out"; then want=1; else want=0; fi
[ "$rc" -eq "$want" ] || fail "exit status $rc, want $want"
grep -q "^WARN rundir .*$dir/shmbus: owner [0-9]* mode 0700; no socket .* -> " "$dir/out" ||
  fail "a runtime directory without a daemon is not a WARN with a fix"

# --json: one object per line, the same checks and levels as the text.
"$shmbus" doctor --json >"$dir/json" || true
python3 - "$dir/json" "$dir/out" <<'PY' || fail "--json"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
text = [line.split()[:2] for line in open(sys.argv[2])]
assert [[r["level"], r["check"]] for r in rows] == text, (rows, text)
for r in rows:
    assert set(r) == {"check", "level", "found", "fix"}, r
    assert (r["fix"] == "") == (r["level"] == "OK"), r
PY

# A runtime directory whose socket path cannot fit in sockaddr_un.
long="$dir/$(printf 'd%.0s' $(seq 1 120))"
rc=0
SHMBUS_RUNTIME_DIR=$long timeout 20 "$shmbus" doctor >"$dir/out" || rc=$?
[ "$rc" -eq 1 ] || fail "too long a socket path: exit status $rc, want 1"
grep -q '^FAIL rundir ' "$dir/out" || fail "too long a socket path is not a FAIL"

"$shmbus" doctor --help | grep -q 'removeipc' || fail "--help"
"$shmbus" --help | grep -q '^  doctor ' || fail "doctor missing from shmbus --help"
rc=0
"$shmbus" doctor extra 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "an extra argument: exit status $rc, want 2"
rc=0
"$shmbus" --bus 'bad/name' doctor 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "a bad bus name: exit status $rc, want 2"
echo "test_doctor_cli: ok"
