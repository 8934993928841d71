/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Clock, statistics, report and option helpers of shmbus-bench. Every
 * latency figure the program prints comes from bench_stats_compute(): the
 * per-sample nanoseconds, sorted, read at nearest-rank percentiles. Every
 * command ends with bench_report_emit(), the one machine-readable line.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC is served by the vDSO: no system call. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_spin_until(uint64_t when_ns)
{
    while (bench_now_ns() < when_ns)
        bench_cpu_relax();
}

static int stats_compare(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile num/den of @p n sorted values (n > 0). */
static uint64_t stats_rank(const uint64_t *v, size_t n, uint64_t num, uint64_t den)
{
    uint64_t rank = ((uint64_t)n * num + den - 1) / den;

    return v[rank > 0 ? rank - 1 : 0];
}

int bench_stats_compute(const _Atomic uint64_t *samples, size_t n, struct bench_stats *out)
{
    uint64_t *v;

    memset(out, 0, sizeof(*out));
    /* No samples: nothing to sort; the summary stays all zero. */
    if (n == 0)
        return 0;
    v = malloc(n * sizeof(*v));
    if (v == NULL) {
        fprintf(stderr, "shmbus-bench: no memory to sort %zu samples\n", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        /* relaxed: the child that stored the samples has been reaped, and
         * its exit and our waitpid() order its stores before these loads. */
        v[i] = atomic_load_explicit(&samples[i], memory_order_relaxed);
    }
    qsort(v, n, sizeof(*v), stats_compare);
    out->n = n;
    out->p50 = stats_rank(v, n, 50, 100);
    out->p99 = stats_rank(v, n, 99, 100);
    out->p999 = stats_rank(v, n, 999, 1000);
    out->max = v[n - 1];
    free(v);
    return 0;
}

/* The median of field @p off of @p n summaries (the upper one for even n). */
static uint64_t stats_field_median(const struct bench_stats *per, size_t n, size_t off)
{
    uint64_t v[BENCH_ROUNDS_MAX];

    for (size_t i = 0; i < n; i++)
        v[i] = *(const uint64_t *)(const void *)((const char *)&per[i] + off);
    qsort(v, n, sizeof(*v), stats_compare);
    return v[n / 2];
}

void bench_stats_median(const struct bench_stats *per, size_t n, struct bench_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (n > BENCH_ROUNDS_MAX)
        n = BENCH_ROUNDS_MAX;
    for (size_t i = 0; i < n; i++) {
        out->n += per[i].n;
        if (per[i].max > out->max)
            out->max = per[i].max;
    }
    /* No rounds: nothing to take the median of; the summary stays zero. */
    if (n == 0)
        return;
    out->p50 = stats_field_median(per, n, offsetof(struct bench_stats, p50));
    out->p99 = stats_field_median(per, n, offsetof(struct bench_stats, p99));
    out->p999 = stats_field_median(per, n, offsetof(struct bench_stats, p999));
}

void bench_stats_print(const char *label, const struct bench_stats *s)
{
    printf("%-28s p50 %8" PRIu64 " ns  p99 %8" PRIu64 " ns  p99.9 %8" PRIu64 " ns  max %10" PRIu64
           " ns  (n=%" PRIu64 ")\n",
           label, s->p50, s->p99, s->p999, s->max, s->n);
}

void bench_samples_touch(_Atomic uint64_t *samples, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* relaxed: only faults the page in; the real value overwrites it. */
        atomic_store_explicit(&samples[i], 0, memory_order_relaxed);
    }
}

static int median_compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), median_compare);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double bench_ratio(double num, double den)
{
    return den > 0.0 ? num / den : 0.0;
}

static struct bench_kv *report_append(struct bench_report *r, const char *key)
{
    struct bench_kv *kv;

    /* A full report is a bug in the caller: say so rather than overflow. */
    if (r->n == BENCH_KV_MAX) {
        fprintf(stderr, "shmbus-bench: report full, dropping %s\n", key);
        return NULL;
    }
    kv = &r->kv[r->n++];
    memset(kv, 0, sizeof(*kv));
    kv->key = key;
    return kv;
}

void bench_report_str(struct bench_report *r, const char *key, const char *val)
{
    struct bench_kv *kv = report_append(r, key);

    if (kv == NULL)
        return;
    kv->kind = BENCH_KIND_STR;
    kv->s = val;
}

