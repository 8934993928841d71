# SPDX-License-Identifier: Apache-2.0
# Harness of the federation tests (tests/test_fed_*.sh), sourced by them:
# real nats-servers (alone, with JetStream, or as members of a JetStream
# cluster) on ports picked free at run time, a shmbusd per "host" on a bus
# of its own, the daemons' NATS state read from `shmbus stat --json`, and
# every process it started killed (stopped ones too), every segment of its
# buses and its temporary directory removed on every exit path.
#
# The test sets shmbusd, shmbus, fedcheck (tests/fedcheck.c) and natsutil
# (tests/natsutil.c) to the built binaries, then sources this file. It
# makes $nu_dir (mktemp), exports SHMBUS_RUNTIME_DIR=$nu_dir/run (every
# bus's control socket), and keeps: per server NAME, nu_port[NAME] (client
# port), nu_url[NAME], nu_pid[NAME], its log $nu_dir/NAME.log and store
# $nu_dir/NAME.js; per bus B, nu_dpid[B] and its log $nu_dir/B.log.
# Every wait polls a condition with a deadline (NU_WAIT seconds unless
# told); none sleeps in place of a condition.
# shellcheck shell=bash

: "${shmbusd:?the test sets shmbusd}" "${shmbus:?the test sets shmbus}"
: "${fedcheck:?the test sets fedcheck}" "${natsutil:?the test sets natsutil}"
command -v nats-server >/dev/null || {
  echo "SKIP: nats-server is not installed (make deps installs it)"
  exit 77
}

nu_dir=$(mktemp -d /tmp/shmbus-nats.XXXXXX)
export SHMBUS_RUNTIME_DIR=$nu_dir/run
mkdir -m 0700 "$SHMBUS_RUNTIME_DIR"
unset SHMBUS_BUS SHMBUS_DAEMON_UID # else the daemons and clients go elsewhere
NU_WAIT=${NU_WAIT:-20}             # seconds for what a wait waits for
# NU_KEEP=1 in the environment keeps $nu_dir (logs, outputs) for a look.
declare -A nu_port nu_mport nu_cport nu_url nu_pid nu_dpid nu_sx nu_dx
# nu_exec_prefix: a command the next servers and daemons started run under
# (e.g. "ip netns exec NS"); empty: as they are.
nu_exec_prefix=
nu_pids=()   # every process started, killed at exit (SIGCONT, SIGKILL)
nu_buses=()  # buses whose segments and lock go at exit
nu_netns=()  # network namespaces created, deleted at exit

# nu_fail MESSAGE: say why, with the tail of every log, and end the test.
nu_fail() {
  local f
  echo "FAIL: $*" >&2
  for f in "$nu_dir"/*.log; do
    [ -s "$f" ] || continue
    echo "--- ${f##*/} (last 40 lines)" >&2
    tail -n 40 "$f" | sed 's/^/  /' >&2
  done
  exit 1
}

nu_cleanup() {
  local p b n
  for p in "${nu_pids[@]}"; do
    kill -CONT "$p" 2>/dev/null || true
    kill -KILL "$p" 2>/dev/null || true
  done
  for p in "${nu_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for n in "${nu_netns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  # shmbus.BUS.*: SBD_SEG_PREFIX (daemon/segfile.h); shmbus-BUS.lock: the
  # bus lock (daemon/config.c).
  for b in "${nu_buses[@]}"; do rm -f /dev/shm/shmbus."$b".* /dev/shm/shmbus-"$b".lock; done
  if [ -n "${NU_KEEP:-}" ]; then
    echo "NU_KEEP: logs and outputs kept in $nu_dir" >&2
  else
    rm -rf "$nu_dir"
  fi
}
trap nu_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# nu_alive PID: PID has not exited (a zombie has).
nu_alive() {
  local st
  st=$(sed 's/.*) //' /proc/"$1"/stat 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

# nu_until SECONDS WHAT CMD...: run CMD every 50 ms until it succeeds;
# after SECONDS, fail with "WHAT"; at once if a daemon died meanwhile.
nu_until() {
  local limit=$1 end=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && nu_fail "not within $limit s: $what"
    nu_daemons_alive
    sleep 0.05
  done
}

# nu_daemons_alive: every daemon the test started and did not stop still
# runs; fail at once, naming it, if one died (a crash shows in its log).
nu_daemons_alive() {
  local b
  for b in "${!nu_dpid[@]}"; do
    [ -z "${nu_dpid[$b]}" ] || nu_alive "${nu_dpid[$b]}" || nu_fail "shmbusd on $b died"
  done
}

# nu_free_port: a TCP port of 127.0.0.1 nobody listens on now.
nu_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# nu_mon NAME PATH: the body of PATH on server NAME's monitoring port
# (http://127.0.0.1:PORT/PATH, in the server's network namespace), empty
# if it does not answer.
nu_mon() {
  ${nu_sx[$1]} python3 -c '
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())
except (OSError, ValueError):
    pass' "http://127.0.0.1:${nu_mport[$1]}/$2" 2>/dev/null || true
}

# nu_bus: a new bus name, t<pid>x<n> as daemonutil.h's, which
# tests/reap-segments.sh recognises if this shell is killed. The count is
# kept in a file: the caller runs this in a subshell, $(nu_bus).
nu_bus() {
  local n
  n=$(($(cat "$nu_dir/buses" 2>/dev/null || echo 0) + 1))
  echo "$n" >"$nu_dir/buses"
  echo "t$$x$n"
}

# nu_server_spawn NAME [ARGS...]: start nats-server NAME on free client and
# monitoring ports (the client port $nu_fixed_port if set) with ARGS; wait
# until it serves /healthz. A port that was taken in between: try again
# with new ones.
nu_server_spawn() {
  local name=$1 try pid end fixed=${nu_fixed_port:-}
  shift
  for try in 1 2 3 4 5; do
    nu_port[$name]=${fixed:-$(nu_free_port)}
    nu_mport[$name]=$(nu_free_port)
    nu_sx[$name]=$nu_exec_prefix
    $nu_exec_prefix nats-server -a 127.0.0.1 -p "${nu_port[$name]}" -m "${nu_mport[$name]}" \
      -n "$name" "$@" >>"$nu_dir/$name.log" 2>&1 &
    pid=$!
    nu_pids+=("$pid")
    end=$((SECONDS + NU_WAIT))
    while nu_alive "$pid" && [ "$SECONDS" -lt "$end" ]; do
      if [[ "$(nu_mon "$name" healthz)" == *'"ok"'* ]]; then
        nu_pid[$name]=$pid
        nu_url[$name]=nats://127.0.0.1:${nu_port[$name]}
        return 0
      fi
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ -n "$fixed" ] || ! grep -q 'address already in use' "$nu_dir/$name.log"; then
      break
    fi
  done
  nu_fail "nats-server $name did not start (try $try)"
}

# nu_server NAME [ARGS...]: a nats-server of its own (ARGS: more options,
# e.g. -c FILE or --auth TOKEN).
nu_server() {
  nu_server_spawn "$@"
}

# nu_server_at NAME PORT [ARGS...]: nu_server on client port PORT (one
# a daemon was told to use before any server listened there).
nu_server_at() {
  local name=$1 nu_fixed_port=$2
  shift 2
  nu_server_spawn "$name" "$@"
}

# nu_server_js NAME [ARGS...]: a nats-server with JetStream, its store in
# $nu_dir/NAME.js.
nu_server_js() {
  local name=$1
  shift
  nu_server_spawn "$name" -js -sd "$nu_dir/$name.js" "$@"
}

# nu_meta_leader NAME: the JetStream meta group of server NAME's cluster
# has a leader (its monitoring port's /jsz says which).
nu_meta_leader() {
  nu_mon "$1" jsz | python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
sys.exit(0 if (j.get("meta_cluster") or {}).get("leader") else 1)'
}

# nu_cluster N NAME...: N nats-servers (N names) in one cluster with
# JetStream, routes to each other on free ports; waits until every member
# sees a meta leader. nu_urls gets every member's client URL, commas between.
nu_cluster() {
  local n=$1 name routes="" cname="c$$"
  shift
  [ $# -eq "$n" ] || nu_fail "nu_cluster: $n servers, $# names"
  for name in "$@"; do
    nu_cport[$name]=$(nu_free_port)
    routes+="${routes:+,}nats-route://127.0.0.1:${nu_cport[$name]}"
  done
  for name in "$@"; do
    # A cluster member answers /healthz only once JetStream is current,
    # which needs the others: start them all before waiting for any.
    nu_server_bg "$name" -js -sd "$nu_dir/$name.js" --cluster_name "$cname" \
      --cluster "nats://127.0.0.1:${nu_cport[$name]}" --routes "$routes"
  done
  nu_urls=""
  for name in "$@"; do
    nu_until "$NU_WAIT" "server $name in the cluster answers" nu_healthy "$name"
    nu_until "$NU_WAIT" "server $name sees a JetStream meta leader" nu_meta_leader "$name"
    nu_urls+="${nu_urls:+,}${nu_url[$name]}"
  done
}

# nu_server_bg NAME [ARGS...]: start nats-server NAME on free ports without
# waiting (cluster members wait for each other).
nu_server_bg() {
  local name=$1
  shift
  nu_port[$name]=$(nu_free_port)
  nu_mport[$name]=$(nu_free_port)
  nu_sx[$name]=$nu_exec_prefix
  $nu_exec_prefix nats-server -a 127.0.0.1 -p "${nu_port[$name]}" -m "${nu_mport[$name]}" \
    -n "$name" "$@" >>"$nu_dir/$name.log" 2>&1 &
  nu_pid[$name]=$!
  nu_pids+=("$!")
  nu_url[$name]=nats://127.0.0.1:${nu_port[$name]}
}

# nu_healthy NAME: server NAME runs and answers /healthz with ok.
nu_healthy() {
  nu_alive "${nu_pid[$1]}" || nu_fail "nats-server $1 exited"
  [[ "$(nu_mon "$1" healthz)" == *'"ok"'* ]]
}

# nu_daemon BUS [ARGS...]: start shmbusd on BUS in the foreground with ARGS,
# its log appended to $nu_dir/BUS.log; wait for its control socket. The
# arguments are kept for nu_daemon_restart.
nu_daemon() {
  local bus=$1
  shift
  [[ " ${nu_buses[*]} " == *" $bus "* ]] || nu_buses+=("$bus")
  printf '%q ' "$@" >"$nu_dir/$bus.args"
  nu_dx[$bus]=$nu_exec_prefix
  echo "=== shmbusd --bus $bus $*" >>"$nu_dir/$bus.log"
  rm -f "$SHMBUS_RUNTIME_DIR/$bus.sock"
  $nu_exec_prefix "$shmbusd" --bus "$bus" --foreground --log-level info "$@" \
    >>"$nu_dir/$bus.log" 2>&1 &
  nu_dpid[$bus]=$!
  nu_pids+=("$!")
  nu_until "$NU_WAIT" "shmbusd on $bus serves its socket" nu_daemon_up "$bus"
}

# nu_daemon_up BUS: BUS's daemon runs and its control socket exists.
nu_daemon_up() {
  nu_alive "${nu_dpid[$1]}" || nu_fail "shmbusd on $1 exited"
  [ -S "$SHMBUS_RUNTIME_DIR/$1.sock" ]
}

# nu_daemon_restart BUS: start BUS's daemon again with the same arguments,
# under the same prefix (the previous one has been stopped or killed).
nu_daemon_restart() {
  local bus=$1 args nu_exec_prefix=${nu_dx[$1]}
  args=$(cat "$nu_dir/$bus.args")
  eval "nu_daemon $bus $args"
}

# nu_daemon_stop BUS SIGNAL: end BUS's daemon with SIGNAL (TERM or KILL)
# and wait for it; after SIGTERM it must exit 0 within NU_WAIT seconds.
nu_daemon_stop() {
  local bus=$1 sig=$2 pid=${nu_dpid[$1]} rc=0 end=$((SECONDS + NU_WAIT))
  kill -"$sig" "$pid"
  while nu_alive "$pid"; do
    [ "$SECONDS" -ge "$end" ] && nu_fail "shmbusd on $bus still runs ${NU_WAIT}s after SIG$sig"
    sleep 0.02
  done
  wait "$pid" || rc=$?
  [ "$sig" = TERM ] && [ "$rc" -ne 0 ] && nu_fail "shmbusd on $bus exited $rc after SIGTERM"
  nu_dpid[$bus]=""
  return 0
}

# nu_stat BUS: `shmbus stat --json` of BUS (one object), bounded in time.
# --watch 0.05 takes its two samples (rates) 50 ms apart instead of 0.5 s;
# head ends it after the first object.
nu_stat() {
  timeout 10 "$shmbus" --bus "$1" stat --json --watch 0.05 | head -n 1
}

# nu_nats BUS [TOPIC] FIELD: a field of BUS's NATS link (no TOPIC) or of
# its federated TOPIC, from `shmbus stat --json`: the object under the key
# "nats" (or an object in it that is no topic), and in it the object whose
# "name" is TOPIC. A state is printed as
# its name in lower case (connected, ...) whether the JSON has a name or a
# number (enum shmbus_nats_state). Prints nothing when absent.
nu_nats() {
  local bus=$1 topic="" field
  [ $# -eq 3 ] && topic=$2
  field=${!#}
  nu_stat "$bus" 2>/dev/null | python3 -c '
import json, sys
topic, field = sys.argv[1], sys.argv[2]
names = ["off", "connecting", "connected", "reconnecting", "closed"]
def find(o, pred):
    if isinstance(o, dict):
        if pred(o):
            return o
        o = list(o.values())
    if isinstance(o, list):
        for v in o:
            r = find(v, pred)
            if r is not None:
                return r
    return None
try:
    j = json.loads(sys.stdin.readline())
except ValueError:
    sys.exit(0)
n = find(j, lambda d: isinstance(d.get("nats"), dict))
if n is None:
    sys.exit(0)
n = n["nats"]
if topic:
    n = find(n, lambda d: d.get("name") == topic)
elif field not in n:
    # The totals of the link, wherever the object nests them (not in a topic).
    n = find(n, lambda d: field in d and "name" not in d)
if n is None or field not in n:
    sys.exit(0)
v = n[field]
if field == "state":
    v = names[v] if isinstance(v, int) and 0 <= v < len(names) else str(v).lower()
print(v)' "$topic" "$field"
}

# nu_nats_is BUS [TOPIC] FIELD VALUE: nu_nats prints VALUE.
nu_nats_is() {
  local want=${!#}
  [ "$(nu_nats "${@:1:$#-1}")" = "$want" ]
}

# nu_nats_ge BUS [TOPIC] FIELD MIN: nu_nats prints a number >= MIN.
nu_nats_ge() {
  local min=${!#} v
  v=$(nu_nats "${@:1:$#-1}")
  [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge "$min" ]
}

# nu_connected BUS: wait until BUS's daemon is connected to NATS.
nu_connected() {
  nu_until "$NU_WAIT" "shmbusd on $1 connected to NATS" nu_nats_is "$1" state connected
}

# nu_federated BUS TOPIC: wait until BUS's daemon federates TOPIC: stat
# lists it among the federated topics (with its counters).
nu_federated() {
  nu_until "$NU_WAIT" "shmbusd on $1 federates $2" nu_nats_ge "$1" "$2" out 0
}

# nu_sub BUS TOPIC OUT [FEDCHECK SUB OPTIONS...]: a background subscriber
# (fedcheck sub) writing its lines to OUT; waits until it is subscribed.
# Its pid is in nu_last.
nu_sub() {
  local bus=$1 topic=$2 out=$3
  shift 3
  rm -f "$out.ready"
  "$fedcheck" sub --bus "$bus" --topic "$topic" --ready "$out.ready" "$@" >"$out" 2>"$out.err" &
  nu_last=$!
  nu_pids+=("$!")
  nu_until "$NU_WAIT" "subscriber of $topic on $bus ready" nu_ready "$nu_last" "$out"
}

# nu_ready PID OUT: the subscriber PID made OUT.ready (and still runs).
nu_ready() {
  [ -e "$2.ready" ] && return 0
  nu_alive "$1" || nu_fail "subscriber $1 exited: $(cat "$2.err")"
  return 1
}

# nu_wait_pid PID WHAT [SECONDS]: wait for PID to exit (NU_WAIT seconds
# unless told) and return its status; fail if it does not.
nu_wait_pid() {
  local end=$((SECONDS + ${3:-$NU_WAIT}))
  while nu_alive "$1"; do
    [ "$SECONDS" -ge "$end" ] && nu_fail "$2 (pid $1) did not end in time"
    nu_daemons_alive
    sleep 0.02
  done
  wait "$1"
}

# nu_sub_done PID OUT WHAT: the subscriber PID ended with status 0 (it got
# its count); fail with its stderr otherwise.
nu_sub_done() {
  local rc=0
  nu_wait_pid "$1" "$3" "${4:-$NU_WAIT}" || rc=$?
  [ "$rc" -eq 0 ] || nu_fail "$3: exit $rc: $(cat "$2.err"); got $(wc -l <"$2") lines"
}

# nu_payloads OUT: the payloads of fedcheck sub's lines, one a line, in order.
nu_payloads() {
  awk '{ print $7 }' "$1"
}

# nu_check_logs: no sanitizer report and no crash in any log.
nu_check_logs() {
  local f
  for f in "$nu_dir"/*.log; do
    [ -f "$f" ] || continue
    if grep -Eq 'AddressSanitizer|ThreadSanitizer|LeakSanitizer|runtime error:|SUMMARY: .*Sanitizer' "$f"; then
      nu_fail "${f##*/} has a sanitizer report"
    fi
  done
}

# nu_pass: the daemons still run, stop with SIGTERM and exit 0, and no
# log has a sanitizer report; then PASS.
nu_pass() {
  local b
  for b in "${!nu_dpid[@]}"; do
    [ -n "${nu_dpid[$b]}" ] || continue
    nu_alive "${nu_dpid[$b]}" || nu_fail "shmbusd on $b died"
    nu_daemon_stop "$b" TERM
  done
  nu_check_logs
  echo "PASS"
}

# nu_expect_flags OUT FLAGS TAG FROM TO WHAT: OUT's lines whose payload is
# TAG-* hold exactly TAG-FROM .. TAG-TO, each once, in order, every one
# with flags FLAGS (0 local, 1 SHMBUS_MSG_IMPORTED) and no loss before it.
nu_expect_flags() {
  local out=$1 flags=$2 tag=$3 from=$4 to=$5 what=$6 bad
  if ! diff <(awk -v t="$tag-" 'index($7, t) == 1 { print $7 }' "$out") \
    <(seq "$from" "$to" | sed "s/^/$tag-/") >"$out.diff"; then
    nu_fail "$what: $tag payloads differ from $tag-$from..$tag-$to (< got, > expected): $(head -20 "$out.diff")"
  fi
  bad=$(awk -v t="$tag-" -v f="$flags" 'index($7, t) == 1 && ($2 != f || $6 != 0)' "$out" | head -5)
  [ -z "$bad" ] || nu_fail "$what: $tag lines without flags $flags or with a loss: $bad"
}

# nu_expect_origin LOCAL REMOTE TAG WHAT: every TAG-* message in REMOTE (as
# imported) carries the seq, pid and time it has in LOCAL (its origin bus):
# origin_seq = the local seq; publisher pid and timestamp the same.
nu_expect_origin() {
  local bad
  bad=$(awk -v t="$3-" 'index($7, t) != 1 { next }
    FNR == NR { seq[$7] = $1; pid[$7] = $4; ts[$7] = $5; next }
    !($7 in seq) || $3 != seq[$7] || $4 != pid[$7] || $5 != ts[$7] {
      print $0 " (origin: " ($7 in seq ? seq[$7] " " pid[$7] " " ts[$7] : "none") ")" }' \
    "$1" "$2" | head -5)
  [ -z "$bad" ] || nu_fail "$4: imported lines whose origin seq, pid or time is wrong: $bad"
}

# nu_lines OUT: the number of lines of OUT.
nu_lines() {
  wc -l <"$1" | tr -d ' '
}

# nu_lines_ge OUT N: OUT has N lines or more (a condition for nu_until,
# which runs it again at each poll: a $(nu_lines) in its arguments would
# be counted once, before the first).
nu_lines_ge() {
  [ "$(nu_lines "$1")" -ge "$2" ]
}

# nu_link_ready FROM TO TOPIC: messages published on bus FROM's TOPIC reach
# bus TO: publish one (w-1, w-2, ...) every 100 ms until a subscriber on TO
# got one. TOPIC is one the test uses for nothing else: this proves the
# exporter on FROM and the import subscription on TO are in place.
nu_link_ready() {
  local from=$1 to=$2 topic=$3 out="$nu_dir/warm.$1.$2" i=0 pid end=$((SECONDS + NU_WAIT))
  nu_sub "$to" "$topic" "$out" --count 1 --timeout-ms $((NU_WAIT * 1000))
  pid=$nu_last
  while nu_alive "$pid"; do
    [ "$SECONDS" -ge "$end" ] && nu_fail "no message of $topic from $from reached $to"
    i=$((i + 1))
    "$fedcheck" pub --bus "$from" --topic "$topic" --count 1 --start "$i" --tag w ||
      nu_fail "publish on $topic of $from"
    sleep 0.1
  done
  nu_sub_done "$pid" "$out" "warm-up subscriber of $topic on $to"
}

# nu_topic BUS TOPIC FIELD: a field of TOPIC in `shmbus stat --json` of BUS
# (the topic's own object, outside "nats"), a list as its length (slots:
# the subscriber slots, the daemon's own exporters among them); nothing
# when absent.
nu_topic() {
  nu_stat "$1" 2>/dev/null | python3 -c '
import json, sys
topic, field = sys.argv[1], sys.argv[2]
def find(o):
    if isinstance(o, dict):
        if o.get("name") == topic and field in o:
            return o
        o = [v for k, v in o.items() if k != "nats"]
    if isinstance(o, list):
        for v in o:
            r = find(v)
            if r is not None:
                return r
    return None
try:
    t = find(json.loads(sys.stdin.readline()))
except ValueError:
    t = None
if t is not None:
    print(len(t[field]) if isinstance(t[field], list) else t[field])' "$2" "$3"
}

# nu_topic_is BUS TOPIC FIELD VALUE: nu_topic prints VALUE.
nu_topic_is() {
  [ "$(nu_topic "$1" "$2" "$3")" = "$4" ]
}

# nu_logged BUS TEXT REGEX: a line of BUS's daemon log holds TEXT (as it
# is) and matches REGEX (extended, any case).
nu_logged() {
  grep -F -- "$2" "$nu_dir/$1.log" | grep -Eqi -- "$3"
}

# nu_exchange TOPIC N BUS...: every BUS federates TOPIC (a BUS written
# +NAME only imports it), and each publishes N messages p<bus>-1 ..
# p<bus>-N, all at once. Each bus receives exactly its own N, once, local,
# and the N of each other bus that exports, once, in order, imported with
# the origin's seq, pid and time; nothing more for a second after. The
# lines are left in $nu_dir/BUS.TOPIC.out.
nu_exchange() {
  local topic=$1 n=$2 x y want out
  shift 2
  local -A subs pubs exports
  local buses=()
  for x in "$@"; do
    buses+=("${x#+}")
    [ "${x:0:1}" = + ] || exports[$x]=1
  done
  for x in "${buses[@]}"; do
    want=$n
    for y in "${!exports[@]}"; do [ "$x" = "$y" ] || want=$((want + n)); done
    nu_sub "$x" "$topic" "$nu_dir/$x.$topic.out" --count "$want" --linger-ms 1000 --timeout-ms 30000
    subs[$x]=$nu_last
  done
  # Our subscriber and each exporter: none is published before all read.
  for x in "${!exports[@]}"; do
    nu_federated "$x" "$topic"
    nu_until "$NU_WAIT" "the exporter on $x subscribes to $topic" nu_topic_is "$x" "$topic" slots 2
  done
  for x in "${buses[@]}"; do
    "$fedcheck" pub --bus "$x" --topic "$topic" --count "$n" --tag "p$x" &
    pubs[$x]=$!
    nu_pids+=("$!")
  done
  for x in "${buses[@]}"; do
    nu_wait_pid "${pubs[$x]}" "publisher on $x" || nu_fail "publisher on $x failed"
  done
  for x in "${buses[@]}"; do nu_sub_done "${subs[$x]}" "$nu_dir/$x.$topic.out" "subscriber on $x" 40; done
  for x in "${buses[@]}"; do
    out=$nu_dir/$x.$topic.out
    want=$n
    nu_expect_flags "$out" 0 "p$x" 1 "$n" "bus $x, its own messages"
    for y in "${buses[@]}"; do
      [ "$x" != "$y" ] || continue
      if [ -n "${exports[$y]:-}" ]; then
        want=$((want + n))
        nu_expect_flags "$out" 1 "p$y" 1 "$n" "bus $x, from $y"
        nu_expect_origin "$nu_dir/$y.$topic.out" "$out" "p$y" "bus $x, from $y"
      elif grep -q " p$y-" "$out"; then
        nu_fail "bus $x got messages of $y, which only imports"
      fi
    done
    [ "$(nu_lines "$out")" -eq "$want" ] || nu_fail "bus $x got $(nu_lines "$out") messages, not $want"
    bad=$(awk '$2 == 0 && $3 != 0' "$out" | head -3)
    [ -z "$bad" ] || nu_fail "bus $x: local messages with an origin seq: $bad"
  done
}
