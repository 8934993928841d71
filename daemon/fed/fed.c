/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation (fed.h): start and stop, the pattern table, the topic
 * records, the registry listener that federates each topic added, and the
 * manager thread, which ends the records whose segment broke.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed/export.h"
#include "fed/fed.h"
#include "fed/import.h"
#include "fed/js.h"
#include "fed/link.h"
#include "fed/state.h"
#include "util/glob.h"
#include "log.h"
#include "registry/admin.h"
#include "util/clock.h"
#include "util/vec.h"

/* The manager looks for broken segments this often. */
#define MANAGER_TICK_NS 100000000ull

void sbf_fed_warn(struct sbd_fed *f, enum sbf_warn kind, const char *fmt, ...)
{
    struct sbf_warn_limit *w = &f->warn[kind];
    uint64_t now = sb_mono_ns() / 1000000u, suppressed = 0;
    char line[512];
    va_list ap;
    int log = 0;

    pthread_mutex_lock(&f->warn_mu);
    if (now - w->start_ms >= 1000) {
        w->start_ms = now;
        w->lines = 0;
    }
    if (w->lines < SBF_WARN_PER_S) {
        w->lines++;
        suppressed = w->suppressed;
        w->suppressed = 0;
        log = 1;
    } else {
        w->suppressed++;
    }
    pthread_mutex_unlock(&f->warn_mu);
    if (!log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (suppressed > 0)
        sbd_log(SBD_WARN, "%s (and %llu more like it not logged)", line,
                (unsigned long long)suppressed);
    else
        sbd_log(SBD_WARN, "%s", line);
}

uint32_t sbf_fed_match(struct sbd_fed *f, const char *name, const struct sbd_fed_pattern **imp)
{
    size_t len = strlen(name);
    uint32_t flags = 0;

    if (imp != NULL)
        *imp = NULL;
    for (unsigned i = 0; i < f->npats; i++) {
        const struct sbf_pattern *p = &f->pats[i];

        if ((flags | p->flags) == flags || !sb_glob_match(p->p->glob, p->len, name, len))
            continue;
        if (imp != NULL && *imp == NULL && (p->flags & SHMBUS_NATS_IMPORT))
            *imp = p->p;
        flags |= p->flags;
    }
    return flags & (SHMBUS_NATS_EXPORT | SHMBUS_NATS_IMPORT) ? flags : 0;
}

/* A new record of @p t with @p flags. Under f->mu. @return it or NULL. */
static struct sbf_topic *record_new(struct sbd_fed *f, struct sbd_topic *t, uint32_t flags)
{
    struct sbf_topic *ft = calloc(1, sizeof(*ft));
    int rc;

    if (ft == NULL) {
        sbd_log(SBD_ERROR, "nats: topic %s: out of memory: not federated", t->name);
        return NULL;
    }
    ft->f = f;
    ft->t = t;
    ft->flags = flags;
    ft->epoch = sb_admin_topic_epoch(t->t);
    pthread_mutex_init(&ft->poll_mu, NULL);
    if (sbf_meta_subject(f->cfg->nats_prefix, t->name, ft->subject) < 0) {
        pthread_mutex_destroy(&ft->poll_mu);
        free(ft);
        sbf_count(&f->refused, 1);
        sbd_log(SBD_WARN,
                "nats: topic %s is not federated: its name has an empty token ('..' in it, or a "
                "'.' at its end) and cannot be a NATS subject",
                t->name);
        return NULL;
    }
    if (SB_VEC_RESERVE(f->recs, f->recs_cap, f->nrecs, 1, 16) < 0) {
        pthread_mutex_destroy(&ft->poll_mu);
        free(ft);
        sbd_log(SBD_ERROR, "nats: topic %s: out of memory: not federated", t->name);
        return NULL;
    }
    ft->id = f->nrecs + 1;
    if ((flags & SHMBUS_NATS_EXPORT) && !(flags & SHMBUS_NATS_PERSIST)) {
        rc = sbf_export_add(f, ft);
        if (rc < 0)
            sbd_log(SBD_ERROR, "nats: topic %s: cannot export it: %s", t->name,
                    shmbus_strerror(rc));
    }
    /* Persisted: JetStream carries it (js.h); a refusal is logged there. */
    if (flags & SHMBUS_NATS_PERSIST)
        sbf_js_topic(f, ft);
    return ft;
}

struct sbf_topic *sbf_fed_track(struct sbd_fed *f, struct sbd_topic *t, uint32_t need)
{
    struct sbf_topic *ft;
    uint32_t flags;

    /* acquire: pairs with the release below, the record complete. */
    ft = atomic_load_explicit(&t->fed, memory_order_acquire);
    if (ft != NULL)
        return ft;
    flags = sbf_fed_match(f, t->name, NULL);
    if ((flags & need) != need || flags == 0 || sbd_topic_broken(t))
        return NULL;
    pthread_mutex_lock(&f->mu);
    ft = atomic_load_explicit(&t->fed, memory_order_relaxed); /* another thread's meanwhile */
    /* Once stopping, no record: its exporter would start after
     * sbf_export_stop() (relaxed: stop is stored under mu). */
    if (ft == NULL && !atomic_load_explicit(&f->stop, memory_order_relaxed)) {
        ft = record_new(f, t, flags);
        if (ft != NULL) {
            f->recs[f->nrecs++] = ft;
            atomic_store_explicit(&t->fed, ft, memory_order_release);
            sbd_log(SBD_INFO, "nats: topic %s federated as %s (%s%s%s)", t->name, ft->subject,
                    flags & SHMBUS_NATS_EXPORT ? "export" : "",
                    (flags & SHMBUS_NATS_EXPORT) && (flags & SHMBUS_NATS_IMPORT) ? ", " : "",
                    flags & SHMBUS_NATS_IMPORT ? "import" : "");
        }
    }
    pthread_mutex_unlock(&f->mu);
    return ft;
}

void sbf_fed_relinked(struct sbd_fed *f, natsConnection *nc)
{
    sbf_import_relink(f, nc);
    sbf_js_relinked(f);
}

/* Registry listener: runs under topic_lock in the thread that added the
 * topic, before its creator could publish: the exporter's subscriber,
 * made here from the next message, misses none. (Lock order: topic_lock,
 * then f->mu; nothing takes them the other way round.) */
static void topic_created(void *arg, struct sbd_topic *t)
{
    sbf_fed_track(arg, t, 0);
}

/* End the records whose segment broke: their exporter lets go (the
 * importer drops its publisher at its next message). Manager. */
static void manager_ended(struct sbd_fed *f)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nrecs; i++) {
        struct sbf_topic *ft = f->recs[i];

        if (!sbd_topic_broken(ft->t) || ft->exp == NULL)
            continue;
        atomic_store_explicit(&ft->ended, 1, memory_order_relaxed);
        sbf_export_take(f, ft);
        sbd_log(SBD_WARN, "nats: topic %s: its segment was truncated: no longer federated",
                ft->t->name);
    }
    pthread_mutex_unlock(&f->mu);
}

