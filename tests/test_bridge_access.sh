#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Who gets into the TCP bridge, against real clients: redis-cli as root
# (the daemon's uid) and as the user daemon (runuser), raw sockets
# (python3), and nobody: the overflow uid, refused whatever the rule.
# Private daemons on free ports and a private bus; every background
# process and segment is removed on any exit.
# Usage: test_bridge_access.sh SHMBUSD SHMBUS
set -euo pipefail
shmbusd=$1
shmbus=$2
command -v redis-cli >/dev/null || { echo "redis-cli not installed: skipped"; exit 77; }
command -v runuser >/dev/null || { echo "runuser not installed: skipped"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "not root (runuser needs it): skipped"; exit 77; }
bus="bra$$"
# shellcheck source=tests/bridge_sh.sh
. "${BASH_SOURCE[0]%/*}/bridge_sh.sh" # bg: background redis-cli processes
chmod 755 "$dir"

# log_lines PATTERN N: the number of log lines matching PATTERN, once it
# reaches N or after 5 s (the daemon's logging thread writes a line some
# time after the event).
log_lines() {
  local n=0
  for _ in $(seq 100); do
    n=$(grep -c "$1" "$dir/log" || true)
    [ "$n" -ge "$2" ] && break
    sleep 0.05
  done
  echo "$n"
}

# bstat FIELD: a total of the bridge's (shmbus stat).
bstat() {
  "$shmbus" --bus "$bus" stat --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["bridge"][sys.argv[1]])' "$1"
}

# bstat_wait FIELD N: the total FIELD, once it reaches N or after 10 s
# (each stat samples for half a second).
bstat_wait() {
  local n=0
  for _ in $(seq 20); do
    n=$(bstat "$1")
    [ "$n" -ge "$2" ] && break
  done
  echo "$n"
}

# drip DATA [MS]: send DATA (with \r \n escapes) to 127.0.0.1:$port one
# byte every MS ms (default 100),
# and print what comes back, then <EOF> if the bridge closed the
# connection before the last byte, else <OPEN>.
drip() {
  python3 - "$port" "$1" "${2:-100}" <<'PY'
import select, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
step = int(sys.argv[3]) / 1000
out, end = b"", b"<OPEN>"
for ch in sys.argv[2].encode().decode("unicode_escape").encode("latin-1"):
    try:
        s.send(bytes([ch]))
    except (BrokenPipeError, ConnectionResetError):
        end = b"<EOF>"
        break
    t = time.monotonic() + step
    while end == b"<OPEN>" and time.monotonic() < t:
        if select.select([s], [], [], max(0, t - time.monotonic()))[0]:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                b = b""
            if not b:
                end = b"<EOF>"
            out += b
    if end != b"<OPEN>":
        break
sys.stdout.write((out + end).decode("latin-1"))
PY
}

nl=$'\n'
# Another uid than the daemon's (root), and not the overflow uid (nobody).
other=daemon
ouid=$(id -u "$other" 2>/dev/null) || { echo "no user $other: skipped"; exit 77; }
nopermit="may not use this bus: allow it with shmbusd --allow-uid or --allow-gid"

# Without a token, on every address: the daemon's uid (root) is served,
# another uid is refused with a reason, in RESP and in JSON, and runs
# nothing.
start_daemon 0.0.0.0
redis-cli -p "$port" subscribe orders >"$dir/sub.out" &
bg+=($!)
wait_for "$dir/sub.out" "subscribe${nl}orders${nl}1"
out=$(runuser -u "$other" -- redis-cli -p "$port" publish orders from-other 2>&1 || true)
[[ "$out" == "NOPERM uid $ouid $nopermit"* ]] || fail "$other's publish: $out"
out=$(as_other=1 raw 127.0.0.1 'PUBLISH orders raw-other\r\n')
[[ "$out" == "-NOPERM uid $ouid $nopermit"*$'\r\n<EOF>' ]] || fail "$other's raw RESP: $out"
out=$(as_other=1 raw 127.0.0.1 '{"command":"PUB","topic":"orders","payload":"json-other"}\n')
[[ "$out" == '{"ok":false,"error":"uid '"$ouid $nopermit"*$'"}\n<EOF>' ]] ||
  fail "$other's JSON: $out"
[ "$(redis-cli -p "$port" publish orders from-root)" = 1 ] || fail "root's publish"
wait_for "$dir/sub.out" "message${nl}orders${nl}from-root"
grep -q -- -other "$dir/sub.out" && fail "a refused publish was delivered: $(cat "$dir/sub.out")"
[ "$(log_lines "refused: uid $ouid " 3)" = 3 ] || fail "not one log line per refusal"
# Each refused peer counts once in `refused` and never in `accepted`:
# one that hangs up without a word, one that sends a command.
accepted=$(bstat accepted)
refused=$(bstat refused)
as_other=1 raw 127.0.0.1 '' 0.01 >/dev/null
as_other=1 raw 127.0.0.1 'PING\r\n' >/dev/null
[ "$(bstat_wait refused $((refused + 2)))" = $((refused + 2)) ] || fail "refused: $(bstat refused)"
[ "$(bstat accepted)" = "$accepted" ] || fail "refused peers counted as accepted"
# A burst of refused peers (a port scan): at most 10 lines a second, the
# rest told in a count, and every one of them is in a line or a count.
runuser -u "$other" -- python3 -c '
import socket, sys
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(40)]
for s in conns:
    s.close()' "$port"
