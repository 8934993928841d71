/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal --part latency: what a recorder costs the publisher. A paced
 * publisher process (one message every --interval-us, busy-waiting on the
 * clock between them) times each shmbus_publish() call while one subscriber
 * process reads the topic: unrecorded, recording to tmpfs, or recording to
 * the disk (with --sync). The subscriber waits as a recorder in a daemon
 * does: it polls while messages come and sleeps in a wait set (after the
 * default spin) when none do. Rounds rotate the three; the figures are the
 * medians of the rounds' percentiles.
 */
#include <inttypes.h>

#include "bench_journal.h"

/* The subscriber's longest sleep before it looks at the done flag again. */
#define LAT_WAIT_NS 50000000

struct lat_ctx {
    const struct jb_opts *o;
    const char *name;
    const char *dir; /* NULL: unrecorded */
    struct bench_pipe ready;
    struct bench_tp_shared *sh;
    _Atomic uint64_t *samples; /* count entries, shared */
};

/* Poll until the publisher is done and the topic is drained, sleeping in
 * @p ws while nothing is ready. */
static int lat_follow(struct lat_ctx *c, struct jb_rec *r, shmbus_sub *sub, shmbus_waitset *ws)
{
    shmbus_sub *ready;

    for (;;) {
        int n = jb_rec_poll(r, sub);
        if (n < 0)
            return -1;
        if (n > 0)
            continue;
        /* Nothing ready: done is raised after the last publish, so one more
         * empty look after seeing it means the topic is drained. */
        if (bench_tp_done(c->sh) && (n = shmbus_sub_ready(sub)) == 0)
            break;
        if (n < 0)
            return bench_fail("journal latency: shmbus_sub_ready", n);
        n = shmbus_waitset_wait(ws, &ready, 1, LAT_WAIT_NS);
        if (n < 0 && n != SHMBUS_ERR_TIMEOUT)
            return bench_fail("journal latency: shmbus_waitset_wait", n);
    }
    bench_tp_report(c->sh, r->delivered, r->lost, r->sum);
    return 0;
}

static int lat_consume(void *arg)
{
    struct lat_ctx *c = arg;
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT};
    struct bench_ep ep = {0};
    shmbus_waitset *ws = NULL;
    struct jb_rec r;
    int rc = -1;

    bench_fd_close(&c->ready.rd);
    bench_pin_cpu(c->o->pin, 1);
    if (jb_rec_open(&r, c->o, c->dir, c->name) < 0)
        return -1;
    if (bench_ep_open(&ep, c->name, 0, &so) < 0)
        goto done;
    if ((rc = shmbus_waitset_create(&ws)) < 0 || (rc = shmbus_waitset_add(ws, ep.sub)) < 0) {
        rc = bench_fail("journal latency: wait set", rc);
        goto done;
    }
    rc = bench_ready_post(c->ready.wr);
    bench_fd_close(&c->ready.wr);
    if (rc == 0)
        rc = lat_follow(c, &r, ep.sub, ws);
done:
    shmbus_waitset_destroy(ws);
    bench_ep_close(&ep);
    if (jb_rec_close(&r, NULL) < 0)
        rc = -1;
    return rc;
}

static int lat_publish(void *arg, shmbus_pub *pub, uint8_t *buf)
{
    struct lat_ctx *c = arg;
    /* Reliable: wait for room as long as it takes; lossy never waits. */
    int64_t timeout = c->o->mode == SHMBUS_RELIABLE ? -1 : 0;
    uint64_t next = bench_now_ns(), overruns = 0, step = c->o->interval_us * 1000u;

    bench_tp_begin(c->sh, 0.0);
    for (uint64_t i = 0; i < c->o->count; i++) {
        uint64_t t0;
        int rc;
        next += step;
        bench_spin_until(next);
        t0 = bench_now_ns();
        rc = shmbus_publish(pub, buf, c->o->size, timeout);
        /* relaxed: the parent reads the samples after waitpid() on us. */
        atomic_store_explicit(&c->samples[i], bench_now_ns() - t0, memory_order_relaxed);
        if (rc == SHMBUS_ERR_OVERRUN)
            overruns++;
        else if (rc < 0)
            return bench_fail("journal latency: shmbus_publish", rc);
    }
    bench_tp_finish(c->sh, c->o->count, overruns);
    return 0;
}

static int lat_produce(void *arg)
{
    struct lat_ctx *c = arg;

    return jb_produce(c->o, c->name, &c->ready, lat_publish, c);
}

