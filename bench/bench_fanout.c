/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fanout: what a publisher pays per message when many subscribers sleep on
 * the topic. One publisher process publishes paced messages (busy-waiting on
 * the clock between them) and times every shmbus_publish() call; N
 * subscriber processes block (spin_ns = -1) in shmbus_recv() and stop at the
 * message flagged last, or after a stretch of silence. The same run repeats
 * with one subscriber and reports the cost ratio p50(N) / p50(1).
 *
 * --wake-tax measures what sleepers cost the publisher: rounds alternate
 * four phases, no subscriber, one sleeping, N sleeping and N lazy ones
 * (wake_bound_ns: publishers never wake them, they look every bound), and
 * report the ratios N lazy / none and N sleeping / one.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* First payload byte of the last message. */
#define FAN_LAST 0x4cu
/* A subscriber gives up after this much silence (at least). */
#define FAN_IDLE_NS 2000000000ull

#define FAN_ROUNDS_MAX 20
/* --interval-us not given: the default depends on --wake-tax. */
#define FAN_INTERVAL_UNSET UINT64_MAX

/* The phases of a round: how many subscribers, and how they sleep. */
enum fan_kind { FAN_NONE, FAN_ONE, FAN_N, FAN_LAZY, FAN_KINDS };

static const char *const fan_kind_keys[FAN_KINDS] = {"none", "one", "n", "lazy"};

struct fan_opts {
    uint64_t subs;
    uint64_t count;
    uint64_t interval_us; /* FAN_INTERVAL_UNSET until given: 20, or 50 with --wake-tax */
    uint64_t size;
    uint64_t rounds;
    uint64_t lazy_us; /* --wake-tax: the lazy subscribers' wake bound */
    int wake_tax;
    int json;
    int want_pin;
    int pin; /* decided by bench_pin_plan() */
};

/* One process's results, written once by it before it exits. Subscriber
 * i has entry i; the publisher has the last one (delivered = published,
 * first_ns / last_ns = its first and last publish). */
struct fan_result {
    _Atomic uint64_t delivered;
    _Atomic uint64_t lost;
    _Atomic uint64_t first_ns;
    _Atomic uint64_t last_ns;
    _Atomic uint32_t got_last;
    _Atomic uint32_t timed_out;
};

struct fan_ctx {
    const struct fan_opts *o;
    const char *name;
    unsigned nsubs;
    uint64_t wake_bound_ns; /* 0: sleeping subscribers; else lazy ones */
    unsigned index;         /* set before each subscriber's fork */
    uint64_t idle_ns;
    struct bench_pipe ready;   /* subscribers -> publisher, one byte each */
    struct fan_result *res;    /* nsubs + 1 entries, shared */
    _Atomic uint64_t *samples; /* count entries, shared */
};

/* Summary of one phase, for the report. */
struct fan_phase {
    struct bench_stats pub;
    uint64_t delivered_min;
};

static void fan_store(struct fan_result *r, const uint64_t v[4], uint32_t got_last,
                      uint32_t timed_out)
{
    /* relaxed, all: the parent reads them only after waitpid() on us. */
    atomic_store_explicit(&r->delivered, v[0], memory_order_relaxed);
    atomic_store_explicit(&r->lost, v[1], memory_order_relaxed);
    atomic_store_explicit(&r->first_ns, v[2], memory_order_relaxed);
    atomic_store_explicit(&r->last_ns, v[3], memory_order_relaxed);
    atomic_store_explicit(&r->got_last, got_last, memory_order_relaxed);
    atomic_store_explicit(&r->timed_out, timed_out, memory_order_relaxed);
}

static int fan_drain(const struct fan_ctx *c, shmbus_sub *sub, uint8_t *buf)
{
    uint64_t v[4] = {0}; /* delivered, lost, first_ns, last_ns */
    uint32_t got_last = 0, timed_out = 0;
    shmbus_msg info;

    while (!got_last) {
        int rc = shmbus_recv(sub, buf, c->o->size, &info, (int64_t)c->idle_ns);
        /* Silence: the publisher is gone or far behind; report what we have. */
        if (rc == SHMBUS_ERR_TIMEOUT) {
            timed_out = 1;
            break;
        }
        if (rc < 0)
            return bench_fail("fanout subscriber: shmbus_recv", rc);
        v[3] = bench_now_ns();
        if (v[0]++ == 0)
            v[2] = v[3];
        v[1] += info.lost;
        got_last = rc > 0 && buf[0] == FAN_LAST;
    }
    fan_store(&c->res[c->index], v, got_last, timed_out);
    return 0;
}

static int fan_subscribe(void *arg)
{
    struct fan_ctx *c = arg;
    shmbus_sub_opts so = {
        .start = SHMBUS_START_NEXT, .spin_ns = -1, .wake_bound_ns = c->wake_bound_ns};
    struct bench_ep ep = {0};
    uint8_t *buf = bench_calloc(c->o->size);
    int rc = -1;

    /* Subscribers share CPU 1, the publisher has CPU 0: what a publisher
     * pays is then its own work, not the time woken subscribers take from
     * its CPU. */
    bench_pin_cpu(c->o->pin, 1);
    bench_fd_close(&c->ready.rd);
    if (buf == NULL || bench_ep_open(&ep, c->name, 0, &so) < 0)
        goto done;
    /* Our subscriber exists: the publisher may start once all are in. */
    if (bench_ready_post(c->ready.wr) < 0)
        goto done;
    bench_fd_close(&c->ready.wr);
    rc = fan_drain(c, ep.sub, buf);
done:
    bench_ep_close(&ep);
    free(buf);
    return rc;
}

static int fan_publish_all(const struct fan_ctx *c, shmbus_pub *pub, uint8_t *buf)
{
    uint64_t gap = c->o->interval_us * 1000u, next = bench_now_ns();
    uint64_t v[4] = {c->o->count, 0, next, 0}; /* as fan_drain() */

    for (uint64_t i = 0; i < c->o->count; i++) {
        uint64_t t0, t1;
        int rc;

        bench_spin_until(next);
        if (i + 1 == c->o->count)
            buf[0] = FAN_LAST;
        t0 = bench_now_ns();
        rc = shmbus_publish(pub, buf, c->o->size, 0);
        t1 = bench_now_ns();
        if (rc < 0)
            return bench_fail("fanout publisher: shmbus_publish", rc);
        /* relaxed: the parent reads samples only after waitpid() on us. */
        atomic_store_explicit(&c->samples[i], t1 - t0, memory_order_relaxed);
        /* Start to start; a late publish does not make the next one early. */
        next = t0 + gap;
        v[3] = t1;
    }
    fan_store(&c->res[c->nsubs], v, 1, 0);
    return 0;
}

static int fan_publish(void *arg)
{
    struct fan_ctx *c = arg;
    struct bench_ep ep = {0};
    uint8_t *buf = bench_calloc(c->o->size);
    int rc = -1;

    bench_pin_cpu(c->o->pin, 0);
    bench_fd_close(&c->ready.wr);
    bench_samples_touch(c->samples, c->o->count);
    if (buf == NULL || bench_ep_open(&ep, c->name, 1, NULL) < 0)
        goto done;
    if (bench_ready_wait(c->ready.rd, c->nsubs) < 0)
        goto done;
    rc = fan_publish_all(c, ep.pub, buf);
done:
    bench_ep_close(&ep);
    free(buf);
    return rc;
}

/* Fork the subscribers, then the publisher; reap them all. */
static int fan_spawn_all(struct fan_ctx *c)
{
    struct bench_procs ps = {0};
    int rc = bench_pipe_open(&c->ready);

    for (unsigned i = 0; rc == 0 && i < c->nsubs; i++) {
        c->index = i;
        rc = bench_spawn(&ps, fan_subscribe, c);
    }
    if (rc == 0)
        rc = bench_spawn(&ps, fan_publish, c);
    /* Our ends closed, the publisher sees EOF if a subscriber dies early. */
    bench_pipe_close(&c->ready);
    if (bench_reap(&ps) < 0)
        rc = -1;
    return rc;
}

