/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Latency floors for pingpong: the least two processes can do for one round
 * trip, measured with the same clock, pinning, count and warm-up as the
 * shmbus run. Both pass one-line messages over two of bench_ring.c's rings,
 * one each way: A puts on ping and gets from pong, B gets from ping and
 * puts on pong. The spin floor spins on the stamps; the futex floor uses
 * the rings' sleeping variant, each side sleeping at once when its line is
 * not there, which is what a blocking subscriber pays at best.
 */
#include <string.h>

#include "bench.h"

struct floor_ctx {
    const struct bench_floor_args *a;
    struct bench_ring *ping; /* A -> B */
    struct bench_ring *pong; /* B -> A */
    int sleep;               /* the rings' sleeping variant */
};

/* Keep sample @p i (counted from the first round, warm-up included). */
static void floor_record(const struct bench_floor_args *a, uint64_t i, uint64_t rtt)
{
    if (i < a->warmup)
        return;
    /* relaxed: the parent reads samples only after waitpid() on us. */
    atomic_store_explicit(&a->samples[i - a->warmup], rtt / 2, memory_order_relaxed);
}

static int floor_ping(void *arg)
{
    const struct floor_ctx *c = arg;
    struct bench_ring_end out = {.r = c->ping, .sleep = c->sleep};
    struct bench_ring_end in = {.r = c->pong, .sleep = c->sleep};
    unsigned char buf[BENCH_RING_PAYLOAD];
    uint64_t total = c->a->warmup + c->a->count;

    bench_pin_cpu(c->a->pin, 0);
    bench_samples_touch(c->a->samples, c->a->count);
    memset(buf, 0x5a, sizeof(buf));
    for (uint64_t i = 0; i < total; i++) {
        uint64_t t0 = bench_now_ns();
        if (bench_ring_put(&out, buf, 0) < 0 || bench_ring_get(&in, buf) < 0)
            return -1;
        floor_record(c->a, i, bench_now_ns() - t0);
    }
    return 0;
}

static int floor_echo(void *arg)
{
    const struct floor_ctx *c = arg;
    struct bench_ring_end in = {.r = c->ping, .sleep = c->sleep};
    struct bench_ring_end out = {.r = c->pong, .sleep = c->sleep};
    unsigned char buf[BENCH_RING_PAYLOAD];
    uint64_t total = c->a->warmup + c->a->count;

    bench_pin_cpu(c->a->pin, bench_cpu_b(c->a->same_cpu));
    for (uint64_t i = 0; i < total; i++)
        if (bench_ring_get(&in, buf) < 0 || bench_ring_put(&out, buf, 0) < 0)
            return -1;
    return 0;
}

/* Run A and B as two children over two fresh rings. */
static int floor_run(const struct bench_floor_args *a, int sleep)
{
    struct floor_ctx c = {.a = a, .sleep = sleep};
    struct bench_procs ps = {0};
    int rc = -1;

    c.ping = bench_ring_alloc();
    c.pong = bench_ring_alloc();
    if (c.ping == NULL || c.pong == NULL)
        goto out;
    /* No readiness hand-shake needed: B only reacts to A's first line. */
    rc = bench_spawn(&ps, floor_echo, &c);
    if (rc == 0)
        rc = bench_spawn(&ps, floor_ping, &c);
    if (bench_reap(&ps) < 0)
        rc = -1;
out:
    bench_ring_free(c.ping);
    bench_ring_free(c.pong);
    return rc;
}

int bench_floor_spin(const struct bench_floor_args *a)
{
    return floor_run(a, 0);
}

int bench_floor_futex(const struct bench_floor_args *a)
{
    return floor_run(a, 1);
}
