/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stress workers shared by the thread and the process variants. Publishers
 * send self-checking payloads numbered per publisher; subscribers check
 * every payload and the per-publisher order; a shared control block (in
 * memory shared by threads, or an anonymous shared mapping across fork)
 * gathers what was delivered so the driver can check exactly-once (reliable,
 * groups) or delivered + lost = published (lossy).
 */
#ifndef SHMBUS_STRESS_COMMON_H
#define SHMBUS_STRESS_COMMON_H

#include "testutil.h"

#include <stdatomic.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/uio.h>

#define ST_MAX_PUB 4
#define ST_MAX_MSG 50000
#define ST_MAX_LEN 200

struct st_config {
    char name[96];
    uint32_t mode;
    uint32_t capacity;
    int publishers;
    int per_publisher;
    int64_t spin_ns; /* subscribers' wait */
    int batch;       /* > 0: even publishers use shmbus_publish_vec() of up to this many */
    /* Threads share the driver's mapping, so ThreadSanitizer sees every
     * access at one address; processes attach their own (NULL here). */
    shmbus_topic *shared;
};

static inline int st_attach(const struct st_config *cfg, shmbus_topic **t)
{
    if (cfg->shared != NULL) {
        *t = cfg->shared;
        return 0;
    }
    return shmbus_topic_attach(cfg->name, t);
}

static inline void st_detach(const struct st_config *cfg, shmbus_topic *t)
{
    if (cfg->shared == NULL)
        shmbus_topic_destroy(t);
}

/* Shared between all workers. */
struct st_control {
    _Atomic int publishers_done;
    _Atomic int subs_ready;
    int subs_total;
    _Atomic uint64_t group_delivered;
    _Atomic uint64_t group_lost;
    _Atomic uint32_t group_hits[ST_MAX_PUB][ST_MAX_MSG];
    _Atomic int failures;
    char why[256];
};

