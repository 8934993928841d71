/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Importing persisted topics from JetStream (js.h). Each usable stream
 * gets a durable pull consumer for this bus, named after its origin
 * (deliver all, explicit acknowledgement, at most SBF_JS_ACK_PENDING
 * unacknowledged), made once and then bound to, so that it outlives the
 * daemon: a bus that was down catches up from where its consumer was.
 * The js thread fetches each consumer in turn and handles the messages in
 * stream order: its own origin's and those of topics it does not import
 * are acknowledged and dropped; others are judged by the order tracker
 * (order.h), written into the local ring marked imported, and only then
 * acknowledged. A reliable local topic that is full keeps its message
 * unacknowledged (JetStream keeps it) until there is room.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fed/js.h"
#include "fed/import.h"
#include "fed/link.h"
#include "fed/meta.h"
#include "log.h"
#include "registry/relay.h"
#include "util/clock.h"

/* How long one write into a full reliable topic waits before the importer
 * looks at stop and tells JetStream it is still at work on the message. */
#define JSI_FULL_SLICE_NS (100ull * 1000000ull)
/* A batch's acknowledgements are confirmed (jsi_confirm()): each attempt
 * waits this long for the consumer's leader, and the attempts go on for
 * the consumer's ack wait at most (a leader's election takes seconds; by
 * then what was not acknowledged comes again to this daemon, whose order
 * tracker knows it), a pause between those that fail at once ("no
 * responders": no leader yet). */
#define JSI_CONFIRM_WAIT_MS  1000
#define JSI_CONFIRM_PAUSE_NS (200ull * 1000000ull)

/* One fetched batch's acknowledgements. They go out as they are decided,
 * without waiting, but for the last, kept back and sent as a request at
 * the end of the batch: a reply means the consumer's leader took it, and
 * with it those sent before on the same connection. A consumer leader
 * that dies (a server killed) loses what was sent to it meanwhile; those
 * messages would come again after the ack wait, and to a daemon started
 * meanwhile as messages it cannot tell from new ones once its ring no
 * longer holds them (duplicates). So without a reply, every
 * acknowledgement of the batch is sent again and the confirmation asked
 * again, a bounded number of times (logged if it never comes). */
struct jsi_batch {
    natsMsg *acked[SBF_JS_FETCH]; /* acknowledged, the last (kept back) too */
    int n;
};

/* sbf_meta_decode()'s header getter over a cnats message. */
static const char *jsi_header(void *arg, const char *key, size_t *len)
{
    const char *v = NULL;

    if (natsMsgHeader_Get(arg, key, &v) != NATS_OK || v == NULL)
        return NULL;
    *len = strlen(v);
    return v;
}

/* Make (or find) this bus's durable consumer of @p ss and bind to it.
 * @return 0, 1 (not now: ask again later), or -1 (refused for good). */
