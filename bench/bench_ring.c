/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The floor of every shmbus-bench comparison: a bare single-producer
 * single-consumer ring between two processes that moves each message as one
 * 64-byte cache line. The producer writes 56 bytes of payload into the
 * line and release-stores the message's sequence stamp in word 0 of that
 * same line; the consumer spins on the stamp, copies the line out and
 * release-stores its read count on a line of its own; the producer reads
 * that count only when its private copy says the ring is full (Aeron's
 * head_cache_position). The sleeping variant keeps the layout and adds a
 * flag per side: a side about to sleep stores in its flag the value it
 * waits for (the consumer the sequence whose stamp it wants, the producer
 * the read count that frees its line), looks again and sleeps with
 * FUTEX_WAIT on that word (the stamp, the read count); the other side,
 * after storing exactly that value, finds it in the flag and calls
 * FUTEX_WAKE. Each value is stored once, so a sleeper is woken once per
 * sleep, not once per message, and never on a word it does not sleep on.
 * The ping-pong floors (bench_floor.c) run one ring each way, the
 * throughput floors (bench_spsc.c) one ring.
 */
#include <assert.h>
#include <errno.h>
#include <linux/futex.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

#define RING_MASK (BENCH_RING_SLOTS - 1u)

static_assert((BENCH_RING_SLOTS & RING_MASK) == 0, "ring slots must be a power of two");

/* One message: stamp and a flag in word 0, the payload in the rest. */
struct ring_line {
    _Alignas(BENCH_LINE) _Atomic uint32_t stamp; /* producer: low 32 bits of seq + 1 */
    _Atomic uint32_t last;                       /* producer: 1 on the last message */
    unsigned char data[BENCH_RING_PAYLOAD];
};
static_assert(sizeof(struct ring_line) == BENCH_LINE, "a message is one cache line");
static_assert(offsetof(struct ring_line, stamp) == 0, "the stamp is word 0");
static_assert(offsetof(struct ring_line, data) == 8, "the payload follows word 0");

/* Each word is written by one side only and sits in its own block. A flag
 * holds 0, or the 64-bit value its side sleeps for (never 0: a wanted
 * sequence + 1, a read count of at least 1). */
struct bench_ring {
    _Alignas(BENCH_BLOCK) _Atomic uint32_t read;   /* consumer: low 32 bits of its count */
    _Alignas(BENCH_BLOCK) _Atomic uint64_t csleep; /* consumer: seq + 1 it sleeps for */
    _Alignas(BENCH_BLOCK) _Atomic uint64_t psleep; /* producer: read count it sleeps for */
    _Alignas(BENCH_BLOCK) struct ring_line line[BENCH_RING_SLOTS];
};
static_assert(offsetof(struct bench_ring, csleep) == BENCH_BLOCK, "flags apart from the count");
static_assert(offsetof(struct bench_ring, psleep) == 2 * BENCH_BLOCK,
              "flags on lines of their own");
static_assert(offsetof(struct bench_ring, line) == 3 * BENCH_BLOCK, "lines start on a block");

struct bench_ring *bench_ring_alloc(void)
{
    /* A zeroed mapping is an empty ring: no stamp matches seq 0's (1). */
    return bench_shared_alloc(sizeof(struct bench_ring));
}

void bench_ring_free(struct bench_ring *r)
{
    bench_shared_free(r, sizeof(*r));
}

/* futex(2) on a word of the shared mapping. No FUTEX_PRIVATE_FLAG: the two
 * sides are processes, so the kernel must key the word by its page. */
static int ring_futex(_Atomic uint32_t *word, int op, uint32_t val)
{
    /* EAGAIN: the word changed before we slept; EINTR: a signal. Both mean
     * look again: the kernel compares the word with val under its lock, so
     * a store and wake between our load and the sleep is not lost. */
    if (syscall(SYS_futex, word, op, val, NULL, NULL, 0) < 0 && errno != EAGAIN && errno != EINTR) {
        fprintf(stderr, "shmbus-bench: futex op %d: %s\n", op, strerror(errno));
        return -1;
    }
    return 0;
}

/* Sleep until @p word stops holding @p seen: store @p want (the value the
 * peer's store that we wait for carries) in @p flag, look again, sleep.
 * The flag's store and the re-load are the sleeper's half of the Dekker
 * pair with ring_wake(). */
