/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The latency percentiles of `sub --latency` and `bench` (latency.h): a fixed
 * log-linear histogram, so a run of any length costs the same 30 KiB.
 */
#include "latency.h"

static unsigned latency_index(uint64_t v)
{
    unsigned e;

    /* Small values have a bucket each. */
    if (v < CLI_LAT_SUB)
        return (unsigned)v;
    e = 63u - (unsigned)__builtin_clzll(v); /* >= CLI_LAT_SUB_BITS */
    return CLI_LAT_SUB + (e - CLI_LAT_SUB_BITS) * CLI_LAT_SUB +
           (unsigned)((v >> (e - CLI_LAT_SUB_BITS)) - CLI_LAT_SUB);
}

/* The middle of bucket @p i. */
static uint64_t latency_value(unsigned i)
{
    unsigned shift, sub;

    if (i < CLI_LAT_SUB)
        return i;
    shift = (i - CLI_LAT_SUB) / CLI_LAT_SUB;
    sub = (i - CLI_LAT_SUB) % CLI_LAT_SUB;
    return ((uint64_t)(CLI_LAT_SUB + sub) << shift) + ((1ull << shift) >> 1);
}

void cli_latency_add(struct cli_latency *l, uint64_t now_ns, uint64_t published_ns)
{
    uint64_t v = 0;

    if (now_ns >= published_ns)
        v = now_ns - published_ns;
    else
        l->negative++;
    l->n++;
    if (v > l->max)
        l->max = v;
    l->bucket[latency_index(v)]++;
}

uint64_t cli_latency_quantile(const struct cli_latency *l, double q)
{
    uint64_t rank = (uint64_t)(q * (double)l->n + 0.999999), seen = 0;

    /* No samples: nothing to rank. */
    if (l->n == 0)
        return 0;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < CLI_LAT_BUCKETS; i++) {
        seen += l->bucket[i];
        if (seen >= rank) {
            uint64_t v = latency_value(i);

            return v < l->max ? v : l->max;
        }
    }
    return l->max;
}

void cli_latency_print(const struct cli_latency *l, FILE *f)
{
    static const struct {
        const char *name;
        double q;
    } qs[] = {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}};

    fprintf(f, "latency (us) over %llu message%s:", (unsigned long long)l->n, l->n == 1 ? "" : "s");
    for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        fprintf(f, " %s=%.3f", qs[i].name, (double)cli_latency_quantile(l, qs[i].q) / 1e3);
    fprintf(f, " max=%.3f", (double)l->max / 1e3);
    if (l->negative > 0)
        fprintf(f, " (%llu stamped in the future, counted as 0)", (unsigned long long)l->negative);
    fputc('\n', f);
}
