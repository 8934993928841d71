/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation's import over core NATS (import.h). Runs in the link thread:
 * the importer's state (sbd_fed.imp, the records' pub and origins) is its
 * alone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fed/import.h"
#include "fed/link.h"
#include "fed/meta.h"
#include "fed/state.h"
#include "events.h"
#include "log.h"
#include "registry/relay.h"
#include "tsan.h"
#include "util/clock.h"

/* Messages taken in one poll before the link thread looks at its
 * connection again. */
#define IMPORT_BATCH 256

void sbf_import_relink(struct sbd_fed *f, natsConnection *nc)
{
    struct sbf_importer *im = &f->imp;
    char subj[SBD_NATS_NAME_MAX + 3];
    natsStatus s;

    if (!(f->all_flags & SHMBUS_NATS_IMPORT))
        return;
    natsSubscription_Destroy(im->sub);
    im->sub = NULL;
    im->dropped = 0;
    snprintf(subj, sizeof(subj), "%s.>", f->cfg->nats_prefix);
    s = natsConnection_SubscribeSync(&im->sub, nc, subj);
    /* Bounded: beyond these cnats drops (counted as lost_in) rather than
     * queue without end behind a slow ring. */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(im->sub, SBF_PENDING_MSGS, SBF_PENDING_BYTES);
    if (s != NATS_OK) {
        char what[160];

        snprintf(what, sizeof(what),
                 "cannot subscribe to %s: %s: nothing is imported until the next connection", subj,
                 natsStatus_GetText(s));
        sbf_link_error(&f->link, what);
        natsSubscription_Destroy(im->sub);
        im->sub = NULL;
        return;
    }
    sbd_log(f->link.gen > 1 ? SBD_DEBUG : SBD_INFO, "nats: importing from %s", subj);
}

/* sbf_meta_decode()'s header getter. */
static const char *header(void *arg, const char *key, size_t *len)
{
    const char *v = NULL;

    if (natsMsgHeader_Get(arg, key, &v) != NATS_OK || v == NULL)
        return NULL;
    *len = strlen(v);
    return v;
}

/* A message refused before it could be tied to a topic. */
static void refuse(struct sbd_fed *f, const char *subj, const char *why)
{
    sbf_count(&f->refused, 1);
    sbf_fed_warn(f, SBF_WARN_REFUSED, "nats: message on '%.*s' refused: %s", SBF_SUBJECT_MAX, subj,
                 why);
}

/* A message for imported topic @p name that cannot be taken (its headers,
 * its origin): lost_in of the topic's record, or of no topic if it has
 * none yet. */
static void reject(struct sbd_fed *f, const char *name, const char *why)
{
    struct sbd_topic *t;
    struct sbf_topic *ft = NULL;

    urcu_memb_read_lock();
    t = sbd_topic_lookup(f->reg, name); /* topics stay until the daemon stops */
    /* acquire: the record complete (sbf_fed_track()). */
    if (t != NULL)
        ft = atomic_load_explicit(&t->fed, memory_order_acquire);
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    sbf_count(ft != NULL ? &ft->count.lost_in : &f->orphan.lost_in, 1);
    sbf_fed_warn(f, SBF_WARN_HEADERS, "nats: a message for topic %s refused: %s (lost_in)", name,
                 why);
}

/* The topic @p name for an import: found, or created with the options of
 * the first import pattern @p p that matched it. @return it or NULL
 * (counted and logged). */
struct sbd_topic *sbf_import_topic(struct sbd_fed *f, const char *name,
                                   const struct sbd_fed_pattern *p)
{
    struct sb_wire_open req;
    struct sbd_topic *t;
    char why[160] = "";
    int created = 0, rc;

    /* The daemon's own topics (events.h): another host's events, or any
     * NATS client's message, would pass there for this daemon's word. */
    if (sbd_events_reserved(name)) {
        refuse(f, name, "only the daemon publishes on its _shmbus. topics");
        return NULL;
    }
    t = sbd_topic_find(f->reg, name);
    if (t != NULL)
        return t;
    memset(&req, 0, sizeof(req));
    memcpy(req.name, name, strlen(name));
    if (p != NULL) {
        req.mode = p->mode;
        req.capacity = p->capacity;
        req.max_msg_size = p->max_msg_size;
        req.max_subscribers = p->max_subscribers;
        req.stall_timeout_ms = p->stall_timeout_ms;
    }
    rc = sbd_topic_open(f->reg, &req, &t, &created, why, sizeof(why));
    if (rc < 0) {
        sbf_count(&f->orphan.lost_in, 1);
        sbf_fed_warn(f, SBF_WARN_CREATE, "nats: topic %s cannot be created for an import: %s%s%s",
                     name, shmbus_strerror(rc), why[0] ? ": " : "", why);
        return NULL;
    }
    if (created)
        sbd_log(SBD_INFO, "nats: topic %s created for its first imported message", name);
    return t;
}