static int jsi_bind(struct sbf_js *js, struct sbf_jsstream *ss)
{
    const char *durable = js->f->cfg->nats_origin;
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus st;

    st = js_GetConsumerInfo(&ci, js->jsm, ss->s.name, durable, NULL, &jerr);
    if (st == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
        jsConsumerConfig_Init(&cc);
        cc.Durable = durable;
        cc.DeliverPolicy = js_DeliverAll;
        cc.AckPolicy = js_AckExplicit;
        cc.AckWait = (int64_t)SBF_JS_CONSUMER_ACK_WAIT_NS;
        cc.MaxAckPending = SBF_JS_ACK_PENDING;
        if (cc.MaxAckPending < (int64_t)js->f->cfg->persist_window * SBF_JS_PENDING_WINDOWS)
            cc.MaxAckPending = (int64_t)js->f->cfg->persist_window * SBF_JS_PENDING_WINDOWS;
        cc.FilterSubject = ss->s.filter;
        jerr = 0;
        st = js_AddConsumer(&ci, js->jsm, ss->s.name, &cc, NULL, &jerr);
        ss->made_here = st == NATS_OK;
        if (st == NATS_OK)
            sbd_log(SBD_INFO, "nats: consumer %s of stream %s created: this bus imports from it",
                    durable, ss->s.name);
    }
    if (st != NATS_OK) {
        int again = sbf_stream_transient(st, jerr);

        ss->bind_fails += ss->bind_fails < UINT_MAX;
        /* The same outage, asked about again: said at growing intervals. */
        if (!again || sbf_stream_log_fail(ss->bind_fails))
            sbd_log(again ? SBD_WARN : SBD_ERROR,
                    "nats: stream %s: cannot make or find consumer %s: %s (JetStream error %d); "
                    "%s",
                    ss->s.name, durable, natsStatus_GetText(st), (int)jerr,
                    again ? "asked again later (said again less and less often)"
                          : "its topics are not imported");
        return again ? 1 : -1;
    }
    ss->bind_fails = 0;
    ss->bound_delivered = ci->Delivered.Stream;
    ss->hold_until = 0;
    if (ci->NumAckPending > 0) {
        int64_t wait = ci->Config != NULL ? ci->Config->AckWait : 0;

        ss->hold_until = sb_mono_ns() + (uint64_t)(wait > 0 ? wait : 0) + 1000000000ull;
        sbd_log(SBD_INFO,
                "nats: stream %s: %" PRId64 " messages delivered before (up to stream seq %" PRIu64
                ") and not acknowledged come again; new ones wait for them (%" PRId64
                " ms at most)",
                ss->s.name, ci->NumAckPending, ci->Delivered.Stream, wait / 1000000 + 1000);
    }
    jsConsumerInfo_Destroy(ci);
    jsSubOptions_Init(&so);
    so.Stream = ss->s.name;
    so.Consumer = durable;
    so.ManualAck = true;
    st = js_PullSubscribe(&ss->sub, js->jsm, ss->s.filter, durable, NULL, &so, &jerr);
    if (st != NATS_OK) {
        sbd_log(SBD_WARN,
                "nats: stream %s: cannot bind to consumer %s: %s (JetStream error %d); "
                "asked again later",
                ss->s.name, durable, natsStatus_GetText(st), (int)jerr);
        ss->sub = NULL;
        return 1;
    }
    return 0;
}

unsigned sbf_jsimport_bind(struct sbf_js *js)
{
    unsigned todo = 0;

    for (unsigned i = 0; i < js->nstreams; i++) {
        struct sbf_jsstream *ss = &js->streams[i];
        int rc;

        /* relaxed: this thread stores it (js.c js_settle()). */
        if (ss->sub != NULL || ss->unbound ||
            atomic_load_explicit(&ss->state, memory_order_relaxed) == SBF_JSS_REFUSED)
            continue;
        if (atomic_load_explicit(&ss->state, memory_order_relaxed) == SBF_JSS_PENDING) {
            todo++;
            continue;
        }
        rc = jsi_bind(js, ss);
        /* A consumer refused for good: the stream's imports are off; its
         * exports go on (the state stays OK for them). */
        ss->unbound = rc == -1;
        todo += rc == 1;
    }
    return todo;
}

/* The record of topic @p name for an import: the topic made on its first
 * message as the core importer makes it (import.c), then tracked with
 * the import flag. @return it, or NULL: no import pattern matches, or the
 * topic could not be made (logged there). */
static struct sbf_topic *jsi_record(struct sbd_fed *f, const char *name)
{
    const struct sbd_fed_pattern *p = NULL;
    uint32_t need = SHMBUS_NATS_IMPORT | SHMBUS_NATS_PERSIST;
    struct sbd_topic *t;

    if ((sbf_fed_match(f, name, &p) & need) != need)
        return NULL;
    t = sbf_import_topic(f, name, p);
    return t != NULL ? sbf_fed_track(f, t, SHMBUS_NATS_IMPORT) : NULL;
}

/* One message being handled. */
struct jsi_msg {
    natsMsg *m;
    struct jsi_batch *b;
    struct sbf_jsstream *ss;
    int redelivered; /* delivered before: it may be in the ring already */
    /* Delivered to an earlier daemon (at or below the consumer's last
     * delivered when bound): order.h sbf_order_msg.stale. */
    int stale;
    int hold_fresh; /* order.h: new since a restart with messages pending */
    struct sbf_meta meta;
    struct sbf_order_msg om;
    char topic[SHMBUS_TOPIC_NAME_MAX + 1];
};