/* Print subscriber @p i's line; its rate counts from the publisher's first
 * publish at @p start to its own last delivery. @return its delivered count. */
static uint64_t fan_print_sub(const struct fan_ctx *c, unsigned i, uint64_t start)
{
    struct fan_result *r = &c->res[i];
    /* relaxed, all: the subscriber was reaped; waitpid() ordered its
     * stores before these loads. */
    uint64_t n = atomic_load_explicit(&r->delivered, memory_order_relaxed);
    uint64_t lost = atomic_load_explicit(&r->lost, memory_order_relaxed);
    uint64_t last = atomic_load_explicit(&r->last_ns, memory_order_relaxed);
    uint32_t timed_out = atomic_load_explicit(&r->timed_out, memory_order_relaxed);
    uint32_t got_last = atomic_load_explicit(&r->got_last, memory_order_relaxed);

    printf("  subscriber %3u: delivered %" PRIu64 "/%" PRIu64 " (%.1f%%), lost %" PRIu64
           ", %.0f msgs/s%s\n",
           i, n, c->o->count, bench_ratio(100.0 * (double)n, (double)c->o->count), lost,
           bench_per_s(n, last > start ? last - start : 0),
           timed_out ? ", timed out" : (got_last ? "" : ", no last message"));
    return n;
}

static int fan_summarize(const struct fan_ctx *c, struct fan_phase *out)
{
    struct fan_result *p = &c->res[c->nsubs];
    /* relaxed: the publisher was reaped; waitpid() ordered its stores. */
    uint64_t start = atomic_load_explicit(&p->first_ns, memory_order_relaxed);
    /* relaxed: as above. */
    uint64_t end = atomic_load_explicit(&p->last_ns, memory_order_relaxed);
    char label[64];

    if (bench_stats_compute(c->samples, c->o->count, &out->pub) < 0)
        return -1;
    snprintf(label, sizeof(label), "publish cost, %u %ssubscriber%s:", c->nsubs,
             c->wake_bound_ns > 0 ? "lazy " : "", c->nsubs == 1 ? "" : "s");
    bench_stats_print(label, &out->pub);
    printf("  publisher: %" PRIu64 " messages in %.3f ms, %.0f msgs/s\n", c->o->count,
           (double)(end - start) / 1e6, bench_per_s(c->o->count, end - start));
    out->delivered_min = UINT64_MAX;
    for (unsigned i = 0; i < c->nsubs; i++) {
        uint64_t n = fan_print_sub(c, i, start);
        if (n < out->delivered_min)
            out->delivered_min = n;
    }
    return 0;
}

/* One phase: a fresh topic, its subscribers and the publisher. */
static int fan_phase_run(const struct fan_opts *o, enum fan_kind k, struct fan_phase *out)
{
    unsigned nsubs = k == FAN_NONE ? 0u : k == FAN_ONE ? 1u : (unsigned)o->subs;
    /* max_subscribers 0 is the default; no phase needs fewer than one. */
    shmbus_topic_opts to = {.mode = SHMBUS_LOSSY,
                            .capacity = BENCH_CAPACITY,
                            .max_msg_size = (uint32_t)o->size,
                            .max_subscribers = nsubs > 0 ? nsubs : 1u};
    struct fan_ctx c = {.o = o,
                        .nsubs = nsubs,
                        .wake_bound_ns = k == FAN_LAZY ? o->lazy_us * 1000u : 0,
                        .ready = BENCH_PIPE_INIT};
    char suffix[16];
    struct bench_topics tp = {0};
    size_t rlen = (nsubs + 1u) * sizeof(*c.res), slen = o->count * sizeof(*c.samples);
    int rc = -1;

    c.idle_ns = o->interval_us * 10000u > FAN_IDLE_NS ? o->interval_us * 10000u : FAN_IDLE_NS;
    c.res = bench_shared_alloc(rlen);
    c.samples = bench_shared_alloc(slen);
    snprintf(suffix, sizeof(suffix), "fanout-%s", fan_kind_keys[k]);
    if (c.res != NULL && c.samples != NULL && bench_topics_add(&tp, suffix, &to) == 0) {
        c.name = tp.name[0];
        rc = fan_spawn_all(&c);
    }
    bench_topics_cleanup(&tp);
    if (rc == 0)
        rc = fan_summarize(&c, out);
    bench_shared_free(c.samples, slen);
    bench_shared_free(c.res, rlen);
    return rc;
}