static int nothing_ready(void *arg, memory_order order)
{
    (void)arg;
    (void)order;
    return 0;
}

static void *manager_main(void *arg)
{
    struct sbd_fed *f = arg;

    urcu_memb_register_thread();
    for (;;) {
        uint32_t seen = sb_relay_bell_seen(&f->bell);

        /* relaxed: ordered through the bell (sbd_fed_stop() stores stop,
         * then rings). */
        if (atomic_load_explicit(&f->stop, memory_order_relaxed))
            break;
        manager_ended(f);
        sb_relay_wait(NULL, 0, nothing_ready, NULL, sb_mono_ns() + MANAGER_TICK_NS, &f->bell, seen);
    }
    urcu_memb_unregister_thread();
    return NULL;
}

/* The pattern table from the configuration. */
static int patterns_init(struct sbd_fed *f)
{
    const struct sbd_config *c = f->cfg;
    static const uint32_t kind_flags[] = {
        [SBD_FED_FEDERATE] = SHMBUS_NATS_EXPORT | SHMBUS_NATS_IMPORT,
        [SBD_FED_EXPORT] = SHMBUS_NATS_EXPORT,
        [SBD_FED_IMPORT] = SHMBUS_NATS_IMPORT,
        [SBD_FED_PERSIST] = SHMBUS_NATS_PERSIST,
    };

    f->pats = calloc(c->n_fed > 0 ? c->n_fed : 1, sizeof(*f->pats));
    if (f->pats == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < c->n_fed; i++) {
        f->pats[i].p = &c->fed[i];
        f->pats[i].len = strlen(c->fed[i].glob);
        f->pats[i].flags = kind_flags[c->fed[i].kind];
        f->all_flags |= f->pats[i].flags;
    }
    f->npats = c->n_fed;
    return 0;
}

