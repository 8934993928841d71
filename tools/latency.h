/* SPDX-License-Identifier: Apache-2.0 */
/*
 * latency.h - the latency percentiles of `shmbus sub --latency` and
 * `shmbus bench` (one implementation for both): a log-linear
 * histogram of (receive time - publish time) with 64 buckets per power of
 * two (each within 1/64, about 1.6 %, of its values; exact below 64 ns),
 * fixed in size whatever the run's length, and its percentiles.
 */
#ifndef SHMBUS_TOOLS_LATENCY_H
#define SHMBUS_TOOLS_LATENCY_H

#include <stdint.h>
#include <stdio.h>

/* Sub-buckets per power of two: 2^CLI_LAT_SUB_BITS. */
#define CLI_LAT_SUB_BITS 6
#define CLI_LAT_SUB      (1u << CLI_LAT_SUB_BITS)
#define CLI_LAT_BUCKETS  (CLI_LAT_SUB + (64 - CLI_LAT_SUB_BITS) * CLI_LAT_SUB)

struct cli_latency {
    uint64_t n;
    uint64_t max;      /* exact */
    uint64_t negative; /* samples published "after" they arrived (clock stepped): counted as 0 */
    uint64_t bucket[CLI_LAT_BUCKETS];
};

/* Add one sample: @p now_ns minus @p published_ns, both CLOCK_REALTIME. */
void cli_latency_add(struct cli_latency *l, uint64_t now_ns, uint64_t published_ns);

/* The value at quantile @p q (0 < q <= 1) in nanoseconds: the middle of
 * its bucket, never above the exact maximum. 0 with no samples. */
uint64_t cli_latency_quantile(const struct cli_latency *l, double q);

/* Print the one-line summary on @p f: "latency (us) over N messages:
 * p50=X p90=X p99=X p99.9=X max=X", in microseconds with 3 decimals. */
void cli_latency_print(const struct cli_latency *l, FILE *f);

#endif /* SHMBUS_TOOLS_LATENCY_H */