static void fan_usage(FILE *f)
{
    fputs("usage: shmbus-bench fanout [options]\n"
          "  Per-publish cost with N blocking subscriber processes, then with 1.\n"
          "  --subscribers N     subscriber processes (default 8)\n"
          "  --count M           messages per phase (default 20000)\n"
          "  --interval-us U     pace, microseconds between publishes (default 20;\n"
          "                      50 with --wake-tax)\n"
          "  --size BYTES        payload size, at least 1 (default 64)\n"
          "  --rounds R          alternate the phases R times, report medians (default 3)\n"
          "  --wake-tax          four phases: no subscriber, 1 sleeping, N sleeping and\n"
          "                      N lazy; ratios N lazy / none and N sleeping / 1\n"
          "  --lazy-us U         the lazy subscribers' wake_bound_ns, in microseconds\n"
          "                      (default 10000)\n"
          "  --no-pin            do not pin the publisher to CPU 0, subscribers to CPU 1\n"
          "  --json              print the last line as a JSON object\n"
          "  --help              this text\n",
          f);
}

enum {
    FAN_OPT_SUBS = 256,
    FAN_OPT_COUNT,
    FAN_OPT_INTERVAL,
    FAN_OPT_SIZE,
    FAN_OPT_ROUNDS,
    FAN_OPT_WAKE_TAX,
    FAN_OPT_LAZY,
    FAN_OPT_NOPIN,
    FAN_OPT_JSON
};

static const struct option fan_longopts[] = {
    {"subscribers", required_argument, NULL, FAN_OPT_SUBS},
    {"count", required_argument, NULL, FAN_OPT_COUNT},
    {"interval-us", required_argument, NULL, FAN_OPT_INTERVAL},
    {"size", required_argument, NULL, FAN_OPT_SIZE},
    {"rounds", required_argument, NULL, FAN_OPT_ROUNDS},
    {"wake-tax", no_argument, NULL, FAN_OPT_WAKE_TAX},
    {"lazy-us", required_argument, NULL, FAN_OPT_LAZY},
    {"no-pin", no_argument, NULL, FAN_OPT_NOPIN},
    {"json", no_argument, NULL, FAN_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The numeric options: limits, and where each goes in struct fan_opts. The
 * publisher takes one more process slot than the subscribers; the first
 * payload byte carries the last-message flag, so --size is at least 1. */
static const struct bench_num fan_nums[] = {
    {FAN_OPT_SUBS, 1, BENCH_PROCS_MAX - 1, offsetof(struct fan_opts, subs)},
    {FAN_OPT_COUNT, 1, 100000000, offsetof(struct fan_opts, count)},
    {FAN_OPT_INTERVAL, 0, 1000000, offsetof(struct fan_opts, interval_us)},
    {FAN_OPT_SIZE, 1, BENCH_SIZE_MAX, offsetof(struct fan_opts, size)},
    {FAN_OPT_ROUNDS, 1, FAN_ROUNDS_MAX, offsetof(struct fan_opts, rounds)},
    {FAN_OPT_LAZY, 1, 10000000, offsetof(struct fan_opts, lazy_us)},
};

/* @return 0 to run, 1 after --help, -1 on a bad option. */
static int fan_parse(int argc, char **argv, struct fan_opts *o)
{
    int opt, rc = 0;

    *o = (struct fan_opts){.subs = 8,
                           .count = 20000,
                           .interval_us = FAN_INTERVAL_UNSET,
                           .size = 64,
                           .rounds = 3,
                           .lazy_us = 10000,
                           .want_pin = 1};
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", fan_longopts, NULL)) != -1) {
        rc = bench_num_option(fan_nums, sizeof(fan_nums) / sizeof(fan_nums[0]), fan_longopts,
                              FAN_OPT_SUBS, opt, optarg, o);
        if (rc != 1)
            continue;
        rc = 0;
        if (opt == FAN_OPT_WAKE_TAX)
            o->wake_tax = 1;
        else if (opt == FAN_OPT_NOPIN)
            o->want_pin = 0;
        else if (opt == FAN_OPT_JSON)
            o->json = 1;
        else if (opt == 'h') {
            fan_usage(stdout);
            return 1;
        } else
            return -1;
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "shmbus-bench: fanout: unexpected argument '%s'\n", argv[optind]);
        rc = -1;
    }
    if (o->interval_us == FAN_INTERVAL_UNSET)
        o->interval_us = o->wake_tax ? 50 : 20;
    return rc;
}

