/* SPDX-License-Identifier: Apache-2.0 */
/* The ring tests' fixture (test_ring.c, test_ring_batch.c): a topic
 * created in the test process with one publisher, and a poll callback
 * that collects what it is given. */
#ifndef SHMBUS_TESTS_RINGTEST_H
#define SHMBUS_TESTS_RINGTEST_H

#include "testutil.h"

struct fx {
    const char *name;
    shmbus_topic *topic;
    shmbus_pub *pub;
};

static inline int fx_make_flags(void **state, uint32_t mode, uint32_t capacity, uint32_t max_msg,
                                uint32_t flags)
{
    struct fx *f = calloc(1, sizeof(*f));
    shmbus_topic_opts o = {.mode = mode,
                           .capacity = capacity,
                           .max_msg_size = max_msg,
                           .max_subscribers = 8,
                           .max_groups = 4,
                           .flags = flags};
    if (f == NULL)
        return -1;
    f->name = tu_name("ring");
    if (shmbus_topic_create(f->name, &o, &f->topic) < 0 || shmbus_pub_create(f->topic, &f->pub) < 0)
        return -1;
    *state = f;
    return 0;
}

static inline int fx_make(void **state, uint32_t mode, uint32_t capacity, uint32_t max_msg)
{
    return fx_make_flags(state, mode, capacity, max_msg, 0);
}

static inline int setup_excl_lossy8(void **state)
{
    return fx_make_flags(state, SHMBUS_LOSSY, 8, 256, SHMBUS_TOPIC_EXCLUSIVE);
}

static inline int setup_excl_reliable8(void **state)
{
    return fx_make_flags(state, SHMBUS_RELIABLE, 8, 256, SHMBUS_TOPIC_EXCLUSIVE);
}

static inline int setup_reliable8(void **state)
{
    return fx_make(state, SHMBUS_RELIABLE, 8, 256);
}

static inline int setup_reliable2(void **state)
{
    return fx_make(state, SHMBUS_RELIABLE, 2, 256);
}

static inline int setup_lossy8(void **state)
{
    return fx_make(state, SHMBUS_LOSSY, 8, 256);
}

static inline int teardown(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        return 0;
    shmbus_pub_destroy(f->pub);
    shmbus_topic_destroy(f->topic);
    tu_release(f->name);
    free(f);
    return 0;
}

static inline void pub_n(struct fx *f, uint64_t first, unsigned n)
{
    uint8_t buf[256];
    for (unsigned i = 0; i < n; i++) {
        uint32_t len = tu_fill(buf, 1, first + i, 16 + (uint32_t)((first + i) % 200));
        assert_shmbus_ok(shmbus_publish(f->pub, buf, len, 0));
    }
}

/* Collects what a poll delivers. */
struct got {
    uint64_t seq[256];
    uint64_t pseq[256];
    uint64_t lost[256];
    unsigned n;
    int stop_after;
};

static inline int collect(const shmbus_msg *m, void *arg)
{
    struct got *g = arg;
    struct tu_payload p = {0};
    assert_true(g->n < 256);
    assert_true(tu_check(m->data, m->len, &p));
    g->seq[g->n] = m->seq;
    g->pseq[g->n] = p.seq;
    g->lost[g->n] = m->lost;
    g->n++;
    return g->stop_after && (int)g->n >= g->stop_after;
}

#define RT(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif
