# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# shellcheck disable=SC2154 # $results, $first, $second: set by the caller
# Sourced by the scripts that measure two things in turn and print the
# medians side by side (bridge.sh, nats.sh). The results file $results
# holds one line per measurement: "MEASUREMENT WHO key=value ...", WHO
# being $first or $second; row prints one line of the table, first over
# second.

# The median of the numbers on standard input ("-" when none).
median() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The values of key $3 in the results of measurement $1 of $2.
values() {
  awk -v m="$1" -v s="$2" -v k="$3" '$1 == m && $2 == s {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$results"
}

# The largest of the numbers on standard input ("-" when none).
largest() {
  sort -g | awk '{ v = $1 } END { print (NR == 0) ? "-" : v }'
}

# row MEASUREMENT KEY LABEL SCALE UNIT [AGGREGATE]: one line of the table,
# the median (or AGGREGATE: largest) of the rounds' values, over SCALE.
row() {
  local a b agg=${6:-median}
  a=$(values "$1" "$first" "$2" | $agg)
  b=$(values "$1" "$second" "$2" | $agg)
  awk -v l="$3" -v a="$a" -v b="$b" -v sc="$4" -v u="$5" 'BEGIN {
    fa = (a == "-") ? "-" : sprintf("%.1f", a / sc); fb = (b == "-") ? "-" : sprintf("%.1f", b / sc)
    r = (a == "-" || b == "-" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b)
    printf "%-44s %14s %14s %8s  %s\n", l, fa, fb, r, u }'
}