/* Medians over the rounds, per phase. */
struct fan_med {
    struct bench_stats pub[FAN_KINDS];
    uint64_t delivered_min; /* fewest messages a subscriber of N got, any round */
};

/* The percentiles of phase @p k for the report, as "<k>_p50_ns", ... */
static void fan_report_phase(struct bench_report *r, const struct fan_med *m, enum fan_kind k)
{
    static const char *const keys[FAN_KINDS][3] = {
        {"none_p50_ns", "none_p99_ns", "none_p999_ns"},
        {"one_p50_ns", "one_p99_ns", "one_p999_ns"},
        {"n_p50_ns", "n_p99_ns", "n_p999_ns"},
        {"lazy_p50_ns", "lazy_p99_ns", "lazy_p999_ns"},
    };

    bench_report_u64(r, keys[k][0], m->pub[k].p50);
    bench_report_u64(r, keys[k][1], m->pub[k].p99);
    bench_report_u64(r, keys[k][2], m->pub[k].p999);
}

static void fan_print_tax(const struct fan_opts *o, const struct fan_med *m)
{
    struct bench_report r = {0};
    double lazy = bench_ratio((double)m->pub[FAN_LAZY].p50, (double)m->pub[FAN_NONE].p50);
    double n = bench_ratio((double)m->pub[FAN_N].p50, (double)m->pub[FAN_ONE].p50);

    printf("medians over %" PRIu64 " rounds: publish p50 with nobody %" PRIu64
           " ns, 1 sleeping %" PRIu64 " ns, %" PRIu64 " sleeping %" PRIu64 " ns, %" PRIu64
           " lazy %" PRIu64 " ns; %" PRIu64 " lazy / none %.3f, %" PRIu64 " sleeping / 1 %.3f\n",
           o->rounds, m->pub[FAN_NONE].p50, m->pub[FAN_ONE].p50, o->subs, m->pub[FAN_N].p50,
           o->subs, m->pub[FAN_LAZY].p50, o->subs, lazy, o->subs, n);
    bench_report_str(&r, "cmd", "fanout");
    bench_report_str(&r, "part", "wake-tax");
    bench_report_u64(&r, "subscribers", o->subs);
    bench_report_u64(&r, "count", o->count);
    bench_report_u64(&r, "interval_us", o->interval_us);
    bench_report_u64(&r, "lazy_us", o->lazy_us);
    for (int k = FAN_NONE; k < FAN_KINDS; k++)
        fan_report_phase(&r, m, (enum fan_kind)k);
    bench_report_f64(&r, "lazy_over_none", lazy);
    bench_report_f64(&r, "n_over_one", n);
    bench_report_u64(&r, "delivered_min", m->delivered_min);
    bench_report_emit(&r, o->json);
}

