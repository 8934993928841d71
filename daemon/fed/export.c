/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation's export over core NATS (export.h): the exporter threads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fed/export.h"
#include "fed/link.h"
#include "fed/meta.h"
#include "fed/state.h"
#include "log.h"
#include "registry/relay.h"
#include "util/clock.h"

/* The longest an exporter sleeps before it looks at its topics again. */
#define EXPORT_NAP_NS 1000000000ull

/* Give back @p ft's subscriber, if it has one: its slot stops gating at
 * once, and the topic's count of subscribers (shmbus stat's SUBS, which
 * counts the exporter's slot like any other) goes down. Under poll_mu, or
 * once no exporter runs. */
static void export_sub_drop(struct sbf_topic *ft)
{
    if (ft->sub == NULL)
        return;
    shmbus_sub_destroy(ft->sub);
    ft->sub = NULL;
    /* relaxed: a monitoring count, as the control thread's. */
    atomic_fetch_sub_explicit(&ft->t->subscribers, 1, memory_order_relaxed);
}

/* A poll's messages stop being gathered past these bytes (the one that
 * crosses it included): what a batch holds in copies is bounded. */
#define EXPORT_BATCH_BYTES (1u << 20)

/* One poll's context. */
struct export_round {
    struct sbd_fed *f;
    struct sbf_topic *ft;
    natsConnection *nc; /* NULL or never connected yet: everything is lost_out */
    int64_t max_payload;
    /* The poll's messages, copied with their headers: sent only once the
     * poll says its reads were not overwritten (not evicted meanwhile). */
    natsMsg *batch[SBF_EXPORT_BATCH];
    uint64_t seqs[SBF_EXPORT_BATCH];
    unsigned nb;
    size_t bytes;
};

natsStatus sbf_export_msg(const struct sbf_meta *m, const char *topic, const char *subject,
                          const void *data, uint32_t len, natsMsg **out)
{
    struct sbf_meta_text x;
    natsStatus s;

    *out = NULL;
    sbf_meta_encode(m, topic, &x);
    s = natsMsg_Create(out, subject, NULL, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, SBF_HDR_ORIGIN, m->origin);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, SBF_HDR_EPOCH, x.epoch);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, SBF_HDR_SEQ, x.seq);
    if (s == NATS_OK && m->has_prev)
        s = natsMsgHeader_Set(*out, SBF_HDR_PREV, x.prev);
    /* The seqs of the topic's imported messages, never sent, lie between
     * ours: the count lets importers tell those from messages lost. */
    if (s == NATS_OK && m->has_count)
        s = natsMsgHeader_Set(*out, SBF_HDR_COUNT, x.count);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, SBF_HDR_TIME, x.time);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, SBF_HDR_PID, x.pid);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, SBF_HDR_MSG_ID, x.msg_id);
    if (s != NATS_OK) {
        natsMsg_Destroy(*out);
        *out = NULL;
    }
    return s;
}

/* Copy one message into a NATS message with its headers.
 * @return 0, or a cnats status (nothing made). */
static natsStatus export_make(struct export_round *r, const shmbus_msg *msg, natsMsg **out)
{
    struct sbf_topic *ft = r->ft;
    struct sbf_meta m = {.epoch = ft->epoch,
                         .seq = msg->seq,
                         .count = ft->taken,
                         .has_count = 1,
                         .time_ns = msg->timestamp_ns,
                         .pid = msg->publisher_pid};

    memcpy(m.origin, r->f->cfg->nats_origin, sizeof(m.origin));
    return sbf_export_msg(&m, ft->t->name, ft->subject, msg->data, msg->len, out);
}

/* After the poll: publish the batch (@p send), or drop it, lost_out (its
 * reads may have been overwritten). */