/* One run on a fresh topic (and directory); @p out gets the percentiles. */
static int lat_once(const struct jb_opts *o, enum jb_where w, _Atomic uint64_t *samples,
                    struct bench_stats *out, uint64_t *delivered)
{
    shmbus_topic_opts to = {
        .mode = o->mode, .capacity = BENCH_CAPACITY, .max_msg_size = (uint32_t)o->size};
    struct lat_ctx c = {.o = o, .ready = BENCH_PIPE_INIT, .samples = samples};
    struct bench_topics tp = {0};
    struct bench_rate rate;
    char dir[JB_PATH_MAX];
    int rc = -1;

    c.sh = bench_shared_alloc(sizeof(*c.sh));
    if (c.sh == NULL || bench_topics_add(&tp, "jl", &to) < 0 || bench_pipe_open(&c.ready) < 0 ||
        jb_run_dir(o, w, dir, &c.dir) < 0)
        goto out;
    c.name = tp.name[0];
    rc = jb_spawn_pair(&c.ready, lat_consume, lat_produce, &c);
    if (rc == 0 && (rc = bench_stats_compute(samples, o->count, out)) == 0) {
        bench_tp_read(c.sh, &rate);
        *delivered = rate.delivered;
    }
out:
    if (c.dir != NULL && jb_dir_remove(dir) < 0)
        rc = -1;
    bench_pipe_close(&c.ready);
    bench_topics_cleanup(&tp);
    bench_shared_free(c.sh, sizeof(*c.sh));
    return rc;
}

static void lat_report(const struct jb_opts *o, struct bench_stats med[JB_WHERE])
{
    static const char *const k50[JB_WHERE] = {"none_p50_ns", "tmpfs_p50_ns", "disk_p50_ns"};
    static const char *const k99[JB_WHERE] = {"none_p99_ns", "tmpfs_p99_ns", "disk_p99_ns"};
    static const char *const k999[JB_WHERE] = {"none_p999_ns", "tmpfs_p999_ns", "disk_p999_ns"};
    struct bench_report r = {0};

    for (unsigned w = 0; w < JB_WHERE; w++)
        printf("medians, %-5s publish p50 %" PRIu64 " ns, p99 %" PRIu64 " ns, p99.9 %" PRIu64
               " ns\n",
               jb_where_name[w], med[w].p50, med[w].p99, med[w].p999);
    bench_report_str(&r, "cmd", "journal");
    bench_report_str(&r, "part", "latency");
    bench_report_str(&r, "mode", bench_mode_name(o->mode));
    bench_report_str(&r, "sync", o->sync_name);
    bench_report_u64(&r, "interval_us", o->interval_us);
    for (unsigned w = 0; w < JB_WHERE; w++) {
        bench_report_u64(&r, k50[w], med[w].p50);
        bench_report_u64(&r, k99[w], med[w].p99);
        bench_report_u64(&r, k999[w], med[w].p999);
    }
    bench_report_emit(&r, o->json);
}

static int lat_rounds(const struct jb_opts *o, _Atomic uint64_t *samples)
{
    double p[JB_WHERE][3][JB_ROUNDS_MAX];
    struct bench_stats med[JB_WHERE];

    for (uint64_t i = 0; i < o->rounds; i++) {
        for (unsigned k = 0; k < JB_WHERE; k++) {
            enum jb_where w = (enum jb_where)((i + k) % JB_WHERE);
            struct bench_stats s;
            uint64_t got = 0;
            if (bench_interrupted() || lat_once(o, w, samples, &s, &got) < 0)
                return -1;
            printf("  round %" PRIu64 " %-5s p50 %" PRIu64 " ns, p99 %" PRIu64 " ns, p99.9 %" PRIu64
                   " ns, max %" PRIu64 " ns; %" PRIu64 " received\n",
                   i + 1, jb_where_name[w], s.p50, s.p99, s.p999, s.max, got);
            p[w][0][i] = (double)s.p50;
            p[w][1][i] = (double)s.p99;
            p[w][2][i] = (double)s.p999;
        }
    }
    for (unsigned w = 0; w < JB_WHERE; w++) {
        med[w].p50 = (uint64_t)bench_median(p[w][0], o->rounds);
        med[w].p99 = (uint64_t)bench_median(p[w][1], o->rounds);
        med[w].p999 = (uint64_t)bench_median(p[w][2], o->rounds);
    }
    lat_report(o, med);
    return 0;
}

int jb_latency(const struct jb_opts *o)
{
    size_t len = o->count * sizeof(uint64_t);
    _Atomic uint64_t *samples = bench_shared_alloc(len);
    int rc;

    if (samples == NULL)
        return -1;
    bench_samples_touch(samples, o->count);
    rc = lat_rounds(o, samples);
    bench_shared_free(samples, len);
    return rc;
}
