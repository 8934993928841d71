/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JetStream part of federation (js.h): which topics are persisted,
 * the thread that makes or checks the streams once the link is up and
 * then imports, the registry's keeps hook, start and stop. A topic is
 * persisted when its subject falls in a --persist stream's subject
 * filter: that is what the stream captures, whatever else matches.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fed/js.h"
#include "fed/link.h"
#include "util/glob.h"
#include "log.h"
#include "util/clock.h"
#include "util/vec.h"

/* The stream whose filter covers @p subject, or NULL. */
static struct sbf_jsstream *js_cover(struct sbf_js *js, const char *subject)
{
    for (unsigned i = 0; i < js->nstreams; i++) {
        struct sbf_jsstream *ss = &js->streams[i];

        if (ss->s.filter[0] != '\0' && sbf_stream_match(ss->s.filter, subject, strlen(subject)))
            return ss;
    }
    return NULL;
}

/* The registry's keeps hook (the reaper, control thread): leave the kept
 * slot of a dead owner to us only for a topic we export through JetStream. */
static int js_keeps(void *arg, const struct sbd_topic *t)
{
    struct sbd_fed *f = arg;
    char subject[SBF_SUBJECT_MAX + 1];
    uint32_t need = SHMBUS_NATS_EXPORT | SHMBUS_NATS_PERSIST;

    if (sbf_meta_subject(f->cfg->nats_prefix, t->name, subject) < 0)
        return 0;
    return (sbf_fed_match(f, t->name, NULL) & need) == need && js_cover(f->js, subject) != NULL;
}

/* Refuse persisted topic @p t: logged, counted. */
static int js_refuse(struct sbd_fed *f, struct sbf_topic *t, const char *why)
{
    sbd_log(SBD_ERROR, "nats: topic %s: not federated: %s", t->t->name, why);
    /* relaxed: a counter and a flag (state.h). */
    atomic_fetch_add_explicit(&f->refused, 1, memory_order_relaxed);
    atomic_store_explicit(&t->ended, 1, memory_order_relaxed);
    return -EINVAL;
}

int sbf_js_topic(struct sbd_fed *f, struct sbf_topic *t)
{
    struct sbf_js *js = f->js;
    struct sbf_jsstream *ss;
    struct sbf_jstopic *jt;

    /* Not persisted (no --persist glob matches it). */
    if (js == NULL || !(t->flags & SHMBUS_NATS_PERSIST))
        return 0;
    ss = js_cover(js, t->subject);
    /* Asked for, but no stream takes its subject: going over core NATS
     * would lose what persistence promises. */
    if (ss == NULL)
        return js_refuse(f, t,
                         "it matches --persist, but no stream's subjects cover it (in a "
                         "--persist pattern '*' matches one token, a final '*' the rest)");
    jt = calloc(1, sizeof(*jt));
    pthread_mutex_lock(&js->topics_mu);
    if (jt == NULL || SB_VEC_RESERVE(js->topics, js->topics_cap, js->ntopics, 1, 16) < 0) {
        pthread_mutex_unlock(&js->topics_mu);
        free(jt);
        return js_refuse(f, t, "out of memory");
    }
    js->topics[js->ntopics++] = jt;
    pthread_mutex_unlock(&js->topics_mu);
    jt->t = t;
    jt->stream = ss;
    jt->order.wait_ns = SBF_JS_ORDER_WAIT_NS;
    pthread_mutex_init(&jt->mu, NULL);
    t->jst = jt;
    if (t->flags & SHMBUS_NATS_EXPORT) {
        int rc = sbf_jsexport_add(js, jt);

        if (rc < 0)
            return rc;
    }
    return 1;
}

/* Sleep @p ns, or less if the daemon stops. js thread. */
static void js_nap(struct sbf_js *js, uint64_t ns)
{
    uint64_t end = sb_mono_ns() + ns;

    /* relaxed: a flag polled; sbf_js_stop() joins the thread after it. */
    while (!atomic_load_explicit(&js->stop, memory_order_relaxed) && sb_mono_ns() < end) {
        struct timespec ts = {0, 20000000};

        nanosleep(&ts, NULL);
    }
}

