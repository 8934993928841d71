#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The bash completion of shmbus (dist/bash-completion/shmbus), sourced and
# called as bash calls it (COMP_WORDS, COMP_CWORD, COMPREPLY): the commands
# and every option that `shmbus --help` and each command's help define,
# option values, journals, and topic and bus names of a private
# shmbusd's bus.
# Usage: test_completion.sh SOURCE_DIR SHMBUSD SHMBUS
set -euo pipefail
src=$1
shmbusd=$2
shmbus=$3
dir=$(mktemp -d)
bus="comp$$"
export XDG_RUNTIME_DIR=$dir
unset SHMBUS_RUNTIME_DIR SHMBUS_DAEMON_UID SHMBUS_BUS
daemon=""
log="$dir/daemon.log"
CLI_TIMEOUT=20
WAIT_TIMEOUT=10
source "${BASH_SOURCE[0]%/*}/clitest.sh" # fail, bus_cleanup, bounded, start_daemon
source "${BASH_SOURCE[0]%/*}/helpopts.sh" # help_commands, command_options
trap bus_cleanup EXIT

# shellcheck source=../dist/bash-completion/shmbus
source "$src"/dist/bash-completion/shmbus
complete -p shmbus >/dev/null || fail "no completion registered for shmbus"

# offered WORD...: what completing the last WORD of `shmbus WORD...`
# offers, sorted, one a line.
offered() {
  COMP_WORDS=(shmbus "$@")
  COMP_CWORD=$#
  COMPREPLY=()
  _shmbus
  [ "${#COMPREPLY[@]}" -eq 0 ] || printf '%s\n' "${COMPREPLY[@]}" | sort
}
# expect WANT WORD...: completing `shmbus WORD...` offers exactly WANT
# (space-separated, sorted).
expect() {
  local want=$1 got
  shift
  got=$(offered "$@" | paste -sd' ')
  [ "$got" = "$want" ] || fail "shmbus $*<TAB>: offered '$got', want '$want'"
}

expect "$({ help_commands "$shmbus"; echo help; } | sort | paste -sd' ')" ""
expect "--bus --help --version" --
expect "pub" help p
expect "" help pub ""
for c in $(help_commands "$shmbus"); do
  expect "$(command_options "$shmbus" "$c" | paste -sd' ')" "$c" --
done
expect "raw" sub t --format r
# --opt=VALUE as bash hands it over ('=' breaks words): the value.
expect "raw" sub t --format = r
expect "hex json raw text" sub t --format =
expect "hex json raw text" sub t --format ""
expect "oldest" sub t --from o
expect "batch" record t --sync b
expect "" sub t --count ""
expect "lag rate" top --sort ""
expect "lag" top --sort = l
expect "" top --interval ""
mkdir -p "$dir/j/prices" "$dir/j/orders"
expect "orders prices" journal --dir "$dir/j" ""
expect "prices" replay --dir "$dir/j" --topic p

# Topics and buses, of a real daemon's bus.
start_daemon "shmbusd"
bounded "$shmbus" --bus "$bus" pub md.eurusd 1.08 >/dev/null || fail "pub md.eurusd"
bounded "$shmbus" --bus "$bus" pub orders buy >/dev/null || fail "pub orders"
# _shmbus.events: the daemon's events topic.
expect "_shmbus.events md.eurusd orders" --bus "$bus" sub ""
expect "md.eurusd" --bus="$bus" record m
expect "md.eurusd" --bus = "$bus" record m
expect "" --bus "$bus" stat ""
expect "_shmbus.events md.eurusd orders" --bus "$bus" sub md.eurusd ""
expect "orders" sub --bus "$bus" --dead-letter o
expect "" --bus "$bus" pub orders ""
# rm: any number of topics, not the daemon's own; bench: one.
expect "md.eurusd orders" --bus "$bus" rm ""
expect "orders" --bus "$bus" rm md.eurusd o
expect "md.eurusd" --bus "$bus" bench m
expect "" --bus "$bus" bench md.eurusd ""
SHMBUS_BUS=$bus expect "_shmbus.events md.eurusd orders" sub ""
# A ':' in a topic's name breaks the word too: bash replaces what follows.
bounded "$shmbus" --bus "$bus" pub fx:eurusd 1.08 >/dev/null || fail "pub fx:eurusd"
expect "fx:eurusd" --bus "$bus" sub f
expect "eurusd" --bus "$bus" sub fx : e
expect "eurusd" --bus "$bus" replay --to = fx :
# Without '=' and ':' in COMP_WORDBREAKS, bash replaces the whole word.
COMP_WORDBREAKS=" " expect "fx:eurusd" --bus "$bus" sub fx:e
COMP_WORDBREAKS=" " expect "--to=fx:eurusd" --bus "$bus" replay --to=fx:
grep -qxF -- "$bus" <<<"$(offered --bus "")" || fail "--bus <TAB>: bus $bus not offered"
echo "test_completion: ok"
