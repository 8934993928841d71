/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's pumps (pump.h): each serves up to SBB_PUMP_TOPICS
 * topics. A round polls every topic's shared subscriber, encodes the
 * messages once per kind of receiver (JSON line, RESP message, and the
 * raw payload for pmessage pushes, which carry each pattern), appends them
 * to each subscribed connection's output under its mutex, and then writes
 * each connection once: one system call per connection per round, however
 * many messages. With nothing to deliver the pump sleeps on all its
 * topics' futexes and its bell in one futex_waitv call.
 */
#include "pump.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "out.h"
#include "state.h"
#include "registry/relay.h"
#include "tsan.h"
#include "util/clock.h"
#include "util/vec.h"

/* Longest sleep of a pump with nothing to do: it then looks at its topics
 * and its stop flag again even if no bell or publisher woke it. */
#define PUMP_NAP_NS 1000000000ull

void sbb_pump_batch_free(struct sbb_batch *batch)
{
    free(batch->links);
    free(batch->json);
    free(batch->resp);
    free(batch->raw);
    free(batch->dirty);
    memset(batch, 0, sizeof(*batch));
}

/* shmbus_poll() callback: copy one message out of the ring. */
static int collect(const shmbus_msg *m, void *arg)
{
    struct sbb_batch *bb = arg;

    if (sbb_out_buf_reserve(&bb->raw, &bb->raw_cap, bb->raw_len, m->len) < 0) {
        /* Out of memory: this message is dropped for the bridge's
         * receivers (logged by the caller); the round ends here. */
        bb->failed = 1;
        return 1;
    }
    memcpy(bb->raw + bb->raw_len, m->data, m->len);
    bb->raw_len += m->len;
    bb->seq[bb->n] = m->seq;
    bb->ts[bb->n] = m->timestamp_ns;
    bb->lost[bb->n] = m->lost;
    bb->n++;
    bb->raw_off[bb->n] = bb->raw_len;
    /* A round is also bounded in bytes: its output must not pass a
     * subscriber's limit before anything is written (big messages). */
    return bb->raw_len >= SBB_ROUND_BYTES;
}

/* Encode the round's messages as JSON lines or RESP message pushes. */
static int encode(struct sbb_batch *bb, int json)
{
    const struct sbd_topic *t = bb->bt->t;
    size_t tl = strlen(t->name), max = 0;
    char *o;

    for (unsigned i = 0; i < bb->n; i++) {
        size_t len = bb->raw_off[i + 1] - bb->raw_off[i];

        max += json ? sbb_json_delivery_max(tl, len) : sbb_resp_message_len(0, tl, len);
    }
    if (sbb_out_buf_reserve(json ? &bb->json : &bb->resp, json ? &bb->json_cap : &bb->resp_cap, 0,
                            max) < 0)
        return -1;
    o = json ? bb->json : bb->resp;
    for (unsigned i = 0; i < bb->n; i++) {
        const char *p = bb->raw + bb->raw_off[i];
        size_t len = bb->raw_off[i + 1] - bb->raw_off[i];

        o += json ? sbb_json_delivery(o, t->name, tl, p, len, bb->seq[i], bb->ts[i], bb->lost[i])
                  : sbb_resp_message(o, NULL, 0, t->name, tl, p, len);
    }
    *(json ? &bb->json_len : &bb->resp_len) = (size_t)(o - (json ? bb->json : bb->resp));
    return 0;
}

/* Queue @p c for the write at the end of the round. Under c->mu. */
static void mark_dirty(struct sbb_batch *bb, struct sbb_conn *c)
{
    if (c->mark == bb->mark)
        return;
    if (SB_VEC_RESERVE(bb->dirty, bb->dirty_cap, bb->ndirty, 1, 64) < 0) {
        sbb_out_flush(c); /* write it now instead */
        return;
    }
    c->mark = bb->mark;
    bb->dirty[bb->ndirty++] = c;
}

/* pmessage pushes carry the pattern: encoded per link, into the output. */
static void put_pmessages(struct sbb_batch *bb, struct sbb_conn *c, const struct sbb_sub *s)
{
    const struct sbd_topic *t = bb->bt->t;
    size_t tl = strlen(t->name), need = 0;
    char *o;

    for (unsigned i = 0; i < bb->n; i++)
        need += sbb_resp_message_len(s->len, tl, bb->raw_off[i + 1] - bb->raw_off[i]);
    o = sbb_out_reserve(c, need);
    for (unsigned i = 0; o != NULL && i < bb->n; i++) {
        size_t k = sbb_resp_message(o, s->name, s->len, t->name, tl, bb->raw + bb->raw_off[i],
                                    bb->raw_off[i + 1] - bb->raw_off[i]);

        sbb_out_commit(c, k);
        o += k;
    }
}