static void fan_print(const struct fan_opts *o, const struct fan_med *m)
{
    struct bench_report r = {0};
    const struct bench_stats *n = &m->pub[FAN_N], *one = &m->pub[FAN_ONE];
    double ratio = bench_ratio((double)n->p50, (double)one->p50);

    printf("medians over %" PRIu64 " rounds: publish p50 with %" PRIu64 ": %" PRIu64
           " ns, with 1: %" PRIu64 " ns; ratio %.3f\n",
           o->rounds, o->subs, n->p50, one->p50, ratio);
    bench_report_str(&r, "cmd", "fanout");
    bench_report_u64(&r, "subscribers", o->subs);
    bench_report_u64(&r, "count", o->count);
    bench_report_u64(&r, "interval_us", o->interval_us);
    bench_report_u64(&r, "pub_p50_ns", n->p50);
    bench_report_u64(&r, "pub_p99_ns", n->p99);
    bench_report_u64(&r, "pub_p999_ns", n->p999);
    bench_report_u64(&r, "pub1_p50_ns", one->p50);
    bench_report_u64(&r, "pub1_p99_ns", one->p99);
    bench_report_u64(&r, "pub1_p999_ns", one->p999);
    bench_report_f64(&r, "ratio", ratio);
    bench_report_u64(&r, "delivered_min", m->delivered_min);
    bench_report_emit(&r, o->json);
}

/* Each round runs the phases of @p kinds in turn, so all see the same
 * machine; @p m gets the medians of the rounds' percentiles. */
static int fan_rounds(const struct fan_opts *o, const enum fan_kind *kinds, unsigned nk,
                      struct fan_med *m)
{
    struct bench_stats per[FAN_KINDS][FAN_ROUNDS_MAX];
    struct fan_phase ph;

    m->delivered_min = UINT64_MAX;
    for (uint64_t r = 0; r < o->rounds; r++) {
        for (unsigned i = 0; i < nk; i++) {
            enum fan_kind k = kinds[i];
            printf("round %" PRIu64 ", phase %s\n", r + 1, fan_kind_keys[k]);
            if (fan_phase_run(o, k, &ph) < 0)
                return -1;
            per[k][r] = ph.pub;
            /* The N-subscriber phases say whether anyone fell behind. */
            if ((k == FAN_N || k == FAN_LAZY) && ph.delivered_min < m->delivered_min)
                m->delivered_min = ph.delivered_min;
        }
    }
    memset(m->pub, 0, sizeof(m->pub));
    for (unsigned i = 0; i < nk; i++)
        bench_stats_median(per[kinds[i]], o->rounds, &m->pub[kinds[i]]);
    return 0;
}

int bench_cmd_fanout(int argc, char **argv)
{
    static const enum fan_kind plain[] = {FAN_N, FAN_ONE};
    static const enum fan_kind tax[] = {FAN_NONE, FAN_ONE, FAN_N, FAN_LAZY};
    struct fan_opts o;
    struct fan_med m;
    int rc = fan_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    o.pin = bench_pin_plan(o.want_pin);
    printf("fanout: lossy topic, %" PRIu64 "-byte messages, %" PRIu64
           " per phase, one every %" PRIu64 " us; subscribers block (spin_ns = -1)\n",
           o.size, o.count, o.interval_us);
    if (o.wake_tax)
        printf("fanout: wake tax, lazy subscribers with wake_bound_ns %" PRIu64 " us\n", o.lazy_us);
    rc = o.wake_tax ? fan_rounds(&o, tax, 4, &m) : fan_rounds(&o, plain, 2, &m);
    if (rc < 0)
        return BENCH_EXIT_FAIL;
    if (o.wake_tax)
        fan_print_tax(&o, &m);
    else
        fan_print(&o, &m);
    return BENCH_EXIT_OK;
}