/* Check @p m's place in its origin's order on @p ft (sbf_meta_order()):
 * 0 to write it, or -1 for a repeat (counted as dups). A message known
 * lost on the way is counted in lost_in and logged. */
static int import_order(struct sbd_fed *f, struct sbf_topic *ft, const struct sbf_meta *m)
{
    uint64_t lost = 0;

    if (!sbf_meta_order(&ft->origins, m, f->imp.heard, &lost)) {
        sbf_count(&ft->count.dups, 1);
        return -1;
    }
    if (lost > 0) {
        sbf_count(&ft->count.lost_in, lost);
        sbf_fed_warn(f, SBF_WARN_GAP,
                     "nats: topic %s: %llu messages from %s lost on the way (before its seq "
                     "%llu)",
                     ft->t->name, (unsigned long long)lost, m->origin, (unsigned long long)m->seq);
    }
    return 0;
}

/* Write @p data into @p ft's ring, marked imported. */
static void import_write(struct sbd_fed *f, struct sbf_topic *ft, const struct sbf_meta *m,
                         const void *data, int len)
{
    struct sbd_topic *t = ft->t;
    struct sb_relay_origin o = {.seq = m->seq, .timestamp_ns = m->time_ns, .pid = m->pid};
    int rc;

    if (ft->pub == NULL) {
        if (t->info.flags & SHMBUS_TOPIC_EXCLUSIVE) {
            sbf_count(&ft->count.lost_in, 1);
            sbf_fed_warn(f, SBF_WARN_CREATE,
                         "nats: topic %s is exclusive (one publisher at a time): nothing is "
                         "imported into it",
                         t->name);
            return;
        }
        rc = shmbus_pub_create(t->t, &ft->pub);
        if (rc < 0) {
            ft->pub = NULL;
            sbf_count(&ft->count.lost_in, 1);
            sbf_fed_warn(f, SBF_WARN_CREATE, "nats: topic %s: cannot publish imports: %s", t->name,
                         shmbus_strerror(rc));
            return;
        }
    }
    if ((uint32_t)len > t->info.max_msg_size) {
        sbf_count(&ft->count.lost_in, 1);
        sbf_fed_warn(f, SBF_WARN_CREATE,
                     "nats: topic %s: an imported message of %d bytes exceeds its max-msg %u: "
                     "lost",
                     t->name, len, t->info.max_msg_size);
        return;
    }
    /* A full reliable topic gets SBF_IMPORT_FULL_MS once; while it stays
     * full its next messages do not wait at all, so that a burst for one
     * stuck topic delays the other topics' imports once, not per message. */
    rc = sb_relay_publish_imported(ft->pub, data, (size_t)len, &o,
                                   ft->full ? 0 : (int64_t)SBF_IMPORT_FULL_MS * 1000000);
    if (rc >= 0) {
        if (ft->full)
            sbd_log(SBD_INFO, "nats: topic %s: room again after %llu imported messages lost",
                    t->name, (unsigned long long)ft->full);
        ft->full = 0;
        sbf_count(&ft->count.msgs_in, 1);
        return;
    }
    sbf_count(&ft->count.lost_in, 1);
    if (rc == SHMBUS_ERR_TIMEOUT || rc == -EAGAIN) {
        if (ft->full++ == 0)
            sbf_fed_warn(f, SBF_WARN_CREATE,
                         "nats: topic %s: full for %d ms (its subscribers hold it): imported "
                         "messages are lost until it has room",
                         t->name, SBF_IMPORT_FULL_MS);
        return;
    }
    sbf_fed_warn(f, SBF_WARN_CREATE, "nats: topic %s: import failed: %s", t->name,
                 shmbus_strerror(rc));
    if (rc == SHMBUS_ERR_TOPIC_GONE || sbd_topic_broken(t)) {
        /* relaxed: a flag; the publisher is the importer's own. */
        atomic_store_explicit(&ft->ended, 1, memory_order_relaxed);
        shmbus_pub_destroy(ft->pub);
        ft->pub = NULL;
    }
}