void bench_report_u64(struct bench_report *r, const char *key, uint64_t val)
{
    struct bench_kv *kv = report_append(r, key);

    if (kv == NULL)
        return;
    kv->kind = BENCH_KIND_U64;
    kv->u = val;
}

void bench_report_f64(struct bench_report *r, const char *key, double val)
{
    struct bench_kv *kv = report_append(r, key);

    if (kv == NULL)
        return;
    kv->kind = BENCH_KIND_F64;
    /* JSON has no inf or nan; a ratio over nothing is reported as 0. */
    kv->f = isfinite(val) ? val : 0.0;
}

static void report_value(const struct bench_kv *kv, int json)
{
    switch (kv->kind) {
    case BENCH_KIND_STR:
        if (json)
            printf("\"%s\"", kv->s);
        else
            fputs(kv->s, stdout);
        break;
    case BENCH_KIND_U64:
        printf("%" PRIu64, kv->u);
        break;
    case BENCH_KIND_F64:
        printf("%.3f", kv->f);
        break;
    }
}

void bench_report_emit(const struct bench_report *r, int json)
{
    if (json)
        fputs("{", stdout);
    for (unsigned i = 0; i < r->n; i++) {
        if (json)
            printf("%s\"%s\":", i > 0 ? "," : "", r->kv[i].key);
        else
            printf("%s%s=", i > 0 ? " " : "", r->kv[i].key);
        report_value(&r->kv[i], json);
    }
    fputs(json ? "}\n" : "\n", stdout);
    fflush(stdout);
}

int bench_parse_u64(const char *arg, const char *opt, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    /* Digits only: strtoull would accept a sign or spaces and wrap "-1". */
    if (arg == NULL || arg[0] < '0' || arg[0] > '9')
        goto bad;
    errno = 0;
    v = strtoull(arg, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    fprintf(stderr, "shmbus-bench: %s wants an integer in %" PRIu64 "..%" PRIu64 ", not '%s'\n",
            opt, min, max, arg != NULL ? arg : "");
    return -1;
}

int bench_num_option(const struct bench_num *nums, size_t n, const struct option *names, int first,
                     int opt, const char *arg, void *dst)
{
    for (size_t i = 0; i < n; i++)
        if (nums[i].opt == opt)
            return bench_parse_u64(arg, names[opt - first].name, nums[i].min, nums[i].max,
                                   (uint64_t *)((char *)dst + nums[i].off));
    return 1;
}

int bench_parse_f64(const char *arg, const char *opt, double min, double max, double *out)
{
    char *end = NULL;
    double v;

    /* Digits (or a leading '.') only, as for integers. */
    if (arg == NULL || !((arg[0] >= '0' && arg[0] <= '9') || arg[0] == '.'))
        goto bad;
    errno = 0;
    v = strtod(arg, &end);
    if (errno != 0 || *end != '\0' || !(v >= min && v <= max))
        goto bad;
    *out = v;
    return 0;
bad:
    fprintf(stderr, "shmbus-bench: %s wants a number in %g..%g, not '%s'\n", opt, min, max,
            arg != NULL ? arg : "");
    return -1;
}

int bench_parse_mode(const char *arg, uint32_t *mode)
{
    if (strcmp(arg, "lossy") == 0) {
        *mode = SHMBUS_LOSSY;
        return 0;
    }
    if (strcmp(arg, "reliable") == 0) {
        *mode = SHMBUS_RELIABLE;
        return 0;
    }
    fprintf(stderr, "shmbus-bench: --mode wants lossy or reliable, not '%s'\n", arg);
    return -1;
}

const char *bench_mode_name(uint32_t mode)
{
    return mode == SHMBUS_RELIABLE ? "reliable" : "lossy";
}

int bench_fail(const char *what, int rc)
{
    fprintf(stderr, "shmbus-bench[%ld]: %s: %s (%d)\n", (long)getpid(), what, shmbus_strerror(rc),
            rc);
    return -1;
}

void *bench_calloc(size_t len)
{
    void *p = calloc(1, len + 1);

    if (p == NULL)
        fprintf(stderr, "shmbus-bench[%ld]: out of memory for %zu bytes\n", (long)getpid(), len);
    return p;
}

double bench_per_s(uint64_t n, uint64_t elapsed_ns)
{
    return bench_ratio((double)n * 1e9, (double)elapsed_ns);
}