/* Send batch @p b's acknowledgements again but the last (a request of
 * jsi_confirm()): cnats sends one only once per message, so they go as
 * the plain publishes an acknowledgement is. */
static void jsi_resend(struct sbf_js *js, const struct jsi_batch *b)
{
    natsConnection *nc;

    urcu_memb_read_lock();
    nc = sbf_link_conn(&js->f->link);
    for (int i = 0; nc != NULL && i + 1 < b->n; i++) {
        const char *reply = natsMsg_GetReply(b->acked[i]);

        if (reply != NULL && reply[0] != '\0')
            natsConnection_PublishString(nc, reply, "+ACK");
    }
    urcu_memb_read_unlock();
}

/* Remember @p m's reply subject among @p ss's last acknowledgements. */
static void jsi_remember(struct sbf_jsstream *ss, natsMsg *m)
{
    const char *reply = natsMsg_GetReply(m);
    size_t len = reply != NULL ? strlen(reply) : 0;

    if (ss->replies == NULL)
        ss->replies = malloc((size_t)SBF_JS_REACK * SBF_JS_REPLY_MAX);
    /* No memory, or a subject longer than any JetStream makes: not kept. */
    if (ss->replies == NULL || len == 0 || len >= SBF_JS_REPLY_MAX)
        return;
    memcpy(ss->replies + (size_t)ss->reply_next * SBF_JS_REPLY_MAX, reply, len + 1);
    ss->reply_next = (ss->reply_next + 1) % SBF_JS_REACK;
    ss->nreplies += ss->nreplies < SBF_JS_REACK;
}

/* Acknowledge @p im: the one kept back before goes now, this one is kept
 * back for the batch's confirmation (struct jsi_batch). */
static void jsi_ack(struct jsi_msg *im)
{
    struct jsi_batch *b = im->b;

    jsi_remember(im->ss, im->m);
    if (b->n > 0)
        natsMsg_Ack(b->acked[b->n - 1], NULL);
    b->acked[b->n++] = im->m;
}

/* Confirm batch @p b's acknowledgements (struct jsi_batch). js thread. */
static void jsi_confirm(struct sbf_js *js, const struct sbf_jsstream *ss, struct jsi_batch *b)
{
    uint64_t end = sb_mono_ns() + SBF_JS_CONSUMER_ACK_WAIT_NS;
    jsOptions jo;
    jsErrCode jerr = 0;
    natsStatus st = NATS_OK;

    /* Nothing acknowledged in the batch. */
    if (b->n == 0)
        return;
    jsOptions_Init(&jo);
    jo.Wait = JSI_CONFIRM_WAIT_MS;
    for (;;) {
        uint64_t tried = sb_mono_ns();

        st = natsMsg_AckSync(b->acked[b->n - 1], &jo, &jerr);
        /* relaxed: a flag polled; a stop leaves the rest to redeliveries. */
        if (st == NATS_OK || atomic_load_explicit(&js->stop, memory_order_relaxed) ||
            sb_mono_ns() >= end)
            break;
        if (sb_mono_ns() - tried < JSI_CONFIRM_PAUSE_NS) {
            struct timespec ts = {0, (long)JSI_CONFIRM_PAUSE_NS};

            nanosleep(&ts, NULL);
        }
        jsi_resend(js, b);
    }
    if (st != NATS_OK)
        sbf_fed_warn(js->f, SBF_WARN_SEND,
                     "nats: stream %s: %d acknowledgements not confirmed: %s (JetStream error "
                     "%d); their messages may come again",
                     ss->s.name, b->n, natsStatus_GetText(st), (int)jerr);
}

/* Drop @p im for good (never redelivered): refused input, counted in
 * @p c's lost_in and logged (rate-limited). */
static void jsi_refuse(struct sbd_fed *f, struct jsi_msg *im, struct sbf_counters *c,
                       const char *why)
{
    const char *subj = natsMsg_GetSubject(im->m);

    sbf_count(&c->lost_in, 1);
    sbf_fed_warn(f, SBF_WARN_REFUSED, "nats: JetStream message on %.200s refused: %s",
                 subj != NULL ? subj : "?", why);
    natsMsg_Term(im->m, NULL);
}