/* Append the round's messages to one subscription's connection. */
static void deliver_link(struct sbb_batch *bb, const struct sbb_link *l)
{
    struct sbb_conn *c = l->c;

    pthread_mutex_lock(&c->mu);
    /* Unsubscribed after this round's snapshot: its reply may be queued
     * already, and nothing may follow it. */
    if (l->gone) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (l->proto == SB_BRIDGE_JSON)
        sbb_out_put(c, bb->json, bb->json_len);
    else if (l->s->pattern)
        put_pmessages(bb, c, l->s);
    else
        sbb_out_put(c, bb->resp, bb->resp_len);
    if (!c->dead && !c->doomed) {
        /* relaxed: counters. */
        atomic_fetch_add_explicit(&c->msgs_out, bb->n, memory_order_relaxed);
        mark_dirty(bb, c);
    }
    pthread_mutex_unlock(&c->mu);
}

/* The links to deliver this round to, found after the poll: a
 * subscription that went live before a message was published is in the
 * list by the time that message is polled. Under the read lock. */
static int snapshot(struct sbb_batch *bb, int *json, int *resp)
{
    struct sbb_link *l;

    bb->nlinks = 0;
    *json = *resp = 0;
    sbb_rlist_each (l, nx, &bb->bt->links, struct sbb_link, tnode) {
        if (SB_VEC_RESERVE(bb->links, bb->links_cap, bb->nlinks, 1, 16) < 0)
            return -1;
        bb->links[bb->nlinks++] = l;
        *json |= l->proto == SB_BRIDGE_JSON;
        *resp |= l->proto != SB_BRIDGE_JSON && !l->s->pattern;
    }
    return 0;
}

/*
 * The poll met a cell no protocol step can leave (SHMBUS_ERR_CORRUPT): the
 * library moved the cursor past it and counted the message lost, so the
 * next delivery's lost carries it to JSON subscribers. Counted for
 * shmbus stat (bad_cells), and logged at the 1st,
 * 2nd, 4th, 8th... damaged cell of the topic: a scribbling client cannot
 * flood the log. Under bt->poll_mu.
 */
static void damaged_cell(struct sbd_bridge *b, struct sbb_topic *bt)
{
    uint64_t n = ++bt->bad_cells;

    /* relaxed: a counter (shmbus stat). */
    atomic_fetch_add_explicit(&b->count.bad_cells, 1, memory_order_relaxed);
    if ((n & (n - 1)) != 0)
        return; /* not a power of two: already said */
    sbd_log(SBD_WARN,
            "bridge: topic %s: a damaged cell in the ring: skipped, its message lost to remote "
            "subscribers (%llu damaged cells so far)",
            bt->t->name, (unsigned long long)n);
}

/*
 * The topic's stall timeout evicted the bridge's own slot: the pump fell
 * that far behind a reliable topic. Take a new slot at the next message
 * and go on delivering; what lay between is lost to remote subscribers
 * (logged). Under bt->poll_mu. @return 0, or the new slot's error.
 */
static int rejoin(struct sbb_topic *bt)
{
    shmbus_sub_opts o = {.start = SHMBUS_START_NEXT, .spin_ns = -1};
    shmbus_sub *sub;
    int rc = shmbus_sub_create(bt->t->t, &o, &sub);

    if (rc < 0)
        return rc;
    shmbus_sub_destroy(bt->sub);
    bt->sub = sub;
    sbd_log(SBD_WARN,
            "bridge: topic %s: evicted for falling behind (stall timeout): remote subscribers "
            "go on from the next message, what lay between is lost to them",
            bt->t->name);
    return 0;
}

/* The poll failed with @p rc for good (the topic was removed, or the
 * subscriber cannot read it any more): stop delivering the topic. Under
 * bt->poll_mu. */
static void poll_failed(struct sbb_topic *bt, int rc)
{
    sbd_log(SBD_ERROR, "bridge: topic %s: %s: no more deliveries to remote clients", bt->t->name,
            shmbus_strerror(rc));
    /* Its slot goes: it must not gate a reliable topic it no longer reads. */
    shmbus_sub_destroy(bt->sub);
    bt->sub = NULL;
    bt->failed = 1;
}