static void export_flush(struct export_round *r, int send)
{
    struct sbf_topic *ft = r->ft;

    for (unsigned i = 0; i < r->nb; i++) {
        natsStatus s = send ? natsConnection_PublishMsg(r->nc, r->batch[i]) : NATS_OK;

        natsMsg_Destroy(r->batch[i]);
        if (send && s == NATS_OK) {
            sbf_count(&ft->count.msgs_out, 1);
            continue;
        }
        sbf_count(&ft->count.lost_out, 1);
        if (send)
            sbf_fed_warn(r->f, SBF_WARN_SEND,
                         "nats: topic %s: message seq %llu not sent: %s (lost_out)", ft->t->name,
                         (unsigned long long)r->seqs[i], natsStatus_GetText(s));
    }
    if (!send && r->nb > 0)
        sbf_fed_warn(r->f, SBF_WARN_SEND,
                     "nats: topic %s: %u messages read as the exporter was evicted not sent: "
                     "they may have been overwritten (lost_out)",
                     ft->t->name, r->nb);
    r->nb = 0;
    r->bytes = 0;
}

/* shmbus_poll() callback. */
static int export_one(const shmbus_msg *msg, void *arg)
{
    struct export_round *r = arg;
    struct sbf_topic *ft = r->ft;
    natsStatus s;

    ft->next = msg->seq + 1;
    /* Shmbus-Count: what this exporter took for export, sent or lost on
     * this side (overtaken in the ring, refused), so that importers count
     * those too; imported messages, never sent, are not in it. */
    if (msg->lost > 0) {
        sbf_count(&ft->count.lost_out, msg->lost); /* overtaken before we read them */
        ft->taken += msg->lost;
    }
    if (msg->flags & SHMBUS_MSG_IMPORTED)
        return 0; /* never sent out again: no loops */
    ft->taken++;
    if (r->nc == NULL) {
        sbf_count(&ft->count.lost_out, 1);
        sbf_fed_warn(r->f, SBF_WARN_SEND,
                     "nats: topic %s: message seq %llu not sent: not connected to NATS yet "
                     "(lost_out)",
                     ft->t->name, (unsigned long long)msg->seq);
        return 0;
    }
    if (r->max_payload > 0 && (int64_t)msg->len > r->max_payload) {
        sbf_count(&ft->count.lost_out, 1);
        sbf_fed_warn(r->f, SBF_WARN_SEND,
                     "nats: topic %s: message seq %llu of %u bytes is over the server's "
                     "max_payload (%lld): not sent (lost_out)",
                     ft->t->name, (unsigned long long)msg->seq, msg->len,
                     (long long)r->max_payload);
        return 0;
    }
    s = export_make(r, msg, &r->batch[r->nb]);
    if (s != NATS_OK) {
        sbf_count(&ft->count.lost_out, 1);
        sbf_fed_warn(r->f, SBF_WARN_SEND,
                     "nats: topic %s: message seq %llu not sent: %s (lost_out)", ft->t->name,
                     (unsigned long long)msg->seq, natsStatus_GetText(s));
        return 0;
    }
    r->seqs[r->nb++] = msg->seq;
    r->bytes += msg->len;
    /* Stop the poll when the batch is full (by count or bytes). */
    return r->nb == SBF_EXPORT_BATCH || r->bytes >= EXPORT_BATCH_BYTES;
}

/* The subscriber was evicted (it stalled a reliable topic past its stall
 * timeout): a new one goes on from the next message. What lay between is
 * lost_out, and in Shmbus-Count, so that importers count it too (as
 * messages the ring overtook, some may have been imported ones). Under
 * poll_mu. */
static int export_rejoin(struct sbf_topic *ft)
{
    shmbus_sub_opts o = {.start = SHMBUS_START_NEXT};
    shmbus_sub *sub;
    uint64_t to, skipped;
    int rc = shmbus_sub_create(ft->t->t, &o, &sub);

    if (rc < 0)
        return rc;
    /* From the last message read (the evicted subscriber's own position
     * may have moved past what it delivered) to the new one's start. */
    to = sb_relay_sub_held(sub);
    skipped = to > ft->next ? to - ft->next : 0;
    ft->next = to;
    shmbus_sub_destroy(ft->sub);
    ft->sub = sub;
    sbf_count(&ft->count.lost_out, skipped);
    ft->taken += skipped;
    sbd_log(SBD_WARN,
            "nats: topic %s: exporter evicted for falling behind: it goes on from the "
            "next message, the %llu between are not exported (lost_out)",
            ft->t->name, (unsigned long long)skipped);
    return 0;
}

