# SPDX-License-Identifier: Apache-2.0
# Helpers of the metrics tests written in bash (test_metrics.sh,
# test_metrics_prometheus.sh), sourced by them: a private shmbusd with
# --metrics on a free port and its log in $dir/log, HTTP through python3's
# sockets, and every background process and segment removed on any exit.
# The test sets shmbusd, shmbus and bus first; this makes $dir (the runtime
# directory, XDG_RUNTIME_DIR), keeps the daemon's pid in $daemon, its
# metrics port in $port and the test's background processes in the array bg.
# shellcheck shell=bash

: "${shmbusd:?the test sets shmbusd}" "${shmbus:?the test sets shmbus}" "${bus:?the test sets bus}"
command -v python3 >/dev/null || { echo "python3 not installed: skipped"; exit 77; }
dir=$(mktemp -d)
export XDG_RUNTIME_DIR=$dir
unset SHMBUS_RUNTIME_DIR SHMBUS_DAEMON_UID SHMBUS_BUS SHMBUS_SOCKET # else it goes elsewhere
daemon=""
port=""
bg=()

# fail MESSAGE: say why (with the daemon's log) and end the test.
fail() {
  echo "FAIL: $*" >&2
  [ -f "$dir/log" ] && sed 's/^/  log: /' "$dir/log" >&2
  exit 1
}

cleanup() {
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bg[@]}"; do wait "$p" 2>/dev/null || true; done
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

# http DATA [SECONDS] [PORT]: send DATA (with \r \n escapes) to
# 127.0.0.1:PORT (default $port), print what comes back within SECONDS
# (default 5), then <EOF> if the daemon closed the connection, else <OPEN>.
http() {
  python3 - "${3:-$port}" "$1" "${2:-5}" <<'PY'
import socket, sys
port, wait = int(sys.argv[1]), float(sys.argv[3])
data = sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
s = socket.create_connection(("127.0.0.1", port))
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

# scrape: the body of GET /metrics (status 200, or the test fails).
scrape() {
  local out
  out=$(http 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
  [[ "$out" == "HTTP/1.1 200 OK"* ]] || fail "scrape: ${out:0:300}"
  out=${out#*$'\r\n\r\n'}
  printf '%s\n' "${out%<EOF>}"
}

# start_daemon [EXTRA...]: a daemon with --metrics on a free loopback port
# (a new port if it could not bind that one), answering GET /metrics.
start_daemon() {
  for _ in $(seq 10); do
    port=$(free_port)
    "$shmbusd" --bus "$bus" --foreground --metrics "127.0.0.1:$port" "$@" 2>"$dir/log" &
    daemon=$!
    for _ in $(seq 200); do
      kill -0 "$daemon" 2>/dev/null || break
      [[ "$(http 'GET /metrics HTTP/1.0\r\n\r\n' 2>/dev/null)" == "HTTP/1.1 "[24]0[01]* ]] &&
        return 0
      sleep 0.05
    done
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    daemon=""
  done
  fail "daemon with --metrics did not start"
}

# stop_daemon: the daemon, which must exit 0.
stop_daemon() {
  kill "$daemon"
  wait "$daemon" || fail "daemon exit status $?"
  daemon=""
}
