# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# What the --help texts of shmbusd and shmbus declare, for the tests that
# check the man pages (test_man.sh) and the bash completion
# (test_completion.sh) against them. Sourced.

# help_options: the long options a --help text on stdin defines: every
# --word of its usage line and of its option lines (two spaces, then --;
# continuation lines are indented further), sorted, one a line.
help_options() {
  grep -E '^(usage:|  --[a-z])' | grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' | sort -u
}

# help_commands SHMBUS: the commands `SHMBUS --help` lists, one a line.
help_commands() {
  "$1" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p'
}

# command_options SHMBUS COMMAND: the long options of COMMAND, as
# help_options finds them in `SHMBUS help COMMAND`, and --help, which
# every command takes (checked here), sorted, one a line.
command_options() {
  "$1" "$2" --help >/dev/null || return 1
  { "$1" help "$2" | help_options; echo --help; } | sort -u
}
