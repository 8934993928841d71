/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exporting persisted topics through JetStream (js.h). A thread serves up
 * to SB_RELAY_TOPICS_MAX topics: it reads each topic's new messages
 * (skipping imported ones), publishes them asynchronously with the
 * Shmbus-* headers and Nats-Msg-Id (ORIGIN/TOPIC/EPOCH/SEQ, which the
 * stream dedupes on), at most --persist-window in flight per topic, and
 * sleeps on the topics with room and a bell that the acknowledgements
 * ring. On a reliable topic its slot is held: publishers may reuse a cell
 * only once JetStream has acknowledged every message up to it, so a
 * JetStream that stops acknowledging holds the topic's publishers (as a
 * slow subscriber would) instead of losing messages; the slot is kept, so
 * a daemon that dies leaves it gating for the next one to adopt and resend
 * from. A failed or timed-out publish goes back to the oldest message not
 * acknowledged and sends everything from there again (go-back-N; the
 * stream drops what it has). A lossy topic cannot hold its publishers:
 * what its ring overtakes, and what JetStream refuses, is lost_out, and
 * its messages carry no Shmbus-Prev: no importer waits for a predecessor
 * that will not be sent again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fed/export.h"
#include "fed/js.h"
#include "fed/link.h"
#include "fed/meta.h"
#include "log.h"
#include "registry/relay.h"
#include "util/clock.h"

/* Messages read per topic per pass, at most (and at most the window's room). */
#define JSX_BATCH 64u
/* The longest sleep: a wake-up missed by a dead publisher costs no more. */
#define JSX_NAP_NS (100ull * 1000000ull)
/* How long a stop waits for the acknowledgements of what is in flight,
 * over all the topics. */
#define JSX_DRAIN_MS 2000
/* After a go-back-N, the pause before sending again: doubled at each
 * failure that follows, up to the most, and gone at the first
 * acknowledgement. A server that refuses at once (a stream without a
 * leader during an election, a full store) is asked a few times a second,
 * not as fast as the loop turns. */
#define JSX_BACKOFF_MIN_NS (50ull * 1000000ull)
#define JSX_BACKOFF_MAX_NS (1000ull * 1000000ull)

struct sbf_jsx {
    struct sbf_js *js;
    pthread_t th;
    unsigned idx;
    _Atomic uint32_t bell; /* futex word: a topic given, an acknowledgement, stop */
    _Atomic int stop;
    pthread_mutex_t mu;
    struct sbf_jstopic *want[SB_RELAY_TOPICS_MAX]; /* mu: the topics given */
    unsigned nwant;                                /* mu */
    /* The thread's own: the topics it serves, and those it set up. */
    struct sbf_jstopic *have[SB_RELAY_TOPICS_MAX];
    unsigned nhave;
};

/* The slots a stopping daemon leaves kept: referenced here, never freed,
 * so that leak checkers see them as the deliberate hand-over they are
 * (destroying the subscriber would free the slot). Written by
 * sbf_jsexport_stop() only, after every exporter thread ended. */
static shmbus_sub **jsx_left;
static size_t jsx_nleft;

/* One poll's context: the topic and what stopped it. */
struct jsx_poll {
    struct sbf_jstopic *jt;
    struct sbd_fed *f;
    uint64_t resend; /* stopped: a publish cnats could not queue; read again from here */
    int stopped;
};

static void jsx_ring(struct sbf_jsx *x)
{
    /* What the ringer changed (want[], an entry's state, stop) is visible
     * to the thread that reads the new value (release). */
    sb_relay_bell_ring(&x->bell);
}

void sbf_jsexport_ring(struct sbf_jsx *x)
{
    jsx_ring(x);
}

/* The entry of @p seq in @p jt's window, or NULL. Under jt->mu. The
 * window holds increasing seqs from head: a binary search. */
static struct sbf_jsent *jsx_find(struct sbf_jstopic *jt, uint64_t seq)
{
    uint32_t lo = 0, hi = jt->n;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        struct sbf_jsent *e = &jt->win[(jt->head + mid) % jt->cap];