/* Export what is ready on @p ft. Under the read lock and poll_mu.
 * @return above 0 if it took messages (poll again before sleeping). */
static int export_topic(struct export_round *r)
{
    struct sbf_topic *ft = r->ft;
    int n;

    if (!ft->warned_size && r->max_payload > 0 &&
        (int64_t)ft->t->info.max_msg_size > r->max_payload) {
        ft->warned_size = 1;
        sbd_log(
            SBD_WARN,
            "nats: topic %s: messages may be up to %u bytes, over the server's max_payload %lld: "
            "longer ones will not be exported (lost_out)",
            ft->t->name, ft->t->info.max_msg_size, (long long)r->max_payload);
    }
    n = shmbus_poll(ft->sub, export_one, r, SBF_EXPORT_BATCH);
    /* Reading in place, a subscriber evicted during the poll may have read
     * cells a publisher was overwriting: the poll says so, and then none
     * of its copies go out. */
    export_flush(r, n >= 0);
    if (n == SHMBUS_ERR_CORRUPT) {
        sbf_count(&ft->count.lost_out, 1);
        sbf_fed_warn(r->f, SBF_WARN_SEND, "nats: topic %s: a damaged cell skipped (lost_out)",
                     ft->t->name);
        return 1;
    }
    if (n == SHMBUS_ERR_EVICTED && export_rejoin(ft) == 0)
        return 1;
    if (n < 0) {
        sbd_log(SBD_ERROR, "nats: topic %s: %s: no more exports", ft->t->name, shmbus_strerror(n));
        export_sub_drop(ft);
        atomic_store_explicit(&ft->ended, 1, memory_order_relaxed);
        return 0;
    }
    return n;
}

/* Bring have[] in line with want[]. */
static void exporter_sync(struct sbf_exporter *e)
{
    pthread_mutex_lock(&e->mu);
    memcpy(e->have, e->want, e->nwant * sizeof(e->want[0]));
    e->nhave = e->nwant;
    pthread_mutex_unlock(&e->mu);
}

/* sb_relay_wait() callback: is any topic ready? A topic whose lock
 * another thread holds counts as ready: look again after it. */
static int exporter_ready(void *arg, memory_order order)
{
    struct sbf_exporter *e = arg;

    for (unsigned i = 0; i < e->nhave; i++) {
        struct sbf_topic *ft = e->have[i];
        int r;

        if (pthread_mutex_trylock(&ft->poll_mu) != 0)
            return 1;
        r = ft->sub == NULL ? 0 : sb_relay_sub_ready(ft->sub, order);
        pthread_mutex_unlock(&ft->poll_mu);
        if (r != 0)
            return 1;
    }
    return 0;
}

static void *exporter_main(void *arg)
{
    struct sbf_exporter *e = arg;
    struct sbd_fed *f = e->f;

    urcu_memb_register_thread();
    for (;;) {
        uint32_t seen = sb_relay_bell_seen(&e->bell);
        shmbus_topic *topics[SBF_EXPORT_TOPICS];
        struct export_round r = {.f = f};
        unsigned nt = 0;
        int busy = 0, rc;

        /* relaxed: ordered through the bell, read after it (as the
         * bridge's pump: sbf_export_stop() stores stop, then rings). */
        if (atomic_load_explicit(&e->stop, memory_order_relaxed))
            break;
        exporter_sync(e);
        urcu_memb_read_lock();
        /* Before the first connection cnats cannot tell whether the server
         * takes headers, and refuses them: nothing can go out yet. */
        r.nc = atomic_load_explicit(&f->link.ever_connected, memory_order_relaxed)
                   ? sbf_link_conn(&f->link)
                   : NULL;
        /* relaxed: a bound that may be a reconnect late. */
        r.max_payload = atomic_load_explicit(&f->link.max_payload, memory_order_relaxed);
        for (unsigned i = 0; i < e->nhave; i++) {
            r.ft = e->have[i];
            if (sbd_topic_broken(r.ft->t))
                continue; /* its mapping is zeroes now (guard.h): the manager ends it */
            pthread_mutex_lock(&r.ft->poll_mu);
            if (r.ft->sub != NULL) {
                topics[nt++] = r.ft->t->t;
                busy |= export_topic(&r) > 0;
            }
            pthread_mutex_unlock(&r.ft->poll_mu);
        }
        SBD_TSAN_READ_DONE();
        urcu_memb_read_unlock();
        if (busy)
            continue;
        rc = sb_relay_wait(topics, nt, exporter_ready, e, sb_mono_ns() + EXPORT_NAP_NS, &e->bell,
                           seen);
        if (rc < 0 && rc != SHMBUS_ERR_TIMEOUT && rc != -EINTR) {
            sbd_log(SBD_ERROR, "nats: exporter %u cannot sleep: %s", e->idx, shmbus_strerror(rc));
            usleep(1000); /* never spin */
        }
    }
    urcu_memb_unregister_thread();
    return NULL;
}

