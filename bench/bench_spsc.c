/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Throughput floor: one of bench_ring.c's one-line rings between two
 * processes, the producer putting messages as fast as it can for a fixed
 * time, the consumer getting them. Spinning sides for `throughput`, the
 * sleeping variant (each side sleeps on a futex when it must wait) for
 * `throughput --same-cpu`. It runs under the control block protocol of
 * throughput; the consumer stops at the line marked last, which the
 * producer puts after its deadline.
 */
#include <string.h>

#include "bench.h"

/* The control block, then the ring in a mapping of its own. */
struct spsc_ctx {
    const struct bench_spsc_args *a;
    struct bench_tp_shared *ctl;
    struct bench_ring *r;
    struct bench_pipe ready; /* consumer -> producer: it is running */
};

static int spsc_produce_all(struct spsc_ctx *c)
{
    struct bench_ring_end p = {.r = c->r, .sleep = c->a->sleep};
    unsigned char src[BENCH_RING_PAYLOAD];
    uint64_t n = 0, deadline = bench_tp_begin(c->ctl, c->a->seconds);

    memset(src, 0x5a, sizeof(src));
    for (;; n++) {
        if (n % BENCH_CLOCK_EVERY == 0 && bench_now_ns() >= deadline)
            break;
        if (bench_ring_put(&p, src, 0) < 0)
            return -1;
    }
    /* The last line tells a sleeping consumer to stop; it is counted. */
    if (bench_ring_put(&p, src, 1) < 0)
        return -1;
    bench_tp_finish(c->ctl, n + 1, 0);
    return 0;
}

static int spsc_consume_all(struct spsc_ctx *c)
{
    struct bench_ring_end g = {.r = c->r, .sleep = c->a->sleep};
    unsigned char dst[BENCH_RING_PAYLOAD];
    uint64_t n = 0, sum = 0;
    int rc;

    do {
        rc = bench_ring_get(&g, dst);
        if (rc < 0)
            return -1;
        sum += dst[0];
        n++;
    } while (rc == 0);
    bench_tp_report(c->ctl, n, 0, sum);
    return 0;
}

static int spsc_produce(void *arg)
{
    struct spsc_ctx *c = arg;

    bench_fd_close(&c->ready.wr);
    bench_pin_cpu(c->a->pin, 0);
    if (bench_ready_wait(c->ready.rd, 1) < 0)
        return -1;
    return spsc_produce_all(c);
}

static int spsc_consume(void *arg)
{
    struct spsc_ctx *c = arg;

    bench_fd_close(&c->ready.rd);
    bench_pin_cpu(c->a->pin, bench_cpu_b(c->a->same_cpu));
    if (bench_ready_post(c->ready.wr) < 0)
        return -1;
    bench_fd_close(&c->ready.wr);
    return spsc_consume_all(c);
}

int bench_spsc_run(const struct bench_spsc_args *a, struct bench_rate *out)
{
    struct spsc_ctx c = {.a = a, .ready = BENCH_PIPE_INIT};
    struct bench_procs ps = {0};
    int rc = -1;

    c.ctl = bench_shared_alloc(sizeof(*c.ctl));
    c.r = bench_ring_alloc();
    if (c.ctl == NULL || c.r == NULL || bench_pipe_open(&c.ready) < 0)
        goto out;
    rc = bench_spawn(&ps, spsc_consume, &c);
    if (rc == 0)
        rc = bench_spawn(&ps, spsc_produce, &c);
    bench_pipe_close(&c.ready);
    if (bench_reap(&ps) < 0)
        rc = -1;
    if (rc == 0)
        bench_tp_read(c.ctl, out);
out:
    bench_pipe_close(&c.ready);
    bench_ring_free(c.r);
    bench_shared_free(c.ctl, sizeof(*c.ctl));
    return rc;
}