int sbb_pump_deliver(struct sbd_bridge *b, struct sbb_batch *bb, struct sbb_topic *bt)
{
    int n, json, resp;

    /* Held: its messages stay in the ring for the subscriptions that
     * will link it. Otherwise it is read even without a live link (the
     * links waiting for their reply start from the next message), so that
     * it never holds a reliable topic's publishers back.
     * acquire: pairs with the release in link.c fresh_done(). */
    if (bt->sub == NULL || bt->failed || sbd_topic_broken(bt->t) ||
        atomic_load_explicit(&bt->hold, memory_order_acquire))
        return 0;
    bb->bt = bt;
    bb->n = 0;
    bb->raw_len = 0;
    bb->raw_off[0] = 0;
    bb->failed = 0;
    n = shmbus_poll(bt->sub, collect, bb, SBB_BATCH);
    if (n == SHMBUS_ERR_CORRUPT) {
        damaged_cell(b, bt);
        return 1; /* the cursor moved: what follows may be ready */
    }
    if (n == SHMBUS_ERR_EVICTED && rejoin(bt) == 0)
        return 1;
    if (n < 0) {
        poll_failed(bt, n);
        return 0;
    }
    if (bb->n > 0 && (snapshot(bb, &json, &resp) < 0 || (json && encode(bb, 1) < 0) ||
                      (resp && encode(bb, 0) < 0))) {
        bb->failed = 1;
        bb->nlinks = 0;
    }
    if (bb->failed)
        sbd_log(SBD_ERROR, "bridge: topic %s: out of memory: messages dropped for remote clients",
                bt->t->name);
    for (size_t i = 0; i < bb->nlinks && bb->n > 0; i++)
        deliver_link(bb, bb->links[i]);
    /* relaxed: a counter. */
    atomic_fetch_add_explicit(&b->count.msgs_out, (uint64_t)bb->n * bb->nlinks,
                              memory_order_relaxed);
    return n;
}

void sbb_pump_flush(struct sbb_batch *bb)
{
    for (size_t i = 0; i < bb->ndirty; i++) {
        struct sbb_conn *c = bb->dirty[i];

        pthread_mutex_lock(&c->mu);
        sbb_out_flush(c);
        pthread_mutex_unlock(&c->mu);
    }
    bb->ndirty = 0;
    bb->mark++;
}

static void topic_free_cb(struct rcu_head *h)
{
    struct sbb_topic *bt = caa_container_of(h, struct sbb_topic, rcu);

    SBD_TSAN_ACQUIRE(bt);
    SBD_TSAN_GRACE();
    pthread_mutex_destroy(&bt->poll_mu);
    free(bt);
}

/* Bring have[] in line with want[], and free the topics taken back. */
static void pump_sync(struct sbb_pump *p)
{
    struct sbb_topic *want[SBB_PUMP_TOPICS], *gone;
    unsigned nwant, k = 0;

    pthread_mutex_lock(&p->mu);
    nwant = p->nwant;
    memcpy(want, p->want, nwant * sizeof(want[0]));
    gone = p->gone;
    p->gone = NULL;
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nhave; i++) {
        int kept = 0;

        for (unsigned j = 0; j < nwant && !kept; j++)
            kept = want[j] == p->have[i];
        if (kept)
            p->have[k++] = p->have[i];
    }
    p->nhave = k;
    for (unsigned j = 0; j < nwant; j++) {
        int known = 0;

        for (unsigned i = 0; i < p->nhave && !known; i++)
            known = p->have[i] == want[j];
        if (!known)
            p->have[p->nhave++] = want[j];
    }
    /* No longer in have[]: after a grace period nobody holds them. */
    while (gone != NULL) {
        struct sbb_topic *bt = gone;

        gone = bt->gone_next;
        SBD_TSAN_RELEASE(bt);
        urcu_memb_call_rcu(&bt->rcu, topic_free_cb);
    }
}

/* sb_relay_wait() callback: is any topic ready? A topic whose lock
 * another thread holds counts as ready: look again after it. */
static int pump_ready(void *arg, memory_order order)
{
    struct sbb_pump *p = arg;

    for (unsigned i = 0; i < p->nhave; i++) {
        struct sbb_topic *bt = p->have[i];
        int r;

        /* acquire: as in sbb_pump_deliver(); a held topic's messages wait. */
        if (sbd_topic_broken(bt->t) || atomic_load_explicit(&bt->hold, memory_order_acquire))
            continue;
        if (pthread_mutex_trylock(&bt->poll_mu) != 0)
            return 1;
        r = bt->failed || bt->sub == NULL ? 0 : sb_relay_sub_ready(bt->sub, order);
        pthread_mutex_unlock(&bt->poll_mu);
        if (r != 0)
            return 1;
    }
    return 0;
}