/* An exporter with room, started if needed. Under f->mu. */
static struct sbf_exporter *exporter_pick(struct sbd_fed *f, int *rc)
{
    struct sbf_exporter *e;

    for (unsigned i = 0; i < f->nexps; i++)
        if (f->exps[i]->assigned < SBF_EXPORT_TOPICS)
            return f->exps[i];
    if (f->nexps == SBF_EXPORTERS_MAX) {
        *rc = SHMBUS_ERR_LIMIT;
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        *rc = -ENOMEM;
        return NULL;
    }
    e->f = f;
    e->idx = f->nexps;
    pthread_mutex_init(&e->mu, NULL);
    *rc = -pthread_create(&e->th, NULL, exporter_main, e);
    if (*rc != 0) {
        pthread_mutex_destroy(&e->mu);
        free(e);
        return NULL;
    }
    f->exps[f->nexps++] = e;
    return e;
}

int sbf_export_add(struct sbd_fed *f, struct sbf_topic *ft)
{
    shmbus_sub_opts o = {.start = SHMBUS_START_NEXT};
    struct sbf_exporter *e;
    int rc = 0;

    e = exporter_pick(f, &rc);
    if (e == NULL)
        return rc;
    rc = shmbus_sub_create(ft->t->t, &o, &ft->sub);
    if (rc < 0) {
        ft->sub = NULL;
        return rc;
    }
    atomic_fetch_add_explicit(&ft->t->subscribers, 1, memory_order_relaxed);
    ft->next = sb_relay_sub_held(ft->sub); /* its start: no message read yet */
    ft->exp = e;
    e->assigned++;
    pthread_mutex_lock(&e->mu);
    e->want[e->nwant++] = ft;
    pthread_mutex_unlock(&e->mu);
    /* What we changed is visible to the exporter that reads the new
     * value (release). */
    sb_relay_bell_ring(&e->bell);
    return 0;
}

void sbf_export_take(struct sbd_fed *f, struct sbf_topic *ft)
{
    struct sbf_exporter *e = ft->exp;

    (void)f;
    if (e == NULL)
        return;
    /* The slot goes now: it must not gate a topic nobody reads. */
    pthread_mutex_lock(&ft->poll_mu);
    export_sub_drop(ft);
    pthread_mutex_unlock(&ft->poll_mu);
    pthread_mutex_lock(&e->mu);
    for (unsigned i = 0; i < e->nwant; i++) {
        if (e->want[i] == ft) {
            e->want[i] = e->want[--e->nwant];
            break;
        }
    }
    pthread_mutex_unlock(&e->mu);
    e->assigned--;
    ft->exp = NULL;
    sb_relay_bell_ring(&e->bell);
}

void sbf_export_stop(struct sbd_fed *f)
{
    for (unsigned i = 0; i < f->nexps; i++) {
        struct sbf_exporter *e = f->exps[i];

        /* relaxed: published by the release of the ring that follows. */
        atomic_store_explicit(&e->stop, 1, memory_order_relaxed);
        sb_relay_bell_ring(&e->bell);
        pthread_join(e->th, NULL);
        for (unsigned k = 0; k < e->nwant; k++) {
            export_sub_drop(e->want[k]);
            e->want[k]->exp = NULL;
        }
        pthread_mutex_destroy(&e->mu);
        free(e);
        f->exps[i] = NULL;
    }
    f->nexps = 0;
}
