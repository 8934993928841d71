# SPDX-License-Identifier: Apache-2.0
# Helpers of the tests written in bash of the daemon's TCP listeners
# (test_bridge_redis.sh, test_bridge_access.sh, test_events.sh, and through
# metrics_sh.sh the metrics tests), sourced by them: a private shmbusd
# listening on a free port and its log in $dir/log (the bridge's checked
# with the real redis-cli), raw TCP exchanges, and every background process
# and segment removed on any exit. The test sets shmbusd and bus first; this makes $dir (the
# runtime directory, XDG_RUNTIME_DIR) and $token, and keeps the daemon's
# pid in $daemon, its port in $port and the test's background processes
# in the array bg.
# shellcheck shell=bash

: "${shmbusd:?the test sets shmbusd}" "${bus:?the test sets bus}"
dir=$(mktemp -d)
token="t0k-$$-secret"
export XDG_RUNTIME_DIR=$dir
unset SHMBUS_RUNTIME_DIR SHMBUS_DAEMON_UID SHMBUS_SOCKET # else the daemon and clients go elsewhere
unset SHMBUS_BUS SHMBUS_BRIDGE_TOKEN REDISCLI_AUTH
daemon=""
port=""
bg=()

# fail MESSAGE: say why (with the daemon's log) and end the test.
fail() {
  echo "FAIL: $*" >&2
  [ -f "$dir/log" ] && sed 's/^/  log: /' "$dir/log" >&2
  exit 1
}

# stop_bg: kill and reap the background processes.
stop_bg() {
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bg[@]}"; do wait "$p" 2>/dev/null || true; done
  bg=()
}

cleanup() {
  stop_bg
  if [ -n "$daemon" ]; then
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  # SBD_SEG_PREFIX (daemon/segfile.h), and the bus lock of daemon/config.c.
  rm -f /dev/shm/shmbus."$bus".* /dev/shm/shmbus-"$bus".lock
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# listen_daemon OPTION ADDR READY [EXTRA...]: a daemon with OPTION
# ADDR:PORT and EXTRA, PORT free in $port (a new one if it could not bind
# that one), once the command READY succeeds; its log in $dir/log.
listen_daemon() {
  local opt=$1 addr=$2 ready=$3
  shift 3
  for _ in $(seq 10); do
    port=$(free_port)
    "$shmbusd" --bus "$bus" --foreground "$opt" "$addr:$port" "$@" 2>"$dir/log" &
    daemon=$!
    for _ in $(seq 200); do
      kill -0 "$daemon" 2>/dev/null || break
      "$ready" && return 0
      sleep 0.05
    done
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    daemon=""
  done
  fail "daemon with $opt did not start"
}

# bridge_ready: redis-cli's PING on $port gets PONG (with start_daemon's
# auth options).
bridge_ready() {
  [ "$(redis-cli -p "$port" "${auth[@]}" ping 2>/dev/null)" = PONG ]
}

# start_daemon ADDR [EXTRA...]: a daemon with the bridge on ADDR and a free
# port, answering redis-cli's PING (with the token if EXTRA holds
# --bridge-token-file).
start_daemon() {
  local addr=$1 auth=()
  shift
  [[ " $* " == *" --bridge-token-file "* ]] && auth=(-a "$token" --no-auth-warning)
  listen_daemon --bridge "$addr" bridge_ready "$@"
}

# raw HOST DATA [SECONDS]: send DATA (with \r \n escapes) to HOST:$port,
# print what comes back within SECONDS (default 5), then <EOF> if the
# daemon closed the connection, else <OPEN>. As the user $other when
# $as_other is set.
raw() {
  local run=()
  [ -n "${as_other:-}" ] && run=(runuser -u "$other" --)
  "${run[@]}" python3 - "$1" "$port" "$2" "${3:-5}" <<'PY'
import socket, sys
host, port, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[4])
data = sys.argv[3].encode().decode("unicode_escape").encode("latin-1")
s = socket.create_connection((host, port))
s.sendall(data)
s.settimeout(wait)
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            out += b"<EOF>"
            break
        out += b
except socket.timeout:
    out += b"<OPEN>"
except ConnectionResetError:
    out += b"<EOF>"
sys.stdout.write(out.decode("latin-1"))
PY
}

# stop_daemon: the background processes, then the daemon, which must exit 0.
stop_daemon() {
  stop_bg
  kill "$daemon"
  wait "$daemon" || fail "daemon exit status $?"
  daemon=""
}

# wait_for FILE TEXT: FILE comes to contain TEXT (which may span lines).
wait_for() {
  for _ in $(seq 200); do
    [[ "$(cat "$1" 2>/dev/null)" == *"$2"* ]] && return 0
    sleep 0.05
  done
  fail "$1 lacks '$2'; it holds: $(cat "$1")"
}