/* Write @p im into @p jt's ring, waiting while a reliable topic is full
 * (the message stays unacknowledged meanwhile, JetStream told every
 * slice that it is in progress). @return 0 (written), 1 (stopping: left
 * to a redelivery), or a negative error. */
static int jsi_write(struct sbf_js *js, struct sbf_jstopic *jt, struct jsi_msg *im)
{
    struct sb_relay_origin o = {
        .seq = im->meta.seq, .timestamp_ns = im->meta.time_ns, .pid = im->meta.pid};
    const void *data = natsMsg_GetData(im->m);
    int len = natsMsg_GetDataLength(im->m);
    uint64_t told = sb_mono_ns();
    int rc;

    if (jt->pub == NULL) {
        rc = shmbus_pub_create(jt->t->t->t, &jt->pub);
        /* Not quiet: the exporter thread of the same topic (a held slot
         * to move past what is imported) must be woken. */
        if (rc < 0)
            return rc;
    }
    for (;;) {
        rc = sb_relay_publish_imported(jt->pub, data != NULL ? data : "", (size_t)len, &o,
                                       (int64_t)JSI_FULL_SLICE_NS);
        if (rc != -EAGAIN && rc != SHMBUS_ERR_TIMEOUT)
            return rc < 0 ? rc : 0;
        /* relaxed: a flag polled; sbf_js_stop() joins after it. */
        if (atomic_load_explicit(&js->stop, memory_order_relaxed))
            return 1;
        if (sb_mono_ns() - told >= SBF_JS_CONSUMER_ACK_WAIT_NS / 2) {
            natsMsg_InProgress(im->m, NULL);
            told = sb_mono_ns();
        }
    }
}

/* Deliver @p im (judged so): write, record, acknowledge, count. */
static void jsi_deliver(struct sbf_js *js, struct sbf_jstopic *jt, struct jsi_msg *im, uint64_t gap)
{
    struct sbd_fed *f = js->f;
    struct sbf_counters *c = &jt->t->count;
    int rc = jsi_write(js, jt, im);

    /* Stopping: given back (nak), so JetStream gives it to the next daemon. */
    if (rc == 1) {
        natsMsg_Nak(im->m, NULL);
        return;
    }
    if (rc < 0) {
        sbf_count(&c->lost_in, 1);
        sbf_fed_warn(f, SBF_WARN_CREATE,
                     "nats: topic %s: a message from %s (seq %" PRIu64 ") cannot be written: %s; "
                     "lost",
                     jt->t->t->name, im->meta.origin, im->meta.seq, shmbus_strerror(rc));
        natsMsg_Term(im->m, NULL);
        return;
    }
    sbf_order_delivered(&jt->order, &im->om);
    /* An acknowledgement lost on the way brings a redelivery, which the
     * tracker or the ring finds a duplicate (and jsi_confirm() makes that
     * rare). */
    jsi_ack(im);
    sbf_count(&c->msgs_in, 1);
    if (gap > 0) {
        sbf_count(&c->lost_in, gap);
        sbf_fed_warn(f, SBF_WARN_GAP,
                     "nats: topic %s: the message before seq %" PRIu64 " from %s (its Shmbus-Prev "
                     "%" PRIu64 ") did not come in %llu ms; lost",
                     jt->t->t->name, im->meta.seq, im->meta.origin, im->meta.prev,
                     (unsigned long long)(SBF_JS_ORDER_WAIT_NS / 1000000u));
    }
}

