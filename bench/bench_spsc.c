/*
 * Throughput baseline: a bare single-producer single-consumer ring between
 * two processes, the least a shared-memory queue can cost. Slots of 64-byte
 * blocks (a length word and the payload, rounded up to 64 bytes) in an
 * anonymous shared mapping; the producer fills slot[head & mask] and
 * release-stores head, the consumer acquire-loads head, copies the payload
 * out and release-stores tail. The producer keeps a private copy of tail and
 * reads the consumer's line only when the ring looks full (Aeron's
 * head_cache_position, the Disruptor's gating cache); the consumer does the
 * same with head. It runs under the control block protocol of throughput.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define SPSC_CAPACITY 1024u
#define SPSC_MASK     (SPSC_CAPACITY - 1u)
#define SPSC_ALIGN    64u

/* The shared mapping: control block, head and tail apart, then the slots. */
struct spsc_ring {
    struct bench_tp_shared ctl;
    _Alignas(BENCH_BLOCK) _Atomic uint64_t head; /* producer: slots below are written */
    _Alignas(BENCH_BLOCK) _Atomic uint64_t tail; /* consumer: slots below are read */
};

struct spsc_slot {
    _Atomic uint32_t len;
    uint32_t pad;
    unsigned char data[]; /* len bytes */
};

struct spsc_ctx {
    struct spsc_ring *r;
    unsigned char *slots; /* SPSC_CAPACITY slots of stride bytes */
    uint32_t size;
    uint32_t stride;
    double seconds;
    int pin;
    struct bench_pipe ready; /* consumer -> producer: it is running */
};

static struct spsc_slot *spsc_slot_at(const struct spsc_ctx *c, uint64_t i)
{
    return (struct spsc_slot *)(void *)(c->slots + (size_t)(i & SPSC_MASK) * c->stride);
}

/* Spin until the consumer frees a slot. @return the tail that shows it. */
static uint64_t spsc_wait_room(struct spsc_ring *r, uint64_t head)
{
    uint64_t tail;

    /* acquire: pairs with the consumer's release store of tail; it has
     * finished reading the slot we are about to overwrite. */
    while (head - (tail = atomic_load_explicit(&r->tail, memory_order_acquire)) >= SPSC_CAPACITY)
        bench_cpu_relax();
    return tail;
}

static int spsc_produce_all(struct spsc_ctx *c, const unsigned char *src)
{
    struct spsc_ring *r = c->r;
    uint64_t head = 0, tail_cache = 0, deadline = bench_tp_begin(&r->ctl, c->seconds);

    for (;; head++) {
        struct spsc_slot *s;

        if (head % BENCH_CLOCK_EVERY == 0 && bench_now_ns() >= deadline)
            break;
        /* Full by our private view: only now read the consumer's line. */
        if (head - tail_cache >= SPSC_CAPACITY)
            tail_cache = spsc_wait_room(r, head);
        s = spsc_slot_at(c, head);
        memcpy(s->data, src, c->size);
        /* relaxed: published by the release store of head below. */
        atomic_store_explicit(&s->len, c->size, memory_order_relaxed);
        /* release: pairs with the consumer's acquire load of head; the
         * slot's length and payload are visible before the new head. */
        atomic_store_explicit(&r->head, head + 1, memory_order_release);
    }
    bench_tp_finish(&r->ctl, head, 0);
    return 0;
}

static int spsc_consume_all(struct spsc_ctx *c, unsigned char *dst)
{
    struct spsc_ring *r = c->r;
    uint64_t tail = 0, head_cache = 0, sum = 0;
    int stop = 0;

    for (;;) {
        const struct spsc_slot *s;
        uint32_t len;

        if (tail == head_cache) {
            /* Drained after the producer finished: done. */
            if (stop)
                break;
            /* done first, head second: a head read after done is final. */
            stop = bench_tp_done(&r->ctl);
            /* acquire: pairs with the producer's release store of head. */
            head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
            continue;
        }
        s = spsc_slot_at(c, tail);
        /* relaxed: ordered by the acquire load of head that covered it. */
        len = atomic_load_explicit(&s->len, memory_order_relaxed);
        /* Nothing but the producer writes here: a bad length is a bug. */
        if (len > c->size) {
            fprintf(stderr, "shmbus-bench: spsc slot %llu has length %u\n",
                    (unsigned long long)tail, len);
            return -1;
        }
        memcpy(dst, s->data, len);
        sum += len > 0 ? dst[0] : 0;
        /* release: pairs with the acquire load in spsc_wait_room(); our
         * reads of the slot are done before the producer may reuse it. */
        atomic_store_explicit(&r->tail, ++tail, memory_order_release);
    }
    bench_tp_report(&r->ctl, tail, 0, sum);
    return 0;
}

static int spsc_produce(void *arg)
{
    struct spsc_ctx *c = arg;
    unsigned char *src = bench_calloc(c->size);
    int rc = -1;

    bench_fd_close(&c->ready.wr);
    bench_pin_cpu(c->pin, 0);
    /* No buffer (reported): the parent sees us fail and stops the peer. */
    if (src == NULL)
        return -1;
    memset(src, 0x5a, c->size);
    if (bench_ready_wait(c->ready.rd, 1) == 0)
        rc = spsc_produce_all(c, src);
    free(src);
    return rc;
}

static int spsc_consume(void *arg)
{
    struct spsc_ctx *c = arg;
    unsigned char *dst = bench_calloc(c->size);
    int rc = -1;

    bench_fd_close(&c->ready.rd);
    bench_pin_cpu(c->pin, 1);
    /* No buffer (reported): the parent sees us fail and stops the peer. */
    if (dst == NULL)
        return -1;
    if (bench_ready_post(c->ready.wr) == 0) {
        bench_fd_close(&c->ready.wr);
        rc = spsc_consume_all(c, dst);
    }
    free(dst);
    return rc;
}

int bench_spsc_run(uint32_t size, double seconds, int pin, struct bench_rate *out)
{
    struct spsc_ctx c = {.size = size, .seconds = seconds, .pin = pin, .ready = BENCH_PIPE_INIT};
    struct bench_procs ps = {0};
    size_t len;
    int rc = -1;

    c.stride = (uint32_t)((sizeof(struct spsc_slot) + size + SPSC_ALIGN - 1) & ~(SPSC_ALIGN - 1));
    len = sizeof(struct spsc_ring) + (size_t)SPSC_CAPACITY * c.stride;
    c.r = bench_shared_alloc(len);
    if (c.r == NULL || bench_pipe_open(&c.ready) < 0)
        goto out;
    /* sizeof(struct spsc_ring) is a multiple of BENCH_BLOCK: slots align. */
    c.slots = (unsigned char *)(c.r + 1);
    printf("baseline SPSC ring: %u slots of %u bytes\n", SPSC_CAPACITY, c.stride);
    rc = bench_spawn(&ps, spsc_consume, &c);
    if (rc == 0)
        rc = bench_spawn(&ps, spsc_produce, &c);
    bench_pipe_close(&c.ready);
    if (bench_reap(&ps) < 0)
        rc = -1;
    if (rc == 0)
        bench_tp_read(&c.r->ctl, out);
out:
    bench_pipe_close(&c.ready);
    bench_shared_free(c.r, len);
    return rc;
}
