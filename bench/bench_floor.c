/*
 * Latency floors for pingpong: the least two processes can do for one round
 * trip, measured with the same clock, pinning, count and warm-up as the
 * shmbus run. The spin floor passes a counter through two cache lines; the
 * futex floor passes it through two futex words, waking and sleeping every
 * time, which is what a blocking subscriber pays at best.
 */
#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

/* Each word is written by one side only and sits in its own block. */
struct floor_shared {
    _Alignas(BENCH_BLOCK) _Atomic uint64_t ping;  /* spin: A writes, B reads */
    _Alignas(BENCH_BLOCK) _Atomic uint64_t pong;  /* spin: B writes, A reads */
    _Alignas(BENCH_BLOCK) _Atomic uint32_t fping; /* futex: A writes, B sleeps on it */
    _Alignas(BENCH_BLOCK) _Atomic uint32_t fpong; /* futex: B writes, A sleeps on it */
};

struct floor_ctx {
    const struct bench_floor_args *a;
    struct floor_shared *sh;
};

/* Keep sample @p i (counted from the first round, warm-up included). */
static void floor_record(const struct bench_floor_args *a, uint64_t i, uint64_t rtt)
{
    if (i < a->warmup)
        return;
    /* relaxed: the parent reads samples only after waitpid() on us. */
    atomic_store_explicit(&a->samples[i - a->warmup], rtt / 2, memory_order_relaxed);
}

static int floor_spin_ping(void *arg)
{
    const struct floor_ctx *c = arg;
    uint64_t total = c->a->warmup + c->a->count;

    bench_pin_cpu(c->a->pin, 0);
    bench_samples_touch(c->a->samples, c->a->count);
    for (uint64_t i = 0; i < total; i++) {
        uint64_t t0 = bench_now_ns();
        /* release: pairs with B's acquire load of ping; the hand-off a real
         * message needs, so that the floor pays the same order. */
        atomic_store_explicit(&c->sh->ping, i + 1, memory_order_release);
        /* acquire: pairs with B's release store of pong. */
        while (atomic_load_explicit(&c->sh->pong, memory_order_acquire) != i + 1)
            bench_cpu_relax();
        floor_record(c->a, i, bench_now_ns() - t0);
    }
    return 0;
}

static int floor_spin_echo(void *arg)
{
    const struct floor_ctx *c = arg;
    uint64_t total = c->a->warmup + c->a->count;

    bench_pin_cpu(c->a->pin, 1);
    for (uint64_t i = 0; i < total; i++) {
        /* acquire: pairs with A's release store of ping. */
        while (atomic_load_explicit(&c->sh->ping, memory_order_acquire) != i + 1)
            bench_cpu_relax();
        /* release: pairs with A's acquire load of pong. */
        atomic_store_explicit(&c->sh->pong, i + 1, memory_order_release);
    }
    return 0;
}

/* futex(2) on a word of the shared mapping. No FUTEX_PRIVATE_FLAG: the two
 * sides are processes, so the kernel must key the word by its page. */
static long floor_futex(_Atomic uint32_t *word, int op, uint32_t val)
{
    return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

/* Set @p word to @p v and wake the peer sleeping on it. */
static int floor_futex_post(_Atomic uint32_t *word, uint32_t v)
{
    /* release: pairs with the acquire load in floor_futex_await(). */
    atomic_store_explicit(word, v, memory_order_release);
    if (floor_futex(word, FUTEX_WAKE, 1) < 0) {
        fprintf(stderr, "shmbus-bench: FUTEX_WAKE: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* Sleep on @p word until it holds @p want. */
static int floor_futex_await(_Atomic uint32_t *word, uint32_t want)
{
    uint32_t v;

    /* acquire: pairs with the release store in floor_futex_post(). */
    while ((v = atomic_load_explicit(word, memory_order_acquire)) != want) {
        /* EAGAIN: the word changed before we slept; EINTR: a signal. Both
         * mean look again. The kernel compares the word with v under its
         * lock, so a post between our load and the sleep is not lost. */
        if (floor_futex(word, FUTEX_WAIT, v) < 0 && errno != EAGAIN && errno != EINTR) {
            fprintf(stderr, "shmbus-bench: FUTEX_WAIT: %s\n", strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int floor_futex_ping(void *arg)
{
    const struct floor_ctx *c = arg;
    uint64_t total = c->a->warmup + c->a->count;

    bench_pin_cpu(c->a->pin, 0);
    bench_samples_touch(c->a->samples, c->a->count);
    for (uint64_t i = 0; i < total; i++) {
        uint64_t t0 = bench_now_ns();
        if (floor_futex_post(&c->sh->fping, (uint32_t)(i + 1)) < 0 ||
            floor_futex_await(&c->sh->fpong, (uint32_t)(i + 1)) < 0)
            return -1;
        floor_record(c->a, i, bench_now_ns() - t0);
    }
    return 0;
}

static int floor_futex_echo(void *arg)
{
    const struct floor_ctx *c = arg;
    uint64_t total = c->a->warmup + c->a->count;

    bench_pin_cpu(c->a->pin, 1);
    for (uint64_t i = 0; i < total; i++) {
        if (floor_futex_await(&c->sh->fping, (uint32_t)(i + 1)) < 0 ||
            floor_futex_post(&c->sh->fpong, (uint32_t)(i + 1)) < 0)
            return -1;
    }
    return 0;
}

/* Run side A and side B as two children over a fresh shared block. */
static int floor_run(bench_child_fn side_a, bench_child_fn side_b, const struct bench_floor_args *a)
{
    struct floor_ctx c = {.a = a};
    struct bench_procs ps = {0};
    int rc;

    c.sh = bench_shared_alloc(sizeof(*c.sh));
    if (c.sh == NULL)
        return -1;
    /* No readiness hand-shake needed: B only reacts to A's first store. */
    rc = bench_spawn(&ps, side_b, &c);
    if (rc == 0)
        rc = bench_spawn(&ps, side_a, &c);
    if (bench_reap(&ps) < 0)
        rc = -1;
    bench_shared_free(c.sh, sizeof(*c.sh));
    return rc;
}

int bench_floor_spin(const struct bench_floor_args *a)
{
    return floor_run(floor_spin_ping, floor_spin_echo, a);
}

int bench_floor_futex(const struct bench_floor_args *a)
{
    return floor_run(floor_futex_ping, floor_futex_echo, a);
}