static void *pump_main(void *arg)
{
    struct sbb_pump *p = arg;
    struct sbd_bridge *b = p->b;

    urcu_memb_register_thread();
    for (;;) {
        uint32_t seen = sb_relay_bell_seen(&p->bell);
        shmbus_topic *topics[SBB_PUMP_TOPICS];
        unsigned nt = 0;
        int busy = 0, rc;

        /* relaxed: ordered through the bell, read after it. sbb_pump_stop()
         * stores stop before ringing (release); if our acquire above saw
         * that ring, this load sees stop; if not, the bell has moved past
         * seen and the wait below returns at once, and the next pass sees
         * both. (Read before the bell, a stop stored in between waited for
         * the nap, PUMP_NAP_NS, per pump.) */
        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
            break;

        pump_sync(p);
        urcu_memb_read_lock();
        for (unsigned i = 0; i < p->nhave; i++) {
            struct sbb_topic *bt = p->have[i];

            /* Its mapping is zeroes now (guard.h), or it is held (the
             * release that ends it rings the bell). acquire: as in
             * sbb_pump_deliver(). */
            if (sbd_topic_broken(bt->t) || atomic_load_explicit(&bt->hold, memory_order_acquire))
                continue;
            topics[nt++] = bt->t->t;
            /* Waits only while the I/O thread delivers for this topic. */
            pthread_mutex_lock(&bt->poll_mu);
            busy |= sbb_pump_deliver(b, &p->batch, bt) > 0;
            pthread_mutex_unlock(&bt->poll_mu);
        }
        sbb_pump_flush(&p->batch);
        SBD_TSAN_READ_DONE();
        urcu_memb_read_unlock();
        if (busy)
            continue;
        /* Counted as a relay: the I/O thread's publishes skip
         * waking us when nobody else sleeps, as it delivers them itself. */
        rc = sb_relay_wait(topics, nt, pump_ready, p, sb_mono_ns() + PUMP_NAP_NS, &p->bell, seen);
        if (rc < 0 && rc != SHMBUS_ERR_TIMEOUT && rc != -EINTR) {
            /* Cannot happen with nt <= SBB_PUMP_TOPICS; never spin. */
            sbd_log(SBD_ERROR, "bridge: pump %u cannot sleep: %s", p->idx, shmbus_strerror(rc));
            usleep(1000);
        }
    }
    /* The I/O thread ended first and took every topic back. */
    pump_sync(p);
    urcu_memb_unregister_thread();
    return NULL;
}

void sbb_pump_ring(struct sbb_pump *p)
{
    /* What the ringer did (want[], stop) is visible to the pump that
     * reads the new value (sb_relay_bell_ring(): release). */
    sb_relay_bell_ring(&p->bell);
}

int sbb_pump_start(struct sbd_bridge *b, unsigned idx)
{
    struct sbb_pump *p = calloc(1, sizeof(*p));
    int rc;

    if (p == NULL)
        return -ENOMEM;
    p->b = b;
    p->idx = idx;
    p->batch.mark = (uint64_t)(idx + 1) << 48;
    pthread_mutex_init(&p->mu, NULL);
    rc = pthread_create(&p->th, NULL, pump_main, p);
    if (rc != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return -rc;
    }
    b->pumps[idx] = p;
    return 0;
}

void sbb_pump_stop(struct sbb_pump *p)
{
    /* relaxed: published by the release of the ring that follows, which
     * pump_main() acquires before its next load of stop. */
    atomic_store_explicit(&p->stop, 1, memory_order_relaxed);
    sbb_pump_ring(p);
    pthread_join(p->th, NULL);
    sbb_pump_batch_free(&p->batch);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void sbb_pump_give(struct sbb_pump *p, struct sbb_topic *bt)
{
    pthread_mutex_lock(&p->mu);
    p->want[p->nwant++] = bt;
    pthread_mutex_unlock(&p->mu);
    sbb_pump_ring(p);
}

void sbb_pump_take(struct sbb_pump *p, struct sbb_topic *bt)
{
    /* The slot goes now, not when the pump gets to it: a client that
     * subscribes and unsubscribes in a loop must not run out of slots, and
     * a reliable topic must not wait for a cursor nobody reads. */
    pthread_mutex_lock(&bt->poll_mu);
    shmbus_sub_destroy(bt->sub);
    bt->sub = NULL;
    pthread_mutex_unlock(&bt->poll_mu);
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < p->nwant; i++) {
        if (p->want[i] == bt) {
            p->want[i] = p->want[--p->nwant];
            break;
        }
    }
    bt->gone_next = p->gone;
    p->gone = bt;
    pthread_mutex_unlock(&p->mu);
    p->assigned--;
    sbb_pump_ring(p);
}