[ "$(bstat_wait refused $((refused + 42)))" = $((refused + 42)) ] || fail "burst: $(bstat refused)"
# (A count is logged when its second is over, at the next tick.)
for _ in $(seq 100); do
  logged=$(grep -c ' refused: ' "$dir/log")
  told=$(awk 'match($0, /bridge: [0-9]+ more refused connections in/) {
    n += substr($0, RSTART + 8) + 0 } END { print n + 0 }' "$dir/log")
  [ "$((logged + told))" = 45 ] && break
  sleep 0.05
done
[ "$((logged + told))" = 45 ] || fail "refusals: $logged logged + $told counted, not 45"
[ "$told" -gt 0 ] || fail "no refusal left out of the log"
[ "$logged" -le 25 ] || fail "$logged refusals logged one by one"
# HTTP never reaches the parsers: a request line or a header line as the
# first command closes the connection, even with a command in the same
# read, and "POST" or a header later on too (as Redis's
# securityWarningCommand). Nothing is replied, nothing runs.
post='POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 21\r\n\r\nPUBLISH orders evil\r\n'
[ "$(raw 127.0.0.1 "$post")" = "<EOF>" ] || fail "an HTTP POST was not closed at once"
[ "$(raw 127.0.0.1 'Host: x\r\nPUBLISH orders evil2\r\n')" = "<EOF>" ] || fail "a Host: line"
[ "$(raw 127.0.0.1 'GET / HTTP/1.1\r\n\r\n')" = "<EOF>" ] || fail "an HTTP GET"
out=$(raw 127.0.0.1 'PING\r\nPOST / HTTP/1.1\r\nPUBLISH orders evil3\r\n')
[ "$out" = $'+PONG\r\n<EOF>' ] || fail "a later POST: $out"
# A later GET (or another method) is a Redis command or a mistake, not a
# browser: it gets an error reply and the connection stays, as in Redis.
out=$(raw 127.0.0.1 'PING\r\nGET foo\r\nPING\r\n' 1)
[[ "$out" == $'+PONG\r\n-ERR unknown command \'GET\''*$'\r\n+PONG\r\n<OPEN>' ]] ||
  fail "a later GET: $out"
out=$(redis-cli -p "$port" get foo 2>&1 || true)
[[ "$out" == "ERR unknown command 'get'"* ]] || fail "redis-cli get: $out"
[ "$(redis-cli -p "$port" publish orders after-http)" = 1 ] || fail "publish after HTTP"
wait_for "$dir/sub.out" "message${nl}orders${nl}after-http"
grep -q evil "$dir/sub.out" && fail "HTTP published: $(cat "$dir/sub.out")"
# A later POST in a RESP array: the log names it and says the commands
# before it ran.
# shellcheck disable=SC2016 # RESP's $ lengths, not expansions
out=$(raw 127.0.0.1 '*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nPOST\r\n$1\r\n/\r\n')
[ "$out" = $'+PONG\r\n<EOF>' ] || fail "a later POST in an array: $out"
[ "$(log_lines 'sent HTTP' 5)" = 5 ] || fail "not one log line per HTTP request"
[ "$(grep -c 'sent HTTP ("POST") after commands that ran.*closed, nothing from it on ran' \
  "$dir/log")" = 2 ] || fail "the log of a later POST: $(grep 'sent HTTP' "$dir/log")"
[ "$(grep -c 'sent HTTP ("GET / HTTP/1.1") first.*closed, nothing it sent ran' "$dir/log")" = 1 ] ||
  fail "the log of a GET: $(grep 'sent HTTP' "$dir/log")"
# A connection from another host (this host's own non-loopback address
# stands in for one) needs the token, which this daemon has none of.
ext=$(ip -4 -o addr show scope global 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}')
if [ -n "$ext" ]; then
  out=$(raw "$ext" 'PING\r\n')
  [[ "$out" == "-NOPERM connections from other hosts need the bridge token"*"<EOF>" ]] ||
    fail "a remote peer: $out"
else
  echo "no non-loopback address: the remote peer case is not run"
fi
stop_daemon

# Timeouts under 100 ms are refused with a reason: the deadlines are
# checked every quarter of the shorter one, walking every connection.
for opt in --bridge-cmd-timeout --bridge-auth-timeout; do
  if out=$(timeout 5 "$shmbusd" --bus "$bus" --foreground --bridge 127.0.0.1:0 "$opt" 99 2>&1); then
    fail "$opt 99 accepted"
  fi
  [[ "$out" == *"$opt 99: at least 100 ms"* ]] || fail "$opt 99: $out"