/* Make or check each stream still pending. @return how many still are. */
static unsigned js_settle(struct sbf_js *js)
{
    struct sbd_fed *f = js->f;
    struct sbf_stream_opts o = {.prefix = f->cfg->nats_prefix,
                                .max_age_s = f->cfg->persist_max_age_s,
                                .max_bytes = f->cfg->persist_max_bytes,
                                .dup_window_ns = SBF_STREAM_DUP_WINDOW_NS};
    unsigned pending = 0;

    natsConnection *nc;

    /* relaxed: the link's state, a hint; a request fails if it is stale. */
    js->asked = 0;
    if (atomic_load_explicit(&f->link.state, memory_order_relaxed) != SHMBUS_NATS_CONNECTED ||
        js->jsm == NULL)
        return js->nstreams;
    js->asked = 1;
    urcu_memb_read_lock();
    nc = sbf_link_conn(&f->link);
    o.replicas = sbf_stream_replicas(nc, f->cfg->persist_replicas);
    o.replicas_given = f->cfg->persist_replicas != 0;
    urcu_memb_read_unlock();
    for (unsigned i = 0; i < js->nstreams; i++) {
        struct sbf_jsstream *ss = &js->streams[i];
        int rc;

        /* relaxed: only this thread stores it. */
        if (atomic_load_explicit(&ss->state, memory_order_relaxed) != SBF_JSS_PENDING)
            continue;
        rc = sbf_stream_ensure(js->jsm, &o, &ss->s);
        /* release: s (its ok flag) before the state the exporters acquire. */
        if (rc == 0)
            atomic_store_explicit(&ss->state, SBF_JSS_OK, memory_order_release);
        else if (rc != -EAGAIN)
            atomic_store_explicit(&ss->state, SBF_JSS_REFUSED, memory_order_release);
        else
            pending++;
    }
    return pending;
}

/* Make the thread's JetStream context on the link's connection, again
 * after a new connection (the consumers are bound again on it). */
static void js_ctx(struct sbf_js *js)
{
    /* relaxed: see sbf_js.gen. */
    uint64_t gen = atomic_load_explicit(&js->gen, memory_order_relaxed);
    natsConnection *nc;

    if (js->jsm != NULL && js->jsm_gen == gen)
        return;
    sbf_jsimport_unbind(js);
    jsCtx_Destroy(js->jsm);
    js->jsm = NULL;
    urcu_memb_read_lock();
    nc = sbf_link_conn(&js->f->link);
    if (nc != NULL && natsConnection_JetStream(&js->jsm, nc, NULL) != NATS_OK)
        js->jsm = NULL;
    urcu_memb_read_unlock();
    js->jsm_gen = gen;
}

/* Push what the thread sent out to the server, a second at most. */
static void js_flush(struct sbf_js *js)
{
    natsConnection *nc;

    urcu_memb_read_lock();
    nc = sbf_link_conn(&js->f->link);
    if (nc != NULL)
        natsConnection_FlushTimeout(nc, 1000);
    urcu_memb_read_unlock();
}

static void *js_main(void *arg)
{
    struct sbf_js *js = arg;
    unsigned pending = js->nstreams, unbound = 0, fetched = 0;

    urcu_memb_register_thread();
    /* relaxed: a flag polled (js_nap()). */
    while (!atomic_load_explicit(&js->stop, memory_order_relaxed)) {
        js_ctx(js);
        if (pending > 0)
            pending = js_settle(js);
        fetched = 0;
        if (js->importing && js->jsm != NULL) {
            unbound = sbf_jsimport_bind(js);
            fetched = sbf_jsimport_fetch(js, 100);
        }
        /* Streams or consumers the server did not answer for: ask again
         * in a second; no connection yet, or nothing to fetch: look again
         * in a tenth of it. Never a busy loop. */
        if ((pending > 0 || unbound > 0) && js->asked)
            js_nap(js, SBF_JS_RETRY_NS);
        else if (pending > 0 || unbound > 0 || fetched == 0)
            js_nap(js, SBF_JS_RETRY_NS / 10);
    }
    /* The acknowledgements and naks just sent go out before the link
     * closes, with the last ones again: one lost makes the next daemon get
     * its message again. */
    sbf_jsimport_reack(js);
    js_flush(js);
    urcu_memb_unregister_thread();
    return NULL;
}

/* The --persist patterns' streams; a pattern no filter can be is refused
 * here, logged. @return 0 or -ENOMEM. */
