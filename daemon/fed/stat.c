/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation for `shmbus stat` (fed.h sbd_fed_stat()): the link and the
 * sums of the topics' counters, and the topics themselves in id order.
 */
#include <stdio.h>
#include <string.h>

#include "fed/fed.h"
#include "fed/state.h"

/* Read @p c into the counters of @p t (relaxed: monitoring values). */
#define STAT_READ(kind, field, key, doc)                                                           \
    t->field = atomic_load_explicit(&c->field, memory_order_relaxed);
static void stat_read(const struct sbf_counters *c, shmbus_nats_topic *t)
{
    SHMBUS_NATS_TOPIC_COUNTERS(STAT_READ)
}
#undef STAT_READ

/* Add the counters of @p t to @p info's sums. */
#define STAT_ADD(kind, field, key, doc) info->field += t->field;
static void stat_add(shmbus_nats_info *info, const shmbus_nats_topic *t)
{
    SHMBUS_NATS_TOPIC_COUNTERS(STAT_ADD)
}
#undef STAT_ADD

unsigned sbd_fed_stat(struct sbd_fed *f, uint64_t after, shmbus_nats_info *info,
                      shmbus_nats_topic *topics, unsigned cap)
{
    struct sbf_link *l;
    shmbus_nats_topic one;
    unsigned k = 0;

    memset(info, 0, sizeof(*info));
    if (f == NULL)
        return 0; /* SHMBUS_NATS_OFF */
    l = &f->link;
    snprintf(info->origin, sizeof(info->origin), "%s", f->cfg->nats_origin);
    snprintf(info->prefix, sizeof(info->prefix), "%s", f->cfg->nats_prefix);
    /* relaxed, all: independent monitoring values. */
    info->state = atomic_load_explicit(&l->state, memory_order_relaxed);
    info->reconnects = atomic_load_explicit(&l->reconnects, memory_order_relaxed);
    info->errors = atomic_load_explicit(&l->errors, memory_order_relaxed);
    info->refused = atomic_load_explicit(&f->refused, memory_order_relaxed);
    pthread_mutex_lock(&l->mu);
    memcpy(info->server, l->server, sizeof(info->server));
    pthread_mutex_unlock(&l->mu);
    /* Messages of no topic (one the importer could not create). */
    stat_read(&f->orphan, &one);
    stat_add(info, &one);
    /* The records' table: appended to under mu, briefly (records are
     * made as topics are first seen, not per message). */
    pthread_mutex_lock(&f->mu);
    info->topics = (uint32_t)f->nrecs;
    for (size_t i = 0; i < f->nrecs; i++) {
        const struct sbf_topic *ft = f->recs[i];
        shmbus_nats_topic *e = k < cap && ft->id > after ? &topics[k++] : &one;

        memset(e, 0, sizeof(*e));
        e->id = ft->id;
        e->flags = ft->flags;
        snprintf(e->name, sizeof(e->name), "%s", ft->t->name);
        stat_read(&ft->count, e);
        stat_add(info, e);
    }
    pthread_mutex_unlock(&f->mu);
    return k;
}
