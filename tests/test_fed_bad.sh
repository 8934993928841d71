#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bad input to federation, each with a counted, logged outcome and a daemon
# that goes on serving:
#  - a message larger than the server's max_payload (2048 here, from a
#    config file): counted in lost_out and logged on the exporting bus,
#    and in lost_in on the importing bus (which counts whatever of an
#    origin's messages did not come in, whichever side lost it); the next
#    message goes through. The topic, whose max_msg_size exceeds
#    max_payload, was warned about when its export started.
#  - topic names that cannot be subjects (an empty token: "fed..x",
#    "fed.x."): refused for federation, each named in the log and counted
#    in refused; they still work on their own bus.
#  - junk from a raw NATS client on PREFIX.>: headers missing or malformed
#    (not digits, overflow, bad origin) and subjects that are no topic
#    names: refused, counted (subjects in refused) and logged; a good
#    message after them comes in with the metadata its headers carry.
# Usage: test_fed_bad.sh SHMBUSD SHMBUS FEDCHECK NATSUTIL
set -euo pipefail
shmbusd=$1 shmbus=$2 fedcheck=$3 natsutil=$4
# shellcheck source=tests/natsutil.sh
. "$(dirname "$0")/natsutil.sh"

echo 'max_payload: 2048' >"$nu_dir/small.conf"
nu_server n1 -c "$nu_dir/small.conf"
url=${nu_url[n1]}
a=$(nu_bus)
b=$(nu_bus)
# a only exports (it sees none of the junk below), b only imports.
nu_daemon "$a" --nats "$url" --nats-origin "o$a" --export 'fed.*'
nu_daemon "$b" --nats "$url" --nats-origin "o$b" --import 'fed.*'
nu_connected "$a"
nu_connected "$b"
nu_link_ready "$a" "$b" fed.warm

# --- Oversized: fed.big takes 4096 bytes on a; the server, 2048.
nu_sub "$b" fed.big "$nu_dir/big.out" --max-msg 4096 --count 2 --linger-ms 1000 --timeout-ms 20000
sub=$nu_last
"$fedcheck" sub --bus "$a" --topic fed.big --max-msg 4096 --timeout-ms 0 || nu_fail "create fed.big on $a"
nu_federated "$a" fed.big
nu_until "$NU_WAIT" "a warns that fed.big's messages may exceed max_payload (2048)" \
  nu_logged "$a" fed.big ' warn .*2048'
nu_until "$NU_WAIT" "the exporter on $a subscribes to fed.big" nu_topic_is "$a" fed.big slots 1
warned=$(grep -F fed.big "$nu_dir/$a.log" | grep -Eci ' (warn|error) ')
"$fedcheck" pub --bus "$a" --topic fed.big --count 1 --tag s || nu_fail "publish s-1"
"$fedcheck" pub --bus "$a" --topic fed.big --count 1 --tag big --size 3000 || nu_fail "publish big-1"
"$fedcheck" pub --bus "$a" --topic fed.big --count 1 --start 2 --tag s || nu_fail "publish s-2"
nu_sub_done "$sub" "$nu_dir/big.out" "subscriber of fed.big on $b"
[ "$(nu_lines "$nu_dir/big.out")" -eq 2 ] || nu_fail "b got $(nu_lines "$nu_dir/big.out") of fed.big, not 2"
nu_expect_flags "$nu_dir/big.out" 1 s 1 2 "b, fed.big"
nu_until 10 "stat of $a: fed.big out 2" nu_nats_is "$a" fed.big out 2
nu_nats_is "$a" fed.big lost_out 1 || nu_fail "stat of $a: fed.big lost_out $(nu_nats "$a" fed.big lost_out)"
nu_nats_is "$b" fed.big in 2 || nu_fail "stat of $b: fed.big in $(nu_nats "$b" fed.big in)"
nu_nats_is "$b" fed.big lost_in 1 || nu_fail "stat of $b: fed.big lost_in $(nu_nats "$b" fed.big lost_in)"
[ "$(grep -F fed.big "$nu_dir/$a.log" | grep -Eci ' (warn|error) ')" -gt "$warned" ] ||
  nu_fail "a did not log the message larger than max_payload"