/* Judge @p im by its origin's order and act on it. */
static void jsi_order(struct sbf_js *js, struct sbf_jstopic *jt, struct jsi_msg *im)
{
    struct sb_relay_origin o = {
        .seq = im->meta.seq, .timestamp_ns = im->meta.time_ns, .pid = im->meta.pid};
    enum sbf_order_verdict v;
    uint64_t gap = 0;

    im->om = (struct sbf_order_msg){.origin = im->meta.origin,
                                    .origin_len = strlen(im->meta.origin),
                                    .epoch = im->meta.epoch,
                                    .seq = im->meta.seq,
                                    .has_prev = im->meta.has_prev,
                                    .prev = im->meta.prev,
                                    .hold_fresh = im->hold_fresh,
                                    .stale = im->stale};
    v = sbf_order_judge(&jt->order, &im->om, sb_mono_ns(), &gap);
    switch (v) {
    case SBF_ORDER_BAD:
        jsi_refuse(js->f, im, &jt->t->count, "Shmbus-Prev is not below Shmbus-Seq");
        return;
    case SBF_ORDER_WAIT:
        natsMsg_NakWithDelay(im->m, (int64_t)(SBF_JS_NAK_DELAY_NS / 1000000u), NULL);
        return;
    case SBF_ORDER_UNKNOWN:
    case SBF_ORDER_DELIVER:
        /* Older than the tracker knows, or delivered before: in the ring
         * already (written, then the daemon died before acknowledging)
         * or not. Found, it counts as delivered for its successors. */
        if ((v == SBF_ORDER_UNKNOWN || im->redelivered) &&
            sb_relay_imported_held(jt->t->t->t, &o) == 1) {
            sbf_order_delivered(&jt->order, &im->om);
            break;
        }
        jsi_deliver(js, jt, im, v == SBF_ORDER_DELIVER ? gap : 0);
        return;
    case SBF_ORDER_DUP:
        break;
    }
    sbf_count(&jt->t->count.dups, 1);
    jsi_ack(im);
}

/* What JetStream says of @p im: delivered before, and whether it is new
 * since a restart that left messages pending (@p ss's hold). */
static void jsi_meta(const struct sbf_jsstream *ss, struct jsi_msg *im)
{
    jsMsgMetaData *md = NULL;

    /* Unknown: judged as a redelivery, the ring asked. */
    if (natsMsg_GetMetaData(&md, im->m) != NATS_OK || md == NULL) {
        im->redelivered = 1;
        return;
    }
    im->redelivered = md->NumDelivered > 1;
    im->stale = !ss->made_here && md->Sequence.Stream <= ss->bound_delivered;
    /* A consumer this daemon made: no predecessor can have been delivered
     * before, so a first message with one waits for it (stored later,
     * after a resend). One made before, with messages pending: a new
     * message may follow one of them. */
    im->hold_fresh = ss->made_here || (ss->hold_until != 0 && sb_mono_ns() < ss->hold_until &&
                                       md->Sequence.Stream > ss->bound_delivered);
    jsMsgMetaData_Destroy(md);
}

/* Handle one fetched message of @p ss, of batch @p b (the caller destroys
 * it after the batch's confirmation). */
static void jsi_handle(struct sbf_js *js, struct sbf_jsstream *ss, struct jsi_batch *b, natsMsg *m)
{
    struct sbd_fed *f = js->f;
    struct jsi_msg im = {.m = m, .b = b, .ss = ss};
    const char *subj = natsMsg_GetSubject(m), *bad = NULL;
    struct sbf_topic *t;

    jsi_meta(ss, &im);
    if (subj == NULL || sbf_meta_topic(f->cfg->nats_prefix, subj, strlen(subj), im.topic) < 0) {
        atomic_fetch_add_explicit(&f->refused, 1, memory_order_relaxed);
        /* relaxed: a counter. */
        jsi_refuse(f, &im, &f->orphan, "not PREFIX.<a topic name>");
    } else if (sbf_meta_decode(jsi_header, m, &im.meta, &bad) < 0) {
        jsi_refuse(f, &im, &f->orphan, bad != NULL ? bad : "headers");
    } else if (strcmp(im.meta.origin, f->cfg->nats_origin) == 0) {
        jsi_ack(&im); /* our own, back from the stream */
    } else if ((t = jsi_record(f, im.topic)) == NULL) {
        /* Not imported here, or no topic can be made (logged there). */
        jsi_ack(&im);
    } else if (t->jst == NULL || atomic_load_explicit(&t->ended, memory_order_relaxed)) {
        /* relaxed: a flag (state.h). */
        jsi_refuse(f, &im, &t->count, "its topic is not persisted here, or ended");
    } else {
        jsi_order(js, t->jst, &im);
    }
}