static void import_msg(struct sbd_fed *f, natsMsg *msg)
{
    const char *subj = natsMsg_GetSubject(msg), *bad = NULL;
    char name[SHMBUS_TOPIC_NAME_MAX + 1], why[96];
    const struct sbd_fed_pattern *p = NULL;
    struct sbf_meta m;
    struct sbd_topic *t;
    struct sbf_topic *ft;
    uint32_t flags;

    f->imp.heard++;
    if (sbf_meta_topic(f->cfg->nats_prefix, subj, strlen(subj), name) < 0) {
        refuse(f, subj, "not PREFIX.TOPIC with a topic name that can be a subject");
        return;
    }
    flags = sbf_fed_match(f, name, &p);
    /* Not imported here, or persisted: JetStream delivers those. */
    if (!(flags & SHMBUS_NATS_IMPORT) || (flags & SHMBUS_NATS_PERSIST))
        return;
    if (sbf_meta_decode(header, msg, &m, &bad) < 0) {
        snprintf(why, sizeof(why), "header %s missing or malformed", bad);
        reject(f, name, why);
        return;
    }
    if (strcmp(m.origin, f->cfg->nats_origin) == 0) {
        reject(f, name, "it carries this bus's own origin: do two buses share --nats-origin?");
        return;
    }
    t = sbf_import_topic(f, name, p);
    if (t == NULL)
        return;
    ft = sbf_fed_track(f, t, SHMBUS_NATS_IMPORT);
    if (ft == NULL || atomic_load_explicit(&ft->ended, memory_order_relaxed)) {
        sbf_count(ft != NULL ? &ft->count.lost_in : &f->orphan.lost_in, 1);
        return;
    }
    if (import_order(f, ft, &m) < 0)
        return;
    import_write(f, ft, &m, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
}

/* What cnats dropped from the subscription since we last asked: lost_in
 * of no known topic. */
static void import_dropped(struct sbd_fed *f)
{
    struct sbf_importer *im = &f->imp;
    int64_t d = 0;

    if (natsSubscription_GetDropped(im->sub, &d) != NATS_OK || d <= im->dropped)
        return;
    sbf_count(&f->orphan.lost_in, (uint64_t)(d - im->dropped));
    sbf_fed_warn(f, SBF_WARN_GAP,
                 "nats: %lld imported messages dropped: more than %d messages or %d bytes "
                 "waited (lost_in)",
                 (long long)(d - im->dropped), SBF_PENDING_MSGS, SBF_PENDING_BYTES);
    im->dropped = d;
}

int sbf_import_poll(struct sbd_fed *f, unsigned ms)
{
    struct sbf_importer *im = &f->imp;
    natsMsg *msg = NULL;
    natsStatus s;

    if (im->sub == NULL)
        return 0;
    /* A batch, then back to the link thread's checks: every message taken
     * from cnats is imported (none is taken that the batch has no room
     * for). */
    s = natsSubscription_NextMsg(&msg, im->sub, ms);
    for (unsigned n = 1; s == NATS_OK; n++) {
        import_msg(f, msg);
        natsMsg_Destroy(msg);
        msg = NULL;
        if (n == IMPORT_BATCH)
            break;
        s = natsSubscription_NextMsg(&msg, im->sub, 0);
    }
    if (s == NATS_SLOW_CONSUMER || s == NATS_OK || s == NATS_TIMEOUT) {
        import_dropped(f);
        return 1;
    }
    /* Closed with its connection: the link thread makes a new one. */
    return 0;
}

void sbf_import_drop(struct sbd_fed *f)
{
    natsSubscription_Destroy(f->imp.sub);
    f->imp.sub = NULL;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nrecs; i++) {
        shmbus_pub_destroy(f->recs[i]->pub);
        f->recs[i]->pub = NULL;
    }
    pthread_mutex_unlock(&f->mu);
}