/* Listen for new topics and federate the ones there already, under
 * topic_lock so that none is missed. */
static void fed_listen(struct sbd_fed *f, int on)
{
    struct sbd_registry *reg = f->reg;

    pthread_mutex_lock(&reg->topic_lock);
    reg->on_create[SBD_LISTENER_FED] =
        (struct sbd_listener){.fn = on ? topic_created : NULL, .arg = on ? f : NULL};
    if (on) {
        struct cds_lfht_iter it;
        struct cds_lfht_node *n;

        urcu_memb_read_lock();
        cds_lfht_for_each (reg->topics, &it, n)
            topic_created(f, sbd_topic_of(n));
        SBD_TSAN_READ_DONE();
        urcu_memb_read_unlock();
    }
    pthread_mutex_unlock(&reg->topic_lock);
}

static void fed_free(struct sbd_fed *f)
{
    for (size_t i = 0; i < f->nrecs; i++) {
        struct sbf_topic *ft = f->recs[i];

        atomic_store_explicit(&ft->t->fed, NULL, memory_order_relaxed);
        pthread_mutex_destroy(&ft->poll_mu);
        free(ft);
    }
    free(f->recs);
    free(f->pats);
    pthread_mutex_destroy(&f->warn_mu);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

int sbd_fed_start(const struct sbd_config *cfg, struct sbd_registry *reg, struct sbd_fed **out)
{
    struct sbd_fed *f;
    int rc;

    *out = NULL;
    if (!cfg->nats)
        return 0;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->cfg = cfg;
    f->reg = reg;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->warn_mu, NULL);
    rc = patterns_init(f);
    if (rc < 0) {
        fed_free(f);
        return rc;
    }
    rc = sbf_link_init(f);
    if (rc < 0) {
        sbf_link_stop(f); /* frees what the options got */
        fed_free(f);
        return rc;
    }
    /* Before the manager: its new records may be persisted. */
    rc = sbf_js_start(f);
    if (rc == 0)
        rc = -pthread_create(&f->manager, NULL, manager_main, f);
    if (rc == 0) {
        f->started = 1;
        fed_listen(f, 1);
        rc = sbf_link_start(f);
    }
    if (rc < 0) {
        sbd_fed_stop(f);
        return rc;
    }
    sbd_log(SBD_INFO, "nats: federating as %s through %s (subjects %s.TOPIC)", cfg->nats_origin,
            cfg->nats_urls, cfg->nats_prefix);
    *out = f;
    return 0;
}

void sbd_fed_stop(struct sbd_fed *f)
{
    if (f == NULL)
        return;
    fed_listen(f, 0);
    /* Under mu: the importer (link thread, still running) makes no record
     * after this, so no exporter starts once sbf_export_stop() ran.
     * Relaxed: the manager reads it after the ring's release. */
    pthread_mutex_lock(&f->mu);
    atomic_store_explicit(&f->stop, 1, memory_order_relaxed);
    pthread_mutex_unlock(&f->mu);
    if (f->started) {
        sb_relay_bell_ring(&f->bell);
        pthread_join(f->manager, NULL);
        f->started = 0;
    }
    /* The exporters first: they publish through the link's connection. */
    sbf_js_stop(f);
    sbf_export_stop(f);
    sbf_link_stop(f);
    sbf_js_free(f);
    fed_free(f);
}
