/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by test_ack.c and test_ack_gone.c: a group-0 view of an
 * acknowledged topic's pending table and cells, made without a daemon
 * (raw_topic, entry_set, cell_reuse), and, with a real shmbusd
 * (daemonclient.h), an acknowledging member of group "jobs", the test's
 * own topic with a publisher, and checked takes.
 */
#ifndef SHMBUS_TESTS_ACKTEST_H
#define SHMBUS_TESTS_ACKTEST_H

#include "daemonclient.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "ring/ring.h"
#include "shm/layout.h"
#include "util/clock.h"

#define CAP       4u
#define MSG_MAX   64u
#define STALL_MS  500u
#define READY_MS  30000
#define GATE_MSGS 20000u
#define GATE_KIDS 3

static inline shmbus_topic *raw_topic(const char *name, uint32_t mode)
{
    shmbus_topic_opts o = {.mode = mode, .capacity = CAP, .max_msg_size = MSG_MAX, .max_groups = 4};
    shmbus_topic *t;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    return t;
}

/* Put entry @p i of group 0 in state @p st with @p seq, @p deliveries and
 * @p reason, as a member or the daemon would have. */
static inline void entry_set(shmbus_topic *t, uint32_t i, uint32_t st, uint64_t seq,
                             uint32_t deliveries, uint32_t reason_or_owner)
{
    struct sb_shm_pending *e = sb_pending(&t->seg, 0, i);
    uint64_t w = atomic_load(&e->word);

    atomic_store(&e->seq, seq);
    atomic_store(&e->not_before, 0);
    atomic_store(&e->word, SB_PEND_WORD(SB_PEND_GEN(w) + 1u, deliveries, reason_or_owner, st));
    if (st == SB_PEND_RETURNED)
        atomic_fetch_add(&t->seg.groups[0].returned, 1);
}

/* Mark entry @p i of group 0 as returned from RESERVED (layout.h). */
static inline void entry_mark(shmbus_topic *t, uint32_t i)
{
    atomic_fetch_or(&sb_pending(&t->seg, 0, i)->word, SB_PEND_COPY);
}

/* Rewrite the cell of @p seq with seq + CAP, as a publisher that scanned
 * the gates before a give-back would (BUSY, bytes, COMMITTED). */
static inline void cell_reuse(shmbus_topic *t, uint64_t seq)
{
    struct sb_shm_cell *c = sb_cell(&t->seg, seq);
    uint8_t buf[MSG_MAX];
    uint32_t len = tu_fill(buf, 1, seq + CAP, 40);

    atomic_store(&c->stamp, SB_STAMP(seq + CAP, SB_ST_BUSY));
    memcpy(c + 1, buf, len);
    c->len = len;
    atomic_store(&c->stamp, SB_STAMP(seq + CAP, SB_ST_COMMITTED));
}

static inline uint32_t entry_state(shmbus_topic *t, uint32_t i)
{
    return SB_PEND_ST(atomic_load(&sb_pending(&t->seg, 0, i)->word));
}

static inline void publish_n(shmbus_pub *pub, uint32_t n, uint64_t first)
{
    uint8_t buf[MSG_MAX];

    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = tu_fill(buf, 1, first + i, 40);
        assert_shmbus_ok(shmbus_publish(pub, buf, len, 0));
    }
}

/* A topic and an acknowledging member of group "jobs" on bus @p bus. */
struct member {
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
};

static inline int member_open(struct member *m, const char *bus, const char *topic,
                              const shmbus_sub_opts *so)
{
    *m = (struct member){0};
    if (connect_retry(bus, &m->bus) < 0 ||
        shmbus_open(m->bus, topic, NULL, SHMBUS_OPEN_NOCREATE, &m->t) < 0)
        return -1;
    return shmbus_sub_create(m->t, so, &m->sub);
}

static inline void member_close(struct member *m)
{
    shmbus_sub_destroy(m->sub);
    shmbus_topic_destroy(m->t);
    shmbus_close(m->bus);
}

static inline shmbus_sub_opts ack_opts(uint32_t inflight)
{
    return (shmbus_sub_opts){
        .group_name = "jobs", .flags = SHMBUS_SUB_ACK, .max_inflight = inflight, .spin_ns = -1};
}

/* The test's own topic on the daemon's bus, and a publisher. */
struct bench {
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
};

static inline void bench_open(struct bench *b, const struct du_daemon *d, const char *topic,
                              uint32_t stall_ms)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE,
                           .capacity = CAP,
                           .max_msg_size = MSG_MAX,
                           .stall_timeout_ms = stall_ms};

    assert_shmbus_ok(connect_retry(d->bus, &b->bus));
    assert_shmbus_ok(shmbus_open(b->bus, topic, &o, 0, &b->t));
    assert_shmbus_ok(shmbus_pub_create(b->t, &b->pub));
}

static inline void bench_close(struct bench *b)
{
    shmbus_pub_destroy(b->pub);
    shmbus_topic_destroy(b->t);
    shmbus_close(b->bus);
}

/* Receive one message within @p timeout_ns: its seq and deliveries. */
static inline int take(shmbus_sub *sub, int64_t timeout_ns, uint64_t *seq, uint32_t *deliveries)
{
    uint8_t buf[MSG_MAX];
    struct tu_payload p;
    shmbus_msg info;
    int n = shmbus_recv(sub, buf, sizeof(buf), &info, timeout_ns);

    if (n < 0)
        return n;
    if (!tu_check(buf, (uint32_t)n, &p) || p.seq != info.seq)
        return SHMBUS_ERR_CORRUPT;
    *seq = info.seq;
    *deliveries = info.deliveries;
    return 0;
}

static inline void expect_take(shmbus_sub *sub, uint64_t seq, uint32_t deliveries)
{
    uint64_t s = 0;
    uint32_t dv = 0;

    assert_shmbus_ok(take(sub, DC_WAIT_NS, &s, &dv));
    assert_int_equal(s, seq);
    assert_int_equal(dv, deliveries);
}

static inline void expect_none(shmbus_sub *sub)
{
    uint64_t s;
    uint32_t dv;

    assert_int_equal(take(sub, 0, &s, &dv), -EAGAIN);
}

/* Group 0's entries in state @p st owned by @p owner (0: by anyone). */
static inline uint32_t entries_in(shmbus_topic *t, uint32_t st, uint32_t owner)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < SB_ACK_ENTRIES; i++) {
        uint64_t w = atomic_load(&sb_pending(&t->seg, 0, i)->word);
        n += SB_PEND_ST(w) == st && (owner == 0 || SB_PEND_OWNER(w) == owner);
    }
    return n;
}

#endif