# --- Names that cannot be subjects: refused on a, still local topics.
refused0=$(nu_nats "$a" refused)
for t in fed..x fed.x.; do
  nu_sub "$a" "$t" "$nu_dir/$t.out" --count 1 --timeout-ms 10000
  sub=$nu_last
  "$fedcheck" pub --bus "$a" --topic "$t" --count 1 --tag "local" || nu_fail "publish on $t of $a"
  nu_sub_done "$sub" "$nu_dir/$t.out" "subscriber of $t on $a"
  nu_until 10 "a logs that $t is refused" nu_logged "$a" "$t" 'refus|subject|token'
  [ -z "$(nu_nats "$a" "$t" out)" ] || nu_fail "a federates $t"
done
nu_until 10 "a counts 2 refused names" nu_nats_is "$a" refused $((refused0 + 2))

# --- Junk on the wire into b, then one good message.
nu_sub "$b" fed.junk "$nu_dir/junk.out" --count 1 --linger-ms 1000 --timeout-ms 20000
sub=$nu_last
before=$(($(nu_nats "$b" refused) + $(nu_nats "$b" errors) + $(nu_nats "$b" lost_in)))
refused0=$(nu_nats "$b" refused)
ok=(Shmbus-Origin=zz Shmbus-Epoch=5 Shmbus-Seq=7 Shmbus-Time=1000 Shmbus-Pid=42
  Nats-Msg-Id=zz/fed.junk/5/7)
# junk_without KEY [KEY=VALUE]: the good headers but KEY's, plus KEY=VALUE.
junk_without() {
  local h out=()
  for h in "${ok[@]}"; do [ "${h%%=*}" = "$1" ] || out+=("$h"); done
  [ $# -gt 1 ] && out+=("$2")
  "$natsutil" pub "$url" shmbus.fed.junk junk "${out[@]}" || nu_fail "natsutil pub (junk $*)"
}
# Subjects that are no topic names first: the daemon's warnings are
# rate-limited, and the first ones of a second are logged.
junks=0
long=fed.$(printf 'x%.0s' $(seq 130))
for s in 'fed.bad/x' "fed.a\$b" "$long"; do
  "$natsutil" pub "$url" "shmbus.$s" junk "${ok[@]}" || nu_fail "natsutil pub on shmbus.$s"
  junks=$((junks + 1))
done
"$natsutil" pub "$url" shmbus.fed.junk "no headers" || nu_fail "natsutil pub"
junks=$((junks + 1))
for k in Shmbus-Origin Shmbus-Epoch Shmbus-Seq Shmbus-Time Shmbus-Pid; do
  junk_without "$k"
  junks=$((junks + 1))
done
for v in Shmbus-Seq=abc Shmbus-Seq=-1 Shmbus-Seq=5x Shmbus-Seq=+5 Shmbus-Seq=0x10 \
  Shmbus-Seq=18446744073709551616 Shmbus-Seq=99999999999999999999999 \
  Shmbus-Seq=18446744073709551615 Shmbus-Epoch=1.5 Shmbus-Time=99999999999999999999999 \
  Shmbus-Pid=4294967296 Shmbus-Pid=-3 Shmbus-Origin=bad.origin \
  Shmbus-Origin=o1234567890123456789012345678901234567890123456789012345678901234; do
  junk_without "${v%%=*}" "$v"
  junks=$((junks + 1))
done
"$natsutil" pub "$url" shmbus.fed.junk good "${ok[@]}" || nu_fail "natsutil pub (good)"
nu_sub_done "$sub" "$nu_dir/junk.out" "subscriber of fed.junk on $b"
[ "$(nu_lines "$nu_dir/junk.out")" -eq 1 ] ||
  nu_fail "b let junk in: $(head -5 "$nu_dir/junk.out")"
read -r _ flags oseq pid ts lost payload <"$nu_dir/junk.out"
[ "$flags $oseq $pid $ts $lost $payload" = "1 7 42 1000 0 good" ] ||
  nu_fail "the good message came in as: $(cat "$nu_dir/junk.out")"
after=$(($(nu_nats "$b" refused) + $(nu_nats "$b" errors) + $(nu_nats "$b" lost_in)))
[ $((after - before)) -eq "$junks" ] ||
  nu_fail "b counted $((after - before)) of the $junks junk messages (refused + errors + lost_in)"
# The 3 subjects that are no topic names are refused (bad headers may be
# counted there too, or in errors or lost_in: the sum above is exact).
nu_nats_ge "$b" refused $((refused0 + 3)) ||
  nu_fail "b: refused $(nu_nats "$b" refused), not at least $((refused0 + 3))"
nu_logged "$b" 'fed.bad/x' 'refus|subject|topic' || nu_fail "b did not log the subject fed.bad/x"
grep -qi 'header' "$nu_dir/$b.log" || nu_fail "b did not log the bad headers"
nu_pass