static inline struct st_control *st_control_new(void)
{
    void *p = mmap(NULL, sizeof(struct st_control), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

static inline void st_fail(struct st_control *c, const char *what, uint64_t a, uint64_t b)
{
    if (atomic_fetch_add(&c->failures, 1) == 0)
        snprintf(c->why, sizeof(c->why), "%s (%llu, %llu)", what, (unsigned long long)a,
                 (unsigned long long)b);
}

struct st_worker {
    const struct st_config *cfg;
    struct st_control *ctl;
    int id;    /* publisher number, or subscriber number */
    int group; /* subscribers: 0 or group index */
};

/* The length of publisher @p w's message @p k. */
static inline uint32_t st_len(const struct st_worker *w, int k)
{
    return 24 + (uint32_t)((k * 37 + w->id * 11) % (ST_MAX_LEN - 24));
}

#define ST_BATCH_MAX 8

/* Publish messages @p k.. in one batch of up to cfg->batch. @return how
 * many went out (>= 1), or an error. */
static int st_publish_batch(struct st_worker *w, shmbus_pub *pub, int k, int64_t timeout)
{
    uint8_t bufs[ST_BATCH_MAX][ST_MAX_LEN];
    struct iovec iov[ST_BATCH_MAX];
    unsigned n = 0;

    while ((int)n < w->cfg->batch && n < ST_BATCH_MAX && k + (int)n < w->cfg->per_publisher) {
        iov[n].iov_base = bufs[n];
        iov[n].iov_len = tu_fill(bufs[n], (uint32_t)w->id, (uint64_t)k + n, st_len(w, k + (int)n));
        n++;
    }
    return shmbus_publish_vec(pub, iov, n, timeout);
}

static int st_publish_all(struct st_worker *w, shmbus_pub *pub)
{
    uint8_t buf[ST_MAX_LEN];
    int zero_copy = w->id & 1, batch = w->cfg->batch > 0 && !zero_copy;

    for (int k = 0; k < w->cfg->per_publisher; k++) {
        uint32_t len = st_len(w, k);
        int64_t timeout = w->cfg->mode == SHMBUS_RELIABLE ? -1 : 0;
        int rc;
        if (batch) {
            rc = st_publish_batch(w, pub, k, timeout);
            if (rc > 0)
                k += rc - 1;
        } else if (zero_copy) {
            shmbus_claim c;
            rc = shmbus_pub_claim(pub, &c, timeout);
            if (rc == 0)
                rc = shmbus_pub_commit(pub, &c, tu_fill(c.data, (uint32_t)w->id, (uint64_t)k, len));
        } else {
            rc = shmbus_publish(pub, buf, tu_fill(buf, (uint32_t)w->id, (uint64_t)k, len), timeout);
        }
        /* Lossy: a message overtaken in its cell is dropped and counted. */
        if (rc < 0 && !(rc == SHMBUS_ERR_OVERRUN && w->cfg->mode == SHMBUS_LOSSY)) {
            st_fail(w->ctl, "publish failed", (uint64_t)w->id, (uint64_t)-rc);
            return 1;
        }
    }
    return 0;
}

static inline int st_publisher(void *arg)
{
    struct st_worker *w = arg;
    shmbus_topic *t;
    shmbus_pub *pub;
    int rc;

    if (st_attach(w->cfg, &t) < 0 || shmbus_pub_create(t, &pub) < 0) {
        st_fail(w->ctl, "publisher attach", (uint64_t)w->id, 0);
        return 1;
    }
    /* Reliable subscribers must be attached before the first message. */
    while (atomic_load(&w->ctl->subs_ready) < w->ctl->subs_total && !atomic_load(&w->ctl->failures))
        sched_yield();
    rc = st_publish_all(w, pub);
    shmbus_pub_destroy(pub);
    st_detach(w->cfg, t);
    atomic_fetch_add(&w->ctl->publishers_done, 1);
    return rc;
}

struct st_seen {
    struct st_worker *w;
    int late; /* joined mid-stream: each publisher's first seq is free */
    uint8_t started[ST_MAX_PUB];
    int64_t next[ST_MAX_PUB]; /* next expected per-publisher seq */
    uint64_t delivered;
};

static int st_on_msg(const shmbus_msg *m, void *arg)
{
    struct st_seen *s = arg;
    struct tu_payload p;
    int reliable = s->w->cfg->mode == SHMBUS_RELIABLE;

    if (!tu_check(m->data, m->len, &p) || p.publisher >= (uint32_t)s->w->cfg->publishers ||
        p.seq >= (uint64_t)s->w->cfg->per_publisher) {
        st_fail(s->w->ctl, "corrupt payload", m->seq, m->len);
        return 1;
    }
    if (s->late && !s->started[p.publisher])
        s->next[p.publisher] = (int64_t)p.seq;
    s->started[p.publisher] = 1;
    /* Per publisher: in order; reliable and plain subscribers also gapless. */
    if ((int64_t)p.seq < s->next[p.publisher] ||
        (reliable && !s->w->group && (int64_t)p.seq != s->next[p.publisher])) {
        st_fail(s->w->ctl, "out of order or duplicate", p.publisher, p.seq);
        return 1;
    }
    s->next[p.publisher] = (int64_t)p.seq + 1;
    s->delivered++;
    if (s->w->group) {
        atomic_fetch_add(&s->w->ctl->group_hits[p.publisher][p.seq], 1);
        atomic_fetch_add(&s->w->ctl->group_delivered, 1);
    }
    return 0;
}

/* Done when the publishers are and nothing is left for us. */
static int st_sub_done(struct st_worker *w, shmbus_topic *t, shmbus_sub *sub, struct st_seen *s)
{
    uint64_t total = (uint64_t)w->cfg->publishers * (uint64_t)w->cfg->per_publisher;
    shmbus_topic_info ti;
    shmbus_sub_stats st;

    if (w->cfg->mode == SHMBUS_RELIABLE)
        return (w->group ? atomic_load(&w->ctl->group_delivered) : s->delivered) >= total;
    if (atomic_load(&w->ctl->publishers_done) < w->cfg->publishers)
        return 0;
    shmbus_topic_info_get(t, &ti);
    shmbus_sub_stats_get(sub, &st);
    return st.position >= ti.published && shmbus_sub_ready(sub) == 0;
}

static int st_check_totals(struct st_worker *w, shmbus_topic *t, shmbus_sub *sub, struct st_seen *s)
{
    uint64_t total = (uint64_t)w->cfg->publishers * (uint64_t)w->cfg->per_publisher;
    shmbus_topic_info ti;
    shmbus_sub_stats st;

    shmbus_topic_info_get(t, &ti);
    shmbus_sub_stats_get(sub, &st);
    if (st.received != s->delivered) {
        st_fail(w->ctl, "received counter", st.received, s->delivered);
        return 1;
    }
    if (w->group) {
        atomic_fetch_add(&w->ctl->group_lost, st.lost);
        return 0; /* checked across members by the driver */
    }
    if (w->cfg->mode == SHMBUS_RELIABLE ? (st.received != total || st.lost != 0)
                                        : (st.received + st.lost != ti.published)) {
        st_fail(w->ctl, "delivered + lost != published", st.received + st.lost, ti.published);
        return 1;
    }
    return 0;
}

static int st_consume(struct st_worker *w, shmbus_topic *t, shmbus_sub *sub)
{
    struct st_seen s = {.w = w};
    shmbus_waitset *ws;
    shmbus_sub *ready;
    int rc = 0;

    if (shmbus_waitset_create(&ws) < 0 || shmbus_waitset_add(ws, sub) < 0)
        return 1;
    while (rc == 0 && !st_sub_done(w, t, sub, &s) && atomic_load(&w->ctl->failures) == 0) {
        rc = shmbus_poll(sub, st_on_msg, &s, 64);
        if (rc < 0) {
            st_fail(w->ctl, "poll error", (uint64_t)w->id, (uint64_t)-rc);
            break;
        }
        /* Nothing ready: wait (spin, then sleep) at most 20 ms. */
        if (rc == 0)
            shmbus_waitset_wait(ws, &ready, 1, 20000000);
        rc = 0;
    }
    shmbus_waitset_destroy(ws);
    if (rc < 0 || atomic_load(&w->ctl->failures))
        return 1;
    return st_check_totals(w, t, sub, &s);
}

/* A subscriber attaches, says it is ready, then consumes until done. */
static inline int st_subscriber(void *arg)
{
    struct st_worker *w = arg;
    shmbus_sub_opts so = {.spin_ns = w->cfg->spin_ns, .group = (uint32_t)w->group};
    shmbus_topic *t;
    shmbus_sub *sub;
    int rc;

    if (st_attach(w->cfg, &t) < 0 || shmbus_sub_create(t, &so, &sub) < 0) {
        st_fail(w->ctl, "subscriber attach", (uint64_t)w->id, 0);
        atomic_fetch_add(&w->ctl->subs_ready, 1);
        return 1;
    }
    atomic_fetch_add(&w->ctl->subs_ready, 1);
    rc = st_consume(w, t, sub);
    shmbus_sub_destroy(sub);
    st_detach(w->cfg, t);
    return rc;
}

/* After all workers: each group message delivered once (reliable) or at
 * most once (lossy). */
static inline void st_check_group(const struct st_config *cfg, struct st_control *ctl,
                                  uint64_t published)
{
    uint64_t hits = 0;
    for (int p = 0; p < cfg->publishers; p++) {
        for (int k = 0; k < cfg->per_publisher; k++) {
            uint32_t h = atomic_load(&ctl->group_hits[p][k]);
            if (h > 1 || (cfg->mode == SHMBUS_RELIABLE && h != 1))
                fail_msg("group delivered publisher %d seq %d %u times", p, k, h);
            hits += h;
        }
    }
    assert_int_equal(hits, atomic_load(&ctl->group_delivered));
    assert_int_equal(hits + atomic_load(&ctl->group_lost), published);
}

#endif