        if (e->seq == seq)
            return e;
        if (e->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* cnats's acknowledgement callback (its thread): mark the message's entry
 * and ring the exporter. An acknowledgement of a message no longer in the
 * window (sent again since) changes nothing. All of it under jt->mu: cnats
 * runs the callback on a detached thread that nothing can wait for, so a
 * stop (jsx_drain()) closes the topic under the same lock (jt->x NULL)
 * before the exporter and the topic record are freed; a callback that
 * comes after touches jt->mu only. */
static void jsx_acked(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct sbf_jstopic *jt = closure;
    const char *v = NULL;
    uint64_t seq;
    struct sbf_jsent *e;

    (void)js;
    (void)pa;
    pthread_mutex_lock(&jt->mu);
    /* Stopped: the exporter and the record may be gone. */
    if (jt->x != NULL && natsMsgHeader_Get(msg, SBF_HDR_SEQ, &v) == NATS_OK && v != NULL &&
        sbf_meta_u64(v, strlen(v), &seq) == 0) {
        e = jsx_find(jt, seq);
        if (e != NULL && e->state == SBF_JSENT_SENT) {
            e->state = pae == NULL ? SBF_JSENT_ACKED : SBF_JSENT_FAILED;
            jt->failed += pae != NULL;
        }
        if (pae != NULL) {
            jt->last_err = pae->Err;
            jt->last_code = (int)pae->ErrCode;
            sbd_log(SBD_DEBUG,
                    "nats: topic %s: JetStream did not take seq %" PRIu64 ": %s (%d%s%s)",
                    jt->t->t->name, seq, natsStatus_GetText(pae->Err), (int)pae->ErrCode,
                    pae->ErrText != NULL ? ": " : "", pae->ErrText != NULL ? pae->ErrText : "");
        }
        jsx_ring(jt->x);
    }
    pthread_mutex_unlock(&jt->mu);
    natsMsg_Destroy(msg);
}

/* Log failures of @p jt's publishes (rate-limited with the others). */
static void jsx_fail_log(struct sbd_fed *f, struct sbf_jstopic *jt, uint64_t n, natsStatus st,
                         int code, const char *what)
{
    sbf_fed_warn(f, SBF_WARN_SEND,
                 "nats: topic %s: %s: %s (JetStream error %d), %" PRIu64 " message%s; %s",
                 jt->t->t->name, what, natsStatus_GetText(st), code, n, n == 1 ? "" : "s",
                 jt->held ? "sent again from the oldest not acknowledged" : "lost");
}

/* Take the acknowledged messages off the head of the window; on a failure
 * go back to the oldest not acknowledged (held) or count the failed ones
 * lost (lossy); let publishers past what JetStream has. Exporter thread. */
static void jsx_settle(struct sbd_fed *f, struct sbf_jstopic *jt)
{
    struct sbf_counters *c = &jt->t->count;
    uint64_t out = 0, lost = 0, nfail, rel;
    struct sbf_jsent back = {0};
    natsStatus st;
    int code, rewind = 0;

    pthread_mutex_lock(&jt->mu);
    while (jt->n > 0) {
        struct sbf_jsent *e = &jt->win[jt->head];

        if (e->state == SBF_JSENT_SENT || (e->state == SBF_JSENT_FAILED && jt->held))
            break;
        out += e->state == SBF_JSENT_ACKED;
        lost += e->state == SBF_JSENT_FAILED;
        jt->head = (jt->head + 1) % jt->cap;
        jt->n--;
    }
    nfail = jt->failed;
    st = jt->last_err;
    code = jt->last_code;
    /* Go-back-N: everything from the oldest not acknowledged is sent
     * again; acknowledgements still coming for it find no entry. */
    if (jt->held && nfail > 0 && jt->n > 0) {
        back = jt->win[jt->head];
        rewind = 1;
        jt->n = 0;
    }
    jt->failed = 0;
    rel = jt->n > 0 ? jt->win[jt->head].seq : jt->next;
    pthread_mutex_unlock(&jt->mu);
    sbf_count(&c->msgs_out, out);
    sbf_count(&c->lost_out, lost);
    if (nfail > 0)
        jsx_fail_log(f, jt, nfail, st, code, "JetStream refused or did not acknowledge a message");
    /* Only a resend pauses: a lossy topic sends each message once. */
    if (rewind) {
        jt->backoff = jt->backoff == 0 ? JSX_BACKOFF_MIN_NS : jt->backoff * 2;
        if (jt->backoff > JSX_BACKOFF_MAX_NS)
            jt->backoff = JSX_BACKOFF_MAX_NS;
        jt->retry_at = sb_mono_ns() + jt->backoff;
    } else if (out > 0) {
        jt->backoff = 0;
    }
    if (rewind && sb_relay_sub_rewind(jt->sub, back.seq) == 0) {
        jt->next = back.seq;
        jt->prev = back.prev;
        jt->has_prev = (int)back.has_prev;
        rel = back.seq;
    }
    if (jt->held && rel > jt->released && sb_relay_sub_release(jt->sub, rel) == 0)
        jt->released = rel;
}

/* Remove the window's newest entry (a publish that was not queued). */
static void jsx_unsend(struct sbf_jstopic *jt)
{
    pthread_mutex_lock(&jt->mu);
    jt->n--;
    pthread_mutex_unlock(&jt->mu);
}

/* Build the message of @p m with its headers. @return NATS_OK or why not. */
static natsStatus jsx_build(struct jsx_poll *p, const shmbus_msg *m, natsMsg **out)
{
    struct sbf_jstopic *jt = p->jt;
    struct sbf_meta meta = {.epoch = jt->t->epoch,
                            .seq = m->seq,
                            .prev = jt->prev,
                            .has_prev = jt->held && jt->has_prev,
                            .time_ns = m->timestamp_ns,
                            .pid = m->publisher_pid};

    snprintf(meta.origin, sizeof(meta.origin), "%s", p->f->cfg->nats_origin);
    return sbf_export_msg(&meta, jt->t->t->name, jt->t->subject, m->data, m->len, out);
}

/* Send @p m: an entry in the window, then the asynchronous publish.
 * @return 0, or 1 to stop the poll (not queued: read it again later). */
static int jsx_send(struct jsx_poll *p, const shmbus_msg *m)
{
    struct sbf_jstopic *jt = p->jt;
    jsPubOptions po;
    natsMsg *nm = NULL;
    natsStatus st = jsx_build(p, m, &nm);

    if (st == NATS_OK) {
        pthread_mutex_lock(&jt->mu);
        jt->win[(jt->head + jt->n) % jt->cap] =
            (struct sbf_jsent){.seq = m->seq, .prev = jt->prev, .has_prev = (uint32_t)jt->has_prev};
        jt->n++;
        pthread_mutex_unlock(&jt->mu);
        jsPubOptions_Init(&po);
        po.MaxWait = SBF_JS_ACK_WAIT_MS;
        st = js_PublishMsgAsync(jt->js, &nm, &po);
        if (st == NATS_OK) {
            jt->prev = m->seq;
            jt->has_prev = 1;
            return 0;
        }
        jsx_unsend(jt);
        natsMsg_Destroy(nm);
    }
    /* Larger than the server takes (payload and headers): never goes. */
    if (st == NATS_MAX_PAYLOAD) {
        sbf_count(&jt->t->count.lost_out, 1);
        jsx_fail_log(p->f, jt, 1, st, 0, "a message larger than the server's max_payload");
        return 0;
    }
    p->resend = m->seq;
    p->stopped = 1;
    return 1;
}

/* shmbus_poll() callback: send a local message; skip an imported one. */
static int jsx_msg(const shmbus_msg *m, void *arg)
{
    struct jsx_poll *p = arg;
    struct sbf_jstopic *jt = p->jt;
    int64_t max = atomic_load_explicit(&p->f->link.max_payload, memory_order_relaxed);

    /* relaxed above: a value cnats's callback refreshes; any recent one does. */
    jt->next = m->seq + 1;
    if (m->lost > 0)
        sbf_count(&jt->t->count.lost_out, m->lost);
    /* From another bus: it never goes out again. */
    if (m->flags & SHMBUS_MSG_IMPORTED)
        return 0;
    if (max > 0 && m->len > (uint64_t)max) {
        sbf_count(&jt->t->count.lost_out, 1);
        jsx_fail_log(p->f, jt, 1, NATS_MAX_PAYLOAD, 0,
                     "a message larger than the server's max_payload");
        return 0;
    }
    return jsx_send(p, m);
}

/* Read and send what the window has room for. @return 1 if the topic may
 * have more at once (the loop should not sleep). Exporter thread. */
static int jsx_pump(struct sbd_fed *f, struct sbf_jstopic *jt)
{
    struct jsx_poll p = {.jt = jt, .f = f};
    struct sbf_topic *ft = jt->t;
    /* relaxed: a value cnats's callback refreshes; any recent one does. */
    int64_t max = atomic_load_explicit(&f->link.max_payload, memory_order_relaxed);
    uint32_t room;
    int n;

    if (!ft->warned_size && max > 0 && (int64_t)ft->t->info.max_msg_size > max) {
        ft->warned_size = 1;
        sbd_log(SBD_WARN,
                "nats: topic %s: messages may be up to %u bytes, the server takes %lld: "
                "longer ones will not be exported (lost_out)",
                ft->t->name, ft->t->info.max_msg_size, (long long)max);
    }
    jsx_settle(f, jt);
    pthread_mutex_lock(&jt->mu);
    room = jt->cap - jt->n;
    pthread_mutex_unlock(&jt->mu);
    /* relaxed: a gauge for stat. */
    atomic_store_explicit(&jt->t->count.pending, jt->cap - room, memory_order_relaxed);
    /* Pausing after a failure: the next pass (the nap) looks again. */
    if (sb_mono_ns() < jt->retry_at)
        room = 0;
    jt->room = room > 0;
    /* Full: the acknowledgements ring the bell. */
    if (room == 0)
        return 0;
    n = shmbus_poll(jt->sub, jsx_msg, &p, room < JSX_BATCH ? room : JSX_BATCH);
    pthread_mutex_lock(&jt->mu);
    jt->room = jt->n < jt->cap;
    pthread_mutex_unlock(&jt->mu);
    if (p.stopped) {
        if (jt->held && sb_relay_sub_rewind(jt->sub, p.resend) == 0)
            jt->next = p.resend;
        else if (!jt->held)
            sbf_count(&jt->t->count.lost_out, 1);
        jt->room = 0; /* cnats could not queue: look again after a nap */
        return 0;
    }
    if (n == SHMBUS_ERR_CORRUPT) {
        sbf_count(&ft->count.lost_out, 1);
        sbf_fed_warn(f, SBF_WARN_SEND, "nats: topic %s: a damaged cell skipped (lost_out)",
                     ft->t->name);
    }
    if (n < 0 && n != SHMBUS_ERR_CORRUPT) {
        sbd_log(SBD_ERROR, "nats: topic %s: reading it for JetStream failed: %s; no more exports",
                jt->t->t->name, shmbus_strerror(n));
        /* relaxed: a flag (state.h). */
        atomic_store_explicit(&jt->t->ended, 1, memory_order_relaxed);
        return 0;
    }
    return jt->room && (n > 0 || n == SHMBUS_ERR_CORRUPT);
}

/* Refuse @p jt for export: logged, counted, its record ended. */
static void jsx_refuse(struct sbd_fed *f, struct sbf_jstopic *jt, const char *why)
{
    sbd_log(SBD_ERROR, "nats: topic %s: not exported through JetStream: %s", jt->t->t->name, why);
    atomic_fetch_add_explicit(&f->refused, 1, memory_order_relaxed);
    /* relaxed: counters and a flag (state.h). */
    atomic_store_explicit(&jt->t->ended, 1, memory_order_relaxed);
}

/* A held, kept slot for reliable @p jt: the one a dead daemon left, or a
 * new one from the next message. @return 0 or an error. */
static int jsx_slot(struct sbf_jstopic *jt)
{
    shmbus_topic *tt = jt->t->t->t;
    shmbus_sub_opts o = {.start = SHMBUS_START_NEXT, .spin_ns = -1};
    int rc = sb_relay_sub_adopt(tt, &jt->sub);

    if (rc == 0) {
        sbd_log(SBD_INFO,
                "nats: topic %s: took over the slot a previous daemon kept; sending "
                "again from seq %" PRIu64 " (JetStream drops what it has)",
                jt->t->t->name, sb_relay_sub_held(jt->sub));
    } else if (rc == -ENOENT) {
        rc = shmbus_sub_create(tt, &o, &jt->sub);
        if (rc == 0 &&
            ((rc = sb_relay_sub_hold(jt->sub)) < 0 || (rc = sb_relay_sub_keep(jt->sub)) < 0)) {
            shmbus_sub_destroy(jt->sub);
            jt->sub = NULL;
        }
    }
    if (rc < 0)
        return rc;
    jt->held = 1;
    jt->next = jt->released = sb_relay_sub_held(jt->sub);
    return 0;
}

/* (Re)make @p jt's JetStream context on the link's connection.
 * @return 0, or -1 (no connection yet, or cnats refused: try later). */
static int jsx_ctx(struct sbd_fed *f, struct sbf_jstopic *jt)
{
    /* relaxed: see sbf_js.gen. */
    uint64_t gen = atomic_load_explicit(&f->js->gen, memory_order_relaxed);
    natsConnection *nc;
    jsOptions jo;
    int rc = -1;

    /* The old context's publishes still owed a callback: one may come at
     * any time, so jt outlives the daemon's stop (sbf_jstopic.left). */
    if (jt->js != NULL) {
        jsPubOptions po;

        jsPubOptions_Init(&po);
        po.MaxWait = 1;
        jt->left |= js_PublishAsyncComplete(jt->js, &po) != NATS_OK;
    }
    jsCtx_Destroy(jt->js);
    jt->js = NULL;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = (int64_t)jt->cap * 2;
    jo.PublishAsync.AckHandler = jsx_acked;
    jo.PublishAsync.AckHandlerClosure = jt;
    jo.PublishAsync.StallWait = 50;
    urcu_memb_read_lock();
    nc = sbf_link_conn(&f->link);
    if (nc != NULL && natsConnection_JetStream(&jt->js, nc, &jo) == NATS_OK)
        rc = 0;
    urcu_memb_read_unlock();
    /* Failed: the generation stays behind, so the next pass tries again. */
    if (rc == 0)
        jt->gen = gen;
    return rc;
}

/* A new connection: what was in flight on the old one is sent again
 * (held) or lost (lossy), on a context made on the new one. */
static void jsx_relink(struct sbd_fed *f, struct sbf_jstopic *jt)
{
    pthread_mutex_lock(&jt->mu);
    for (uint32_t i = 0; i < jt->n; i++) {
        struct sbf_jsent *e = &jt->win[(jt->head + i) % jt->cap];

        if (e->state == SBF_JSENT_SENT) {
            e->state = SBF_JSENT_FAILED;
            jt->failed++;
        }
    }
    jt->last_err = NATS_CONNECTION_CLOSED;
    jt->last_code = 0;
    pthread_mutex_unlock(&jt->mu);
    jsx_settle(f, jt);
    jsx_ctx(f, jt);
}

/* Set @p jt up (its slot is made already: sbf_jsexport_add()): once its
 * stream is settled and there is a connection, its JetStream context.
 * Called again until it is done. @return 0 (serving), 1 (not yet), or -1
 * (refused, logged). Exporter thread. */
static int jsx_setup(struct sbd_fed *f, struct sbf_jstopic *jt)
{
    uint32_t cap = f->cfg->persist_window;
    int state;

    if (jt->win == NULL) {
        jt->win = calloc(cap, sizeof(*jt->win));
        if (jt->win == NULL) {
            jsx_refuse(f, jt, "out of memory");
            return -1;
        }
        jt->cap = cap;
    }
    /* acquire: pairs with the release in js.c js_settle(); the stream's
     * fields are written before it. */
    state = atomic_load_explicit(&jt->stream->state, memory_order_acquire);
    if (state == SBF_JSS_PENDING)
        return 1;
    /* Not persisted after all: the slot must not gate what nobody sends. */
    if (state == SBF_JSS_REFUSED) {
        shmbus_sub_destroy(jt->sub);
        jt->sub = NULL;
        jsx_refuse(f, jt, "its stream could not be made or checked (logged)");
        return -1;
    }
    /* No connection yet: the next pass tries again. */
    return jsx_ctx(f, jt) < 0 ? 1 : 0;
}

/* Take the topics given since the last pass. */
static void jsx_sync(struct sbf_jsx *x)
{
    pthread_mutex_lock(&x->mu);
    while (x->nhave < x->nwant) {
        x->have[x->nhave] = x->want[x->nhave];
        x->nhave++;
    }
    pthread_mutex_unlock(&x->mu);
}

/* Is a topic with room ready? (sb_relay_wait() callback) */
static int jsx_ready(void *arg, memory_order order)
{
    struct sbf_jsx *x = arg;

    for (unsigned i = 0; i < x->nhave; i++) {
        struct sbf_jstopic *jt = x->have[i];

        if (jt->sub != NULL && jt->js != NULL && jt->room &&
            sb_relay_sub_ready(jt->sub, order) != 0)
            return 1;
    }
    return 0;
}

/* One pass over the topics. @return 1 if one may have more at once;
 * fills @p topics with those to sleep on. */
static int jsx_pass(struct sbf_jsx *x, shmbus_topic **topics, unsigned *nt)
{
    struct sbd_fed *f = x->js->f;
    int busy = 0;

    *nt = 0;
    for (unsigned i = 0; i < x->nhave; i++) {
        struct sbf_jstopic *jt = x->have[i];

        /* relaxed: a flag (state.h); what it ends is this thread's own. */
        if (atomic_load_explicit(&jt->t->ended, memory_order_relaxed) || sbd_topic_broken(jt->t->t))
            continue;
        if (jt->js == NULL && jsx_setup(f, jt) != 0)
            continue;
        /* relaxed: see sbf_js.gen. */
        if (jt->gen != atomic_load_explicit(&f->js->gen, memory_order_relaxed))
            jsx_relink(f, jt);
        if (jt->js == NULL)
            continue;
        busy |= jsx_pump(f, jt);
        if (jt->room)
            topics[(*nt)++] = jt->t->t->t;
    }
    return busy;
}

static void *jsx_main(void *arg)
{
    struct sbf_jsx *x = arg;

    /* The link's connection is read under RCU (sbf_link_conn()). */
    urcu_memb_register_thread();
    for (;;) {
        uint32_t seen = sb_relay_bell_seen(&x->bell);
        shmbus_topic *topics[SB_RELAY_TOPICS_MAX];
        unsigned nt;
        int rc;

        /* relaxed: ordered through the bell, as the bridge's pump reads its
         * stop (sbf_jsexport_stop() stores it, then rings with release). */
        if (atomic_load_explicit(&x->stop, memory_order_relaxed))
            break;
        jsx_sync(x);
        if (jsx_pass(x, topics, &nt))
            continue;
        rc = sb_relay_wait(topics, nt, jsx_ready, x, sb_mono_ns() + JSX_NAP_NS, &x->bell, seen);
        if (rc < 0 && rc != SHMBUS_ERR_TIMEOUT && rc != -EINTR) {
            sbd_log(SBD_ERROR, "nats: JetStream exporter %u cannot sleep: %s", x->idx,
                    shmbus_strerror(rc));
            usleep(1000);
        }
    }
    urcu_memb_unregister_thread();
    return NULL;
}

/* A new exporter thread. Under js->mu. @return it, or NULL (logged). */
static struct sbf_jsx *jsx_start(struct sbf_js *js)
{
    struct sbf_jsx *x = calloc(1, sizeof(*x));
    int rc;

    if (x == NULL)
        return NULL;
    x->js = js;
    x->idx = js->njsx;
    pthread_mutex_init(&x->mu, NULL);
    rc = pthread_create(&x->th, NULL, jsx_main, x);
    if (rc != 0) {
        sbd_log(SBD_ERROR, "nats: cannot start a JetStream exporter thread: %s", strerror(rc));
        pthread_mutex_destroy(&x->mu);
        free(x);
        return NULL;
    }
    js->jsx[js->njsx++] = x;
    return x;
}

int sbf_jsexport_add(struct sbf_js *js, struct sbf_jstopic *jt)
{
    shmbus_sub_opts o = {.start = SHMBUS_START_NEXT, .spin_ns = -1};
    struct sbf_jsx *x = NULL;
    int rc;

    pthread_mutex_lock(&js->mu);
    for (unsigned i = 0; i < js->njsx && x == NULL; i++)
        if (js->jsx[i]->nwant < SB_RELAY_TOPICS_MAX)
            x = js->jsx[i];
    if (x == NULL && js->njsx < SBF_JSX_MAX)
        x = jsx_start(js);
    if (x == NULL) {
        pthread_mutex_unlock(&js->mu);
        jsx_refuse(js->f, jt, "no JetStream exporter thread has room (or none could start)");
        return -ENOSPC;
    }
    /* The slot now, in the registry's listener, before the topic's creator
     * can publish (fed.c topic_created()), and not on the exporter thread:
     * one made there from the next message missed what was published
     * before the thread ran (a new thread, a busy CPU), on a reliable topic
     * too, since no slot gated it yet. Held and kept on a reliable topic,
     * so that it gates from the start, whether or not NATS is reachable
     * yet. The thread takes jt under x->mu, which orders these stores
     * before its reads. */
    rc = jt->t->t->info.mode == SHMBUS_RELIABLE ? jsx_slot(jt)
                                                : shmbus_sub_create(jt->t->t->t, &o, &jt->sub);
    if (rc < 0) {
        pthread_mutex_unlock(&js->mu);
        jt->sub = NULL;
        jsx_refuse(js->f, jt, shmbus_strerror(rc));
        return rc;
    }
    pthread_mutex_lock(&jt->mu);
    jt->x = x;
    pthread_mutex_unlock(&jt->mu);
    pthread_mutex_lock(&x->mu);
    x->want[x->nwant++] = jt;
    pthread_mutex_unlock(&x->mu);
    pthread_mutex_unlock(&js->mu);
    jsx_ring(x);
    return 0;
}

/* After the threads ended: let what is in flight be acknowledged, a while,
 * and leave a held slot kept where JetStream's acknowledgements got to.
 * The topic is closed to acknowledgement callbacks (jsx_acked()); if some
 * were still owed when the wait ended, one may yet run, so jt is left
 * allocated (jt->left, sbf_js_free()). */
static void jsx_drain(struct sbd_fed *f, struct sbf_jstopic *jt, uint64_t deadline)
{
    uint64_t now = sb_mono_ns();
    jsPubOptions po;
    shmbus_sub **grown;

    if (jt->js != NULL) {
        jsPubOptions_Init(&po);
        /* What is left of the stop's one wait, shared by every topic. cnats
         * counts a publish done only once its callback returned. */
        po.MaxWait = now < deadline ? (int64_t)((deadline - now) / 1000000u) + 1 : 1;
        jt->left |= js_PublishAsyncComplete(jt->js, &po) != NATS_OK;
        if (jt->sub != NULL)
            jsx_settle(f, jt);
    }
    pthread_mutex_lock(&jt->mu);
    jt->x = NULL;
    pthread_mutex_unlock(&jt->mu);
    /* jt->js is destroyed once the link closed (sbf_js_free(), js.h). */
    if (jt->sub == NULL)
        return;
    grown = jt->held ? realloc(jsx_left, (jsx_nleft + 1) * sizeof(*jsx_left)) : NULL;
    if (grown != NULL) {
        jsx_left = grown;
        jsx_left[jsx_nleft++] = jt->sub;
    } else if (!jt->held) {
        shmbus_sub_destroy(jt->sub);
    }
    /* A held slot whose pointer found no room stays kept all the same. */
    jt->sub = NULL;
}

void sbf_jsexport_stop(struct sbf_js *js)
{
    uint64_t deadline = sb_mono_ns() + JSX_DRAIN_MS * 1000000ull;

    for (unsigned i = 0; i < js->njsx; i++) {
        struct sbf_jsx *x = js->jsx[i];

        /* relaxed: ordered by the bell's release (jsx_main()). */
        atomic_store_explicit(&x->stop, 1, memory_order_relaxed);
        jsx_ring(x);
        pthread_join(x->th, NULL);
    }
    for (unsigned i = 0; i < js->njsx; i++) {
        struct sbf_jsx *x = js->jsx[i];

        for (unsigned j = 0; j < x->nhave; j++)
            jsx_drain(js->f, x->have[j], deadline);
        pthread_mutex_destroy(&x->mu);
        free(x);
    }
    js->njsx = 0;
}