/*
 * Messages to ask natsSubscription_Fetch() for. cnats before 3.9 (Debian
 * 12 has 3.4.1) overflows the array it allocates for the batch when a
 * fetch finds more than half a batch already pending on the subscription
 * (nats.c PR 749, fixed in 3.9.0): it first takes what is pending, then
 * counts towards the remainder of the batch instead of the batch, and
 * writes past the array until its wait ends. Messages are left pending by
 * a fetch whose wait ended while the server still delivered for it: a
 * daemon paused (SIGSTOP, a starved CPU) in mid-fetch. A batch of one
 * cannot overflow (a pending message ends the fetch before it asks the
 * server), so that is what such a library gets, at the cost of one round
 * trip per message. The library loaded decides, not the header built
 * against.
 */
static int jsi_fetch_batch(void)
{
    return nats_GetVersionNumber() >= 0x030900 ? SBF_JS_FETCH : 1;
}

unsigned sbf_jsimport_fetch(struct sbf_js *js, int64_t wait_ms)
{
    unsigned bound = 0, waited = 0;
    int batch = jsi_fetch_batch();

    for (unsigned i = 0; i < js->nstreams; i++)
        bound += js->streams[i].sub != NULL;
    /* Nothing bound yet: the js thread naps and binds again. */
    if (bound == 0)
        return 0;
    for (unsigned i = 0; i < js->nstreams; i++) {
        struct sbf_jsstream *ss = &js->streams[i];
        struct jsi_batch b = {.n = 0};
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus st;

        if (ss->sub == NULL)
            continue;
        st = natsSubscription_Fetch(&list, ss->sub, batch,
                                    wait_ms / bound > 0 ? wait_ms / bound : 1, &jerr);
        waited += st == NATS_OK || st == NATS_TIMEOUT;
        if (st != NATS_OK && st != NATS_TIMEOUT)
            sbf_fed_warn(js->f, SBF_WARN_REFUSED, "nats: stream %s: fetch: %s (JetStream error %d)",
                         ss->s.name, natsStatus_GetText(st), (int)jerr);
        /* At most the batch asked for (jsi_fetch_batch()), and never past
         * what jsi_batch holds. */
        for (int j = 0; j < list.Count && j < batch; j++) {
            /* relaxed: a flag polled. Stopping: what is left goes back to
             * the consumer at once (nak), for the next daemon. */
            if (atomic_load_explicit(&js->stop, memory_order_relaxed))
                natsMsg_Nak(list.Msgs[j], NULL);
            else
                jsi_handle(js, ss, &b, list.Msgs[j]);
        }
        jsi_confirm(js, ss, &b);
        natsMsgList_Destroy(&list);
    }
    return waited;
}

void sbf_jsimport_unbind(struct sbf_js *js)
{
    for (unsigned i = 0; i < js->nstreams; i++) {
        /* Destroy, not unsubscribe: the durable consumer stays on the server. */
        natsSubscription_Destroy(js->streams[i].sub);
        js->streams[i].sub = NULL;
        js->streams[i].unbound = 0;
    }
}

void sbf_jsimport_reack(struct sbf_js *js)
{
    natsConnection *nc;

    urcu_memb_read_lock();
    nc = sbf_link_conn(&js->f->link);
    for (unsigned i = 0; nc != NULL && i < js->nstreams; i++) {
        const struct sbf_jsstream *ss = &js->streams[i];

        for (unsigned j = 0; j < ss->nreplies; j++)
            natsConnection_PublishString(nc, ss->replies + (size_t)j * SBF_JS_REPLY_MAX, "+ACK");
    }
    urcu_memb_read_unlock();
}

void sbf_jsimport_fini(struct sbf_js *js)
{
    for (unsigned i = 0; i < js->nstreams; i++) {
        free(js->streams[i].replies);
        js->streams[i].replies = NULL;
        js->streams[i].nreplies = 0;
    }
    for (size_t i = 0; i < js->ntopics; i++) {
        shmbus_pub_destroy(js->topics[i]->pub);
        js->topics[i]->pub = NULL;
    }
}