done

# A command not complete 1000 ms after its first byte closes the
# connection, however steadily its bytes drip in (a slow-loris client);
# a subscriber idle for longer, with no command begun, stays.
start_daemon 127.0.0.1 --bridge-cmd-timeout 1000
redis-cli -p "$port" subscribe orders >"$dir/idle.out" &
bg+=($!)
wait_for "$dir/idle.out" "subscribe${nl}orders${nl}1"
out=$(drip "PUBLISH orders slow-loris-$(printf '%050d' 0)")
[[ "$out" == $'-ERR command not complete within 1000 ms (--bridge-cmd-timeout)\r\n<EOF>' ]] ||
  fail "a dripped command: $out"
out=$(drip '{"command":"PUB","topic":"orders","payload":"slow-loris-json-------------------"}')
[[ "$out" == '{"ok":false,"error":"command not complete in time (--bridge-cmd-timeout)"}'$'\n<EOF>' ]] ||
  fail "a dripped JSON line: $out"
# Commands that each take about 120 ms, for longer than the timeout.
p4='PING\r\nPING\r\nPING\r\nPING\r\n'
out=$(drip "$p4$p4$p4" 20)
pong=$'+PONG\r\n'
[ "$out" = "$pong$pong$pong$pong$pong$pong$pong$pong$pong$pong$pong$pong<OPEN>" ] ||
  fail "quick commands: $out"
[ "$(redis-cli -p "$port" publish orders still-here)" = 1 ] || fail "the idle subscriber left"
wait_for "$dir/idle.out" "message${nl}orders${nl}still-here"
grep -q slow-loris "$dir/idle.out" && fail "a dripped command ran"
[ "$(log_lines 'not complete after 1000 ms' 2)" = 2 ] || fail "not one log line per timeout"
stop_daemon

# With a token, everyone must AUTH, root included, and the third wrong
# token closes the connection (nothing after it runs), in both protocols.
printf '%s\n' "$token" >"$dir/token"
start_daemon 127.0.0.1 --bridge-token-file "$dir/token"
wrongpass=$'-WRONGPASS invalid username-password pair or user is disabled.\r\n'
out=$(raw 127.0.0.1 'PING\r\nAUTH a\r\nAUTH default b\r\nHELLO 2 AUTH default c\r\nAUTH '"$token"'\r\n')
[ "$out" = $'-NOAUTH Authentication required.\r\n'"$wrongpass$wrongpass$wrongpass<EOF>" ] ||
  fail "three wrong tokens in RESP: $out"
j='{"command":"AUTH","token":"x"}\n'
out=$(raw 127.0.0.1 "$j$j$j"'{"command":"AUTH","token":"'"$token"'"}\n')
jwrong='{"ok":false,"command":"AUTH","error":"invalid token"}'$'\n'
[ "$out" = "$jwrong$jwrong$jwrong<EOF>" ] || fail "three wrong tokens in JSON: $out"
out=$(raw 127.0.0.1 'AUTH a\r\nAUTH b\r\nAUTH '"$token"'\r\nPING\r\n' 1)
[ "$out" = "$wrongpass$wrongpass"$'+OK\r\n+PONG\r\n<OPEN>' ] || fail "two wrong tokens: $out"
[ "$(as_other=1 raw 127.0.0.1 'AUTH '"$token"'\r\nPING\r\n' 1)" = $'+OK\r\n+PONG\r\n<OPEN>' ] ||
  fail "$other with the token"
[ "$(log_lines '3 wrong tokens: closed' 2)" = 2 ] || fail "not one log line per close"
stop_daemon

# --allow-uid and --allow-gid let another uid in, as on the control socket.
for allow in "--allow-uid $other" "--allow-gid $(id -g "$other")"; do
  # shellcheck disable=SC2086 # two words: the option and its value
  start_daemon 127.0.0.1 $allow
  [ "$(runuser -u "$other" -- redis-cli -p "$port" ping)" = PONG ] || fail "$other with $allow"
  [ "$(redis-cli -p "$port" ping)" = PONG ] || fail "root with $allow"
  stop_daemon
done
# nobody is the overflow uid, which any uid unmapped in the daemon's user
# namespace shows as: never let in without a token, even when allowed.
if [ "$(id -u nobody 2>/dev/null)" = "$(cat /proc/sys/kernel/overflowuid)" ]; then
  start_daemon 127.0.0.1 --allow-uid nobody
  wait_for "$dir/log" "--allow-uid $(id -u nobody) is the kernel's overflow uid"
  out=$(runuser -u nobody -- redis-cli -p "$port" ping 2>&1 || true)
  [[ "$out" == "NOPERM uid $(id -u nobody) is the kernel's overflow uid"* ]] ||
    fail "nobody, the overflow uid, with --allow-uid nobody: $out"
  stop_daemon
else
  echo "nobody is not the overflow uid here: its case is not run"
fi
echo "test_bridge_access: ok"
