# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers shared by the shell tests that run the shmbus command, or other
# clients, against a private shmbusd (test_cli.sh, test_journal_cli.sh,
# test_exec.sh, test_examples.sh, test_install.sh, ...): every wait has a
# deadline; a child that outlives one is reported (its and the daemon's
# kernel stacks) and killed; the private bus, the daemon's start and the
# cleanup at exit. Sourced; the test sets before use: shmbusd, bus, dir
# (its XDG_RUNTIME_DIR), daemon (the daemon's pid, or ""), log (the
# daemon's stderr) (or private_bus sets those four), WAIT_TIMEOUT (seconds
# for a wait), CLI_TIMEOUT (seconds for one bounded call), shmbus (the
# command, for subscribed), and defines fail MESSAGE (report and exit 1).
# shellcheck disable=SC2154 # the variables above are the test's

# alive PID: PID has not exited yet (a zombie has).
alive() {
  local st
  st=$(sed 's/.*) //' /proc/"$1"/stat 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}
# hang_report PID WHAT: where PID (running WHAT) and the daemon are stuck:
# each thread's kernel stack (root reads them) and wait channel.
hang_report() {
  echo "HANG: $2 (pid $1) still runs after its deadline" >&2
  for p in "$1" "$daemon"; do
    [ -n "$p" ] || continue
    for t in /proc/"$p"/task/*; do
      [ -d "$t" ] || continue
      echo "  pid $p task ${t##*/} ($(cat "$t/comm" 2>/dev/null)), wchan $(cat "$t/wchan" 2>/dev/null):" >&2
      sed 's/^/    /' "$t/stack" >&2 2>/dev/null || true
    done
  done
}
# stop PID [WHAT]: end the child PID (a stopped one too) within
# WAIT_TIMEOUT seconds, then with SIGKILL and a report of where it hung.
stop() {
  local end=$((SECONDS + WAIT_TIMEOUT))
  kill "$1" 2>/dev/null || return 0
  kill -CONT "$1" 2>/dev/null || true
  while alive "$1" && [ "$SECONDS" -lt "$end" ]; do sleep 0.05; done
  if alive "$1"; then
    hang_report "$1" "${2:-a child}"
    kill -9 "$1" 2>/dev/null || true
  fi
  # A killed child's wait fails: `|| true`, or set -e would end the trap
  # here and leave the daemon running (holding ctest's output open).
  wait "$1" 2>/dev/null || true
}
# wait_exit PID WHAT: wait for the child PID to exit (CLI_TIMEOUT seconds
# at most) and return its status; past that, report the hang and fail.
wait_exit() {
  local end=$((SECONDS + CLI_TIMEOUT))
  while alive "$1"; do
    if [ "$SECONDS" -ge "$end" ]; then
      hang_report "$1" "$2"
      kill -9 "$1" 2>/dev/null || true
      fail "$2 did not exit within ${CLI_TIMEOUT} s"
    fi
    sleep 0.02
  done
  wait "$1"
}
# bounded CMD...: run CMD on this standard input within CLI_TIMEOUT
# seconds; return its status, or report the hang and fail.
bounded() {
  "$@" <&0 &
  wait_exit $! "$*"
}
# wait_until WHAT CMD...: CMD succeeds within WAIT_TIMEOUT seconds, or the
# test fails with "WHAT: not within N s".
wait_until() {
  local what=$1 end=$((SECONDS + WAIT_TIMEOUT))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && fail "$what: not within ${WAIT_TIMEOUT} s"
    sleep 0.02
  done
}
# wait_socket WHAT: the daemon's control socket appears (WAIT_TIMEOUT
# seconds at most), or the test fails with "WHAT did not start".
wait_socket() {
  local end=$((SECONDS + WAIT_TIMEOUT))
  until [ -S "$dir/shmbus/$bus.sock" ]; do
    [ "$SECONDS" -ge "$end" ] && { hang_report "$daemon" "$1"; fail "$1 did not start"; }
    sleep 0.05
  done
}
# start_daemon WHAT [ARG...]: shmbusd for the bus in the foreground with
# ARGs, its stderr in $log, its pid in $daemon; its socket up, or fail.
start_daemon() {
  local what=$1
  shift
  "$shmbusd" --bus "$bus" --foreground --log-level warn "$@" 2>"$log" &
  daemon=$!
  wait_socket "$what"
}
# fail MESSAGE: say why, with the daemon's log, and end the test (a test
# that has more to show defines its own after sourcing this).
fail() {
  echo "FAIL: $*" >&2
  [ -s "$log" ] && sed 's/^/  log: /' "$log" >&2
  exit 1
}
# private_bus NAME: a bus of the test's own, which nothing in the caller's
# environment redirects: $dir a new temporary directory (its
# XDG_RUNTIME_DIR), $bus NAME and the shell's pid (SHMBUS_BUS), $log the
# daemon's stderr, $daemon "" until start_daemon.
private_bus() {
  dir=$(mktemp -d)
  bus="$1$$"
  log="$dir/daemon.log"
  daemon=""
  export XDG_RUNTIME_DIR=$dir SHMBUS_BUS=$bus
  unset SHMBUS_RUNTIME_DIR SHMBUS_DAEMON_UID SHMBUS_SOCKET
}
# bus_cleanup: for the test's EXIT trap, once its own children are
# stopped: the daemon stopped, the bus's segments (SBD_SEG_PREFIX,
# daemon/segfile.h) and lock (daemon/config.c) and $dir removed.
bus_cleanup() {
  [ -n "$daemon" ] && stop "$daemon" "the daemon at exit"
  rm -f /dev/shm/shmbus."$bus".* /dev/shm/shmbus-"$bus".lock
  rm -rf "$dir"
}
# fail_showing MESSAGE FILE...: MESSAGE and the last 30 lines of each
# non-empty FILE (each line led by the file's name) on stderr; exit 1.
fail_showing() {
  local f
  echo "FAIL: $1" >&2
  shift
  for f in "$@"; do
    [ -s "$f" ] && tail -n 30 "$f" | sed "s|^|  ${f##*/}: |" >&2
  done
  exit 1
}
# free_port: a TCP port of 127.0.0.1 nobody listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# shm_bytes: the bus's shared memory in use, as `stat --json` counts it
# against --max-shm.
shm_bytes() {
  bounded "$shmbus" --bus "$bus" stat --json </dev/null | grep -o '"shm_bytes":[0-9]*' | cut -d: -f2
}
# subscribed TOPIC: `stat --json` shows a subscriber on TOPIC.
subscribed() {
  bounded "$shmbus" --bus "$bus" stat --json | grep -q "\"name\":\"$1\"[^}]*\"subscribers\":[1-9]"
}