static int ring_sleep(_Atomic uint32_t *word, uint32_t seen, _Atomic uint64_t *flag, uint64_t want)
{
    int rc = 0;

    /* seq_cst: pairs with the seq_cst load of the flag in ring_wake(); the
     * store must be visible before the re-load below (StoreLoad). */
    atomic_store_explicit(flag, want, memory_order_seq_cst);
    /* seq_cst: the other half of that order; either we see the peer's new
     * value here, or the peer sees our flag and wakes us. */
    if (atomic_load_explicit(word, memory_order_seq_cst) == seen)
        rc = ring_futex(word, FUTEX_WAIT, seen);
    /* relaxed: our own flag; a peer that still sees the value wakes
     * nobody, once. */
    atomic_store_explicit(flag, 0, memory_order_relaxed);
    return rc;
}

/* After a seq_cst store to @p word of the value whose 64-bit form is
 * @p have: wake the peer if it sleeps for exactly that value. */
static int ring_wake(_Atomic uint32_t *word, _Atomic uint64_t *flag, uint64_t have)
{
    /* seq_cst: pairs with the seq_cst store of the flag in ring_sleep(),
     * after our seq_cst store of the word (StoreLoad). */
    if (atomic_load_explicit(flag, memory_order_seq_cst) != have)
        return 0;
    return ring_futex(word, FUTEX_WAKE, 1);
}

/* Producer: wait until the line at p->pos is free (the consumer's count
 * is within a ring of it). */
static int ring_wait_room(struct bench_ring_end *p)
{
    struct bench_ring *r = p->r;

    for (;;) {
        /* acquire: pairs with the consumer's store of read in
         * bench_ring_get(); its copy of the line we reuse is done. */
        uint32_t rd = atomic_load_explicit(&r->read, memory_order_acquire);

        p->cache = p->pos - (uint32_t)((uint32_t)p->pos - rd);
        if (p->pos - p->cache < BENCH_RING_SLOTS)
            return 0;
        if (!p->sleep)
            bench_cpu_relax();
        else if (ring_sleep(&r->read, rd, &r->psleep, p->pos - BENCH_RING_SLOTS + 1) < 0)
            return -1;
    }
}

int bench_ring_put(struct bench_ring_end *p, const void *src, int last)
{
    struct ring_line *l = &p->r->line[p->pos & RING_MASK];
    uint32_t stamp = (uint32_t)(p->pos + 1);

    /* Full by our private view: only now read the consumer's line. */
    if (p->pos - p->cache >= BENCH_RING_SLOTS && ring_wait_room(p) < 0)
        return -1;
    memcpy(l->data, src, BENCH_RING_PAYLOAD);
    /* relaxed: published by the store of the stamp below. */
    atomic_store_explicit(&l->last, last ? 1u : 0u, memory_order_relaxed);
    p->pos++;
    if (!p->sleep) {
        /* release: pairs with the consumer's acquire load of the stamp;
         * the payload is visible before the stamp. */
        atomic_store_explicit(&l->stamp, stamp, memory_order_release);
        return 0;
    }
    /* seq_cst: release for the payload as above, and the store half of
     * the Dekker pair with ring_sleep() (ring_wake() loads the flag). */
    atomic_store_explicit(&l->stamp, stamp, memory_order_seq_cst);
    return ring_wake(&l->stamp, &p->r->csleep, p->pos);
}

/* Consumer: wait until the line at c->pos holds its message. */
static int ring_wait_line(struct bench_ring_end *c, struct ring_line *l, uint32_t want)
{
    uint32_t s;

    /* acquire: pairs with the producer's store of the stamp in
     * bench_ring_put(); the payload it covers is visible. */
    while ((s = atomic_load_explicit(&l->stamp, memory_order_acquire)) != want) {
        if (!c->sleep)
            bench_cpu_relax();
        else if (ring_sleep(&l->stamp, s, &c->r->csleep, c->pos + 1) < 0)
            return -1;
    }
    return 0;
}

int bench_ring_get(struct bench_ring_end *c, void *dst)
{
    struct bench_ring *r = c->r;
    struct ring_line *l = &r->line[c->pos & RING_MASK];
    uint32_t last;

    if (ring_wait_line(c, l, (uint32_t)(c->pos + 1)) < 0)
        return -1;
    memcpy(dst, l->data, BENCH_RING_PAYLOAD);
    /* relaxed: ordered by the acquire load of the stamp. */
    last = atomic_load_explicit(&l->last, memory_order_relaxed);
    c->pos++;
    if (!c->sleep) {
        /* release: pairs with the acquire load in ring_wait_room(); our
         * copy is done before the producer may reuse the line. */
        atomic_store_explicit(&r->read, (uint32_t)c->pos, memory_order_release);
        return last != 0;
    }
    /* seq_cst: release as above, and the store half of the Dekker pair
     * with the producer's ring_sleep() on the count. */
    atomic_store_explicit(&r->read, (uint32_t)c->pos, memory_order_seq_cst);
    if (ring_wake(&r->read, &r->psleep, c->pos) < 0)
        return -1;
    return last != 0;
}