static int js_streams(struct sbf_js *js, const struct sbd_config *cfg)
{
    unsigned n = 0;

    for (unsigned i = 0; i < cfg->n_fed; i++) {
        n += cfg->fed[i].kind == SBD_FED_PERSIST;
        js->importing |= cfg->fed[i].kind == SBD_FED_FEDERATE || cfg->fed[i].kind == SBD_FED_IMPORT;
    }
    js->streams = calloc(n, sizeof(*js->streams));
    if (js->streams == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < cfg->n_fed; i++) {
        struct sbf_jsstream *ss;

        if (cfg->fed[i].kind != SBD_FED_PERSIST)
            continue;
        ss = &js->streams[js->nstreams++];
        if (sbf_stream_init(&ss->s, cfg->nats_prefix, cfg->fed[i].glob) < 0) {
            ss->s.filter[0] = '\0';
            atomic_init(&ss->state, SBF_JSS_REFUSED);
        }
    }
    return 0;
}

int sbf_js_start(struct sbd_fed *f)
{
    struct sbf_js *js;
    int rc, persist = 0;

    for (unsigned i = 0; i < f->cfg->n_fed; i++)
        persist |= f->cfg->fed[i].kind == SBD_FED_PERSIST;
    f->js = NULL;
    if (!persist)
        return 0;
    js = calloc(1, sizeof(*js));
    if (js == NULL)
        return -ENOMEM;
    js->f = f;
    pthread_mutex_init(&js->mu, NULL);
    pthread_mutex_init(&js->topics_mu, NULL);
    rc = js_streams(js, f->cfg);
    if (rc == 0) {
        rc = -pthread_create(&js->th, NULL, js_main, js);
        js->started = rc == 0;
    }
    f->js = js;
    if (rc < 0)
        return rc;
    /* The reaper leaves a dead daemon's kept slots on our topics to us. */
    pthread_mutex_lock(&f->reg->topic_lock);
    f->reg->keeps = js_keeps;
    f->reg->keeps_arg = f;
    pthread_mutex_unlock(&f->reg->topic_lock);
    return 0;
}

void sbf_js_stop(struct sbd_fed *f)
{
    struct sbf_js *js = f->js;

    if (js == NULL)
        return;
    f->reg->keeps = NULL;
    /* relaxed: a flag polled; the join orders the rest. */
    atomic_store_explicit(&js->stop, 1, memory_order_relaxed);
    if (js->started)
        pthread_join(js->th, NULL);
    js->started = 0;
    sbf_jsexport_stop(js);
    sbf_jsimport_fini(js);
}

void sbf_js_relinked(struct sbd_fed *f)
{
    if (f->js == NULL)
        return;
    /* relaxed: see sbf_js.gen. */
    atomic_fetch_add_explicit(&f->js->gen, 1, memory_order_relaxed);
    pthread_mutex_lock(&f->js->mu);
    for (unsigned i = 0; i < f->js->njsx; i++)
        sbf_jsexport_ring(f->js->jsx[i]);
    pthread_mutex_unlock(&f->js->mu);
}

/* Topics a stop could not free (sbf_jstopic.left): referenced here so
 * that leak checkers see them as kept on purpose. */
static struct sbf_jstopic **js_left;
static size_t js_nleft;

void sbf_js_free(struct sbd_fed *f)
{
    struct sbf_js *js = f->js;

    if (js == NULL)
        return;
    /* The link is closed: no message can reach a subscription now. */
    sbf_jsimport_unbind(js);
    jsCtx_Destroy(js->jsm);
    for (size_t i = 0; i < js->ntopics; i++) {
        struct sbf_jstopic *jt = js->topics[i];
        struct sbf_jstopic **grown;

        jsCtx_Destroy(jt->js);
        jt->js = NULL;
        jt->t->jst = NULL;
        /* A late acknowledgement callback may lock jt->mu (jsx_acked()). */
        if (jt->left) {
            grown = realloc(js_left, (js_nleft + 1) * sizeof(*js_left));
            if (grown != NULL) {
                js_left = grown;
                js_left[js_nleft++] = jt;
            }
            continue;
        }
        pthread_mutex_destroy(&jt->mu);
        free(jt->win);
        free(jt);
    }
    free(js->topics);
    free(js->streams);
    pthread_mutex_destroy(&js->mu);
    pthread_mutex_destroy(&js->topics_mu);
    free(js);
    f->js = NULL;
}
