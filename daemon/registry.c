/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The topic and session tables (registry.h). Sessions change only in the
 * control thread; topics are added by it and by the bridge, serialised by
 * topic_lock, so an add never races another add of the same key. The
 * tables use the lock-free add/del so that readers in other threads (the
 * bridge's) never wait.
 */
#include "registry.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adopt.h"
#include "deadletter.h"
#include "events.h"
#include "guard.h"
#include "log.h"
#include "reaped.h"
#include "reaper.h"
#include "segfile.h"
#include "stall.h"
#include "registry/admin.h"
#include "tsan.h"
#include "util/vec.h"

#ifdef SBD_TSAN
char sbd_tsan_grace;
#endif

#define SBD_TABLE_INIT        64
#define SBD_TABLE_PRESIZE_MAX 65536

/* FNV-1a, 64 bits: the topics' hash (name_hash()). */
#define FNV_OFFSET_BASIS 1469598103934665603ull
#define FNV_PRIME        1099511628211ull
/* Knuth's multiplicative hash (2^32 / golden ratio): spreads the sessions'
 * sequential ids over the table's buckets. */
#define SESSION_HASH_MUL 2654435761u

static unsigned long name_hash(const char *s)
{
    uint64_t h = FNV_OFFSET_BASIS;

    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * FNV_PRIME;
    return (unsigned long)h;
}

static int topic_match(struct cds_lfht_node *node, const void *key)
{
    return strcmp(caa_container_of(node, struct sbd_topic, node)->name, key) == 0;
}

/* Buckets for @p n entries: no resize (a background liburcu job) is
 * needed before the limit is reached, up to a bound. */
static unsigned long table_size(uint32_t n)
{
    unsigned long b = SBD_TABLE_INIT;

    while (b < n && b < SBD_TABLE_PRESIZE_MAX)
        b <<= 1;
    return b;
}

int sbd_registry_init(struct sbd_registry *r, const struct sbd_config *cfg)
{
    memset(r, 0, sizeof(*r));
    r->cfg = cfg;
    pthread_mutex_init(&r->topic_lock, NULL);
    r->topics =
        cds_lfht_new_flavor(table_size(cfg->max_topics), SBD_TABLE_INIT, 0,
                            CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, &urcu_memb_flavor, NULL);
    r->sessions =
        cds_lfht_new_flavor(table_size(cfg->max_clients), SBD_TABLE_INIT, 0,
                            CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, &urcu_memb_flavor, NULL);
    if (r->topics == NULL || r->sessions == NULL) {
        if (r->topics != NULL)
            cds_lfht_destroy(r->topics, NULL);
        if (r->sessions != NULL)
            cds_lfht_destroy(r->sessions, NULL);
        return -ENOMEM;
    }
    return 0;
}

static void topic_free(struct sbd_topic *t)
{
    sbd_dl_free(t);
    sbd_stall_free(t->stall);
    shmbus_topic_destroy(t->t);
    free(t);
}

/* Does session @p s hold topic @p t (open, a publisher or a slot)? */
static int session_holds(const struct sbd_session *s, const struct sbd_topic *t)
{
    for (uint32_t i = 0; i < s->nholds; i++)
        if (s->holds[i].topic == t)
            return 1;
    return 0;
}

/* The live owner of slot or publisher record @p idx of @p t, other than
 * this daemon (which is stopping). @return its pid, or 0. */
static pid_t owner_live(const struct sbd_topic *t, enum sb_admin_kind kind, uint32_t idx)
{
    uint32_t pid;
    uint64_t start;

    /* A slot counts in any state but FREE (INIT: being set up, or left
     * by a live process whose daemon could not be told); a record when
     * ACTIVE (a DEAD one's owner is dead). */
    if (!sb_admin_owner(t->t, kind, idx, &pid, &start) || (pid_t)pid == getpid())
        return 0;
    return sbd_reaper_dead((pid_t)pid, start) ? 0 : (pid_t)pid;
}

/*
 * A live process that uses topic @p t: one whose connection holds it, or
 * that owns a subscriber slot or a publisher record in its segment
 * (processes of a previous daemon, direct attachers). Under
 * urcu_memb_read_lock; control thread. @return its pid (*how says what it
 * holds), or 0.
 */
static pid_t topic_user(struct sbd_registry *r, const struct sbd_topic *t, const char **how)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;
    pid_t pid;

    cds_lfht_for_each (r->sessions, &it, n) {
        const struct sbd_session *s = caa_container_of(n, struct sbd_session, node);

        *how = "a connection";
        if (s->hello && session_holds(s, t) && !sbd_reaper_dead(s->pid, s->start))
            return s->pid;
    }
    *how = "a subscriber slot";
    for (uint32_t i = 0; i < t->info.max_subscribers; i++)
        if ((pid = owner_live(t, SB_ADMIN_SLOT, i)) != 0)
            return pid;
    *how = "a publisher";
    for (uint32_t i = 0; i < t->info.max_publishers; i++)
        if ((pid = owner_live(t, SB_ADMIN_PUB, i)) != 0)
            return pid;
    return 0;
}

/*
 * The daemon stops: remove topic @p t unless a live process uses it (with
 * --stop-clean, whatever uses it); a kept one is adopted by the next
 * daemon. Under urcu_memb_read_lock, before the sessions go.
 * @return 1 removed, 0 kept.
 */
static int topic_retire(struct sbd_registry *r, struct sbd_topic *t)
{
    const char *how = "";
    pid_t user;

    if (sbd_topic_broken(t) == 2)
        return 1; /* its segment was removed when it broke */
    if (sbd_topic_broken(t)) {
        shmbus_topic_unlink(t->seg); /* truncated: unusable by anyone */
        return 1;
    }
    user = r->cfg->stop_clean ? 0 : topic_user(r, t, &how);
    if (user != 0) {
        sbd_log(SBD_INFO, "topic %s kept: process %d uses it (%s)", t->name, (int)user, how);
        return 0;
    }
    /* Gone before unlinked: a process that still maps it unseen (attached
     * by name, or holding nothing) gets SHMBUS_ERR_TOPIC_GONE instead of
     * publishing into a segment no daemon will serve again. */
    sb_admin_topic_gone(t->t);
    if (shmbus_topic_unlink(t->seg) < 0)
        sbd_log(SBD_WARN, "could not unlink segment %s", t->seg);
    sbd_log(SBD_INFO, "topic %s removed: %s", t->name,
            r->cfg->stop_clean ? "--stop-clean" : "no live process uses it");
    return 1;
}

void sbd_registry_fini(struct sbd_registry *r, int retire)
{
    struct sbd_topic **all = calloc(r->ntopics + 1u, sizeof(*all));
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;
    uint32_t k = 0, removed = 0;

    urcu_memb_read_lock();
    /* Topics first: what the sessions hold tells which are in use. */
    cds_lfht_for_each (r->topics, &it, n) {
        struct sbd_topic *t = sbd_topic_of(n);

        cds_lfht_del(r->topics, n);
        if (retire)
            removed += (uint32_t)topic_retire(r, t);
        if (all != NULL && k < r->ntopics)
            all[k++] = t;
    }
    cds_lfht_for_each (r->sessions, &it, n)
        sbd_session_remove(r, caa_container_of(n, struct sbd_session, node));
    urcu_memb_read_unlock();
    if (r->ntopics > 0)
        sbd_log(SBD_INFO, "%u topics removed, %u kept for the next shmbusd", removed,
                r->ntopics - removed);
    /* No reader may still see a topic, and the sessions' call_rcu frees
     * have run; then the topics can go. */
    urcu_memb_synchronize_rcu();
    urcu_memb_barrier();
    for (uint32_t i = 0; i < k; i++)
        topic_free(all[i]);
    free(all);
    for (uint32_t i = 0; i < r->nretired; i++)
        topic_free(r->retired[i]);
    free(r->retired);
    for (uint32_t i = 0; i < r->npending; i++)
        sbd_log(SBD_WARN, "segment %s: %s: never taken over, left in place", r->pending[i].seg,
                shmbus_strerror(r->pending[i].rc));
    free(r->pending);
    cds_lfht_destroy(r->sessions, NULL);
    cds_lfht_destroy(r->topics, NULL);
    pthread_mutex_destroy(&r->topic_lock);
}

int sbd_topic_remove(struct sbd_registry *r, struct sbd_topic *t, int force, char *why,
                     size_t why_len)
{
    const char *how = "";
    pid_t user = 0;
    int rc = 0;

    pthread_mutex_lock(&r->topic_lock);
    urcu_memb_read_lock();
    if (sbd_topic_lookup(r, t->name) != t)
        rc = -ENOENT; /* removed meanwhile: only this thread removes, so never */
    else if (!force)
        user = topic_user(r, t, &how);
    if (user != 0) {
        snprintf(why, why_len, "topic '%.60s' is in use: process %d holds %s (--force removes it)",
                 t->name, (int)user, how);
        rc = SHMBUS_ERR_BUSY;
    }
    if (rc == 0 && SB_VEC_RESERVE(r->retired, r->retired_cap, r->nretired, 1, 8) < 0)
        rc = -ENOMEM;
    if (rc == 0)
        cds_lfht_del(r->topics, &t->node);
    urcu_memb_read_unlock();
    if (rc < 0) {
        pthread_mutex_unlock(&r->topic_lock);
        return rc;
    }
    /* Gone before unlinked, as a stop removes a topic (topic_retire()). */
    if (!sbd_topic_broken(t))
        sb_admin_topic_gone(t->t);
    if (sbd_topic_broken(t) != 2 && shmbus_topic_unlink(t->seg) < 0)
        sbd_log(SBD_WARN, "could not unlink segment %s", t->seg);
    r->retired[r->nretired++] = t;
    /* Out of the name table, so out of --max-topics; still in shm_bytes:
     * the daemon's mapping keeps the pages until it stops, and --max-shm
     * bounds what the bus really pins. */
    r->ntopics--;
    pthread_mutex_unlock(&r->topic_lock);
    return 0;
}

void sbd_topic_seek(struct sbd_registry *r, const char *name, struct cds_lfht_iter *it)
{
    cds_lfht_lookup(r->topics, name_hash(name), topic_match, name, it);
}

struct sbd_topic *sbd_topic_lookup(struct sbd_registry *r, const char *name)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;

    cds_lfht_lookup(r->topics, name_hash(name), topic_match, name, &it);
    n = cds_lfht_iter_get_node(&it);
    return n ? sbd_topic_of(n) : NULL;
}

struct sbd_topic *sbd_topic_find(struct sbd_registry *r, const char *name)
{
    struct sbd_topic *t;

    urcu_memb_read_lock();
    t = sbd_topic_lookup(r, name);
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    return t;
}

/* Does an existing topic satisfy the request? Zero fields accept anything. */
static int topic_matches(const struct sbd_topic *t, const struct sb_wire_open *q, char *why,
                         size_t why_len)
{
    const shmbus_topic_info *i = &t->info;
    const struct {
        const char *what;
        uint32_t asked, has;
    } f[] = {{"mode", q->mode, i->mode},
             {"capacity", q->capacity, i->capacity},
             {"max_msg_size", q->max_msg_size, i->max_msg_size},
             {"max_subscribers", q->max_subscribers, i->max_subscribers},
             {"max_groups", q->max_groups, i->max_groups},
             {"max_publishers", q->max_publishers, i->max_publishers},
             {"flags", q->topic_flags, i->flags},
             {"stall_timeout_ms", q->stall_timeout_ms, i->stall_timeout_ms}};

    for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
        if (f[k].asked != 0 && f[k].asked != f[k].has) {
            snprintf(why, why_len, "topic '%.60s' exists with %s %u, asked %u", t->name, f[k].what,
                     f[k].has, f[k].asked);
            return SHMBUS_ERR_MISMATCH;
        }
    }
    return 0;
}

/* May the bus take one more topic @p name of @p slots subscriber slots
 * and a segment of @p size bytes (--max-topics, --max-slots,
 * --max-segment, --max-shm)? The events topic (events.h), the daemon's
 * own and of a fixed size, takes no client's place: it counts in --max-shm
 * only. @return 0 or SHMBUS_ERR_LIMIT with *why. */
static int topic_fits(const struct sbd_registry *r, const char *name, uint32_t slots, uint64_t size,
                      char *why, size_t why_len)
{
    const struct sbd_config *c = r->cfg;
    int own = strcmp(name, SBD_EVENTS_TOPIC) == 0;

    if (!own && r->ntopics - r->ntopics_own >= c->max_topics) {
        snprintf(why, why_len, "topic limit reached (%u topics, --max-topics)", c->max_topics);
        return SHMBUS_ERR_LIMIT;
    }
    if (!own && slots > c->max_slots) {
        snprintf(why, why_len, "%u subscriber slots, limit %u (--max-slots)", slots, c->max_slots);
        return SHMBUS_ERR_LIMIT;
    }
    if (!own && size > c->max_segment) {
        snprintf(why, why_len, "segment of %llu bytes exceeds --max-segment %llu",
                 (unsigned long long)size, (unsigned long long)c->max_segment);
        return SHMBUS_ERR_LIMIT;
    }
    if (r->shm_bytes + size > c->max_shm) {
        snprintf(why, why_len, "segment of %llu bytes would pass --max-shm %llu (%llu in use)",
                 (unsigned long long)size, (unsigned long long)c->max_shm,
                 (unsigned long long)r->shm_bytes);
        return SHMBUS_ERR_LIMIT;
    }
    return 0;
}

/* The reason below states the largest message in MiB. */
static_assert(SB_ADMIN_MSG_MAX % (1u << 20) == 0, "max_msg_size bound in whole MiB");

/* Check the limits a new topic must stay within; fills @p o (defaults
 * applied) and @p size. */
static int topic_admit(const struct sbd_registry *r, const struct sb_wire_open *q,
                       shmbus_topic_opts *o, uint64_t *size, char *why, size_t why_len)
{
    const struct sbd_config *c = r->cfg;
    shmbus_topic_opts asked = {.mode = q->mode,
                               .capacity = q->capacity,
                               .max_msg_size = q->max_msg_size,
                               .max_subscribers = q->max_subscribers,
                               .max_groups = q->max_groups,
                               .max_publishers = q->max_publishers,
                               .perm = c->have_group ? 0660u : 0600u,
                               .flags = q->topic_flags,
                               .stall_timeout_ms = q->stall_timeout_ms};

    if (sb_admin_plan(&asked, o, size) < 0) {
        snprintf(why, why_len,
                 "invalid topic options (capacity: power of two %u..2^%u, "
                 "max_msg_size 1..%u MiB, slots 1..%u, groups 1..%u)",
                 SB_ADMIN_CAPACITY_MIN, SB_ADMIN_CAPACITY_BITS, SB_ADMIN_MSG_MAX >> 20,
                 SB_ADMIN_SUBS_MAX, SB_ADMIN_GROUPS_MAX);
        return SHMBUS_ERR_INVALID;
    }
    return topic_fits(r, q->name, o->max_subscribers, *size, why, why_len);
}

/* Create the segment of new topic @p name (sbd_seg_create()). */
static int topic_create(struct sbd_registry *r, const char *name, const shmbus_topic_opts *o,
                        struct sbd_topic **out, char *why, size_t why_len)
{
    struct sbd_topic *t = calloc(1, sizeof(*t));
    int rc;

    if (t == NULL)
        return -ENOMEM;
    /* Fits: names were checked against SHMBUS_TOPIC_NAME_MAX. */
    memcpy(t->name, name, strnlen(name, SHMBUS_TOPIC_NAME_MAX));
    t->creator = geteuid(); /* the OPEN that asked names its client's (on_open()) */
    rc = sbd_seg_create(r->cfg, t->name, o, t->seg, sizeof(t->seg), &t->t);
    if (rc < 0) {
        snprintf(why, why_len, "cannot create segment %.70s: %s", t->seg, shmbus_strerror(rc));
        free(t);
        return rc;
    }
    shmbus_topic_info_get(t->t, &t->info);
    *out = t;
    return 0;
}

/* Make a new topic visible to lookups (adopt.h). */
void sbd_topic_insert(struct sbd_registry *r, struct sbd_topic *t)
{
    void *base;
    size_t len;

    sb_admin_mapping(t->t, &base, &len);
    if (sbd_guard_add(base, len, &t->broken) < 0)
        sbd_log(SBD_WARN, "topic %s: out of memory: not guarded against truncation", t->name);
    t->id = ++r->next_topic;
    urcu_memb_read_lock();
    SBD_TSAN_RELEASE(t); /* complete: sbd_topic_of() */
    cds_lfht_add(r->topics, name_hash(t->name), &t->node);
    urcu_memb_read_unlock();
    r->ntopics++;
    r->ntopics_own += strcmp(t->name, SBD_EVENTS_TOPIC) == 0;
    r->shm_bytes += t->info.segment_size;
}

/* Attach segment @p seg as a topic (adopt.h). */
int sbd_topic_attach(struct sbd_registry *r, const char *seg, struct sbd_topic **out,
                     struct stat *judged)
{
    const char *name = sbd_seg_topic(r->cfg->bus, seg);
    /* No order: initialised before the window opens; set only by this
     * thread's own SIGBUS handler (guard.h sbd_guard_window()). */
    _Atomic int hit = 0;
    struct sbd_topic *t;
    int rc, fd;

    judged->st_ino = 0;
    if (name == NULL)
        return SHMBUS_ERR_BAD_NAME;
    fd = sbd_seg_open(r->cfg, seg, judged);
    if (fd < 0)
        return fd;
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        close(fd);
        return -ENOMEM;
    }
    memcpy(t->name, name, strlen(name));
    memcpy(t->seg, seg, strlen(seg));
    t->creator = geteuid(); /* a segment of the daemon's uid */
    sbd_guard_window(&hit);
    rc = sb_admin_topic_map(fd, &t->t);
    close(fd);
    if (rc == 0) {
        shmbus_topic_info_get(t->t, &t->info);
        sb_admin_waiters_settle(t->t);
    }
    sbd_guard_window(NULL);
    /* relaxed: set by this thread's own SIGBUS handler. A fault decides
     * whatever the map returned: a header read as the zeroes the handler
     * mapped fails as BAD_MAGIC or INVALID, and is truncated all the same. */
    if (atomic_load_explicit(&hit, memory_order_relaxed)) {
        if (rc == 0)
            shmbus_topic_destroy(t->t);
        rc = SHMBUS_ERR_TRUNCATED;
    }
    if (rc < 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/*
 * A new topic's first segment name may hold a segment the daemon may
 * serve: one a process of its uid created by name (the daemonless API).
 * Serve that one, so that processes that open it by name and the bus's
 * clients share the topic, rather than split it over two segments (and
 * whatever OPEN asks, NOCREATE or not). With topic_lock held.
 * @return 0 with the topic registered in *out; 1 when there is none to
 * serve (no file, one not ours, a broken one, one whose creator died
 * making it: a new segment is made); SHMBUS_ERR_NOT_READY while its
 * creator is still writing it; SHMBUS_ERR_LIMIT when it passes a limit
 * of the bus (left in place); -errno.
 */
static int topic_take_first(struct sbd_registry *r, const char *name, struct sbd_topic **out,
                            char *why, size_t why_len)
{
    char seg[SHMBUS_NAME_MAX + 1], path[SHMBUS_NAME_MAX + 16];
    struct stat judged;
    int rc;

    sbd_seg_name(seg, sizeof(seg), r->cfg->bus, name, 0);
    snprintf(path, sizeof(path), "/dev/shm/%s", seg);
    if (access(path, F_OK) < 0)
        return 1; /* the usual case: nothing there */
    rc = sbd_topic_attach(r, seg, out, &judged);
    if (rc == SHMBUS_ERR_NOT_READY && !sbd_seg_abandoned(&judged, rc)) {
        snprintf(why, why_len, "topic '%.60s': segment %s is still being created, try again", name,
                 seg);
        return rc;
    }
    if (rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE)
        return rc; /* ours to fail, not the file's */
    if (rc < 0)
        return 1; /* logged by sbd_seg_open(), or not a topic: a new name */
    rc = topic_fits(r, name, (*out)->info.max_subscribers, (*out)->info.segment_size, why, why_len);
    if (rc < 0) {
        sbd_log(SBD_WARN, "topic %s: segment %s, made by a process of this daemon's uid: %s", name,
                seg, why);
        topic_free(*out);
        return rc;
    }
    sbd_topic_insert(r, *out);
    sbd_log(SBD_INFO, "topic %s: serving segment %s, which a process of this daemon's uid made",
            name, seg);
    sbd_registry_created(r, *out);
    return 0;
}

/* No topic serves the name @p req opens: may it be created? With
 * topic_lock held. @return 0, or 0 with the topic in *out when its first
 * name holds one to serve (topic_take_first()); -ENOENT (NOCREATE);
 * SHMBUS_ERR_NOT_READY while its segment waits to be taken over
 * (sbd_registry_retry()) or created; SHMBUS_ERR_LIMIT. */
static int topic_absent(struct sbd_registry *r, const struct sb_wire_open *req,
                        struct sbd_topic **out, char *why, size_t why_len)
{
    int rc;

    if (sbd_pending_has_topic(r, req->name)) {
        snprintf(why, why_len, "topic '%.60s': its segment is not taken over yet, try again",
                 req->name);
        return SHMBUS_ERR_NOT_READY;
    }
    rc = topic_take_first(r, req->name, out, why, why_len);
    if (rc <= 0)
        return rc;
    *out = NULL;
    if (req->flags & SHMBUS_OPEN_NOCREATE) {
        snprintf(why, why_len, "no topic '%s'", req->name);
        return -ENOENT;
    }
    return 0;
}

static int topic_open_locked(struct sbd_registry *r, const struct sb_wire_open *req,
                             struct sbd_topic **out, int *created, char *why, size_t why_len)
{
    shmbus_topic_opts o;
    struct sbd_topic *t;
    uint64_t size;
    int rc;

    urcu_memb_read_lock();
    t = sbd_topic_lookup(r, req->name);
    urcu_memb_read_unlock();
    /* Removed topics are retired, never freed before shutdown: t stays valid. */
    if (t != NULL && sbd_topic_broken(t)) {
        snprintf(why, why_len, "topic '%.60s': a client truncated its segment", t->name);
        return SHMBUS_ERR_TRUNCATED;
    }
    if (t != NULL) {
        *out = t;
        return topic_matches(t, req, why, why_len);
    }
    t = NULL;
    rc = topic_absent(r, req, &t, why, why_len);
    if (rc == 0 && t != NULL) {
        *out = t;
        return topic_matches(t, req, why, why_len);
    }
    if (rc == 0)
        rc = topic_admit(r, req, &o, &size, why, why_len);
    if (rc == 0)
        rc = topic_create(r, req->name, &o, &t, why, why_len);
    if (rc < 0)
        return rc;
    sbd_topic_insert(r, t);
    *created = 1;
    *out = t;
    sbd_log(SBD_INFO, "topic %s created (%s, %u cells of %u bytes, %llu bytes)", t->name,
            t->info.mode == SHMBUS_RELIABLE ? "reliable" : "lossy", t->info.capacity,
            t->info.max_msg_size, (unsigned long long)t->info.segment_size);
    sbd_registry_created(r, t);
    return 0;
}

int sbd_topic_open(struct sbd_registry *r, const struct sb_wire_open *req, struct sbd_topic **out,
                   int *created, char *why, size_t why_len)
{
    int rc;

    *created = 0;
    pthread_mutex_lock(&r->topic_lock);
    rc = topic_open_locked(r, req, out, created, why, why_len);
    pthread_mutex_unlock(&r->topic_lock);
    return rc;
}

static void entry_fill(const struct sbd_topic *t, shmbus_topic_entry *e)
{
    memset(e, 0, sizeof(*e));
    memcpy(e->name, t->name, sizeof(e->name));
    e->mode = t->info.mode;
    e->flags = t->info.flags;
    e->capacity = t->info.capacity;
    e->max_msg_size = t->info.max_msg_size;
    e->max_subscribers = t->info.max_subscribers;
    e->max_groups = t->info.max_groups;
    e->segment_size = t->info.segment_size;
    /* relaxed: independent monitoring counters. */
    e->clients = atomic_load_explicit(&t->clients, memory_order_relaxed);
    e->publishers = atomic_load_explicit(&t->publishers, memory_order_relaxed);
    e->subscribers = atomic_load_explicit(&t->subscribers, memory_order_relaxed);
}

/* Keep the @p cap smallest names after @p after: a sorted window that a
 * smaller name enters at its place, pushing the largest out. */
static void window_insert(shmbus_topic_entry *w, unsigned *n, unsigned cap,
                          const struct sbd_topic *t)
{
    unsigned i = *n;

    if (i == cap && strcmp(t->name, w[cap - 1].name) >= 0)
        return;
    if (i == cap)
        i--;
    while (i > 0 && strcmp(w[i - 1].name, t->name) > 0) {
        w[i] = w[i - 1];
        i--;
    }
    entry_fill(t, &w[i]);
    if (*n < cap)
        (*n)++;
}

unsigned sbd_topic_list(struct sbd_registry *r, const char *after, shmbus_topic_entry *out,
                        unsigned cap)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;
    unsigned count = 0;

    if (cap == 0)
        return 0;
    urcu_memb_read_lock();
    cds_lfht_for_each (r->topics, &it, n) {
        const struct sbd_topic *t = sbd_topic_of(n);

        /* The daemon's own topics are read by name, not listed (events.h). */
        if (strcmp(t->name, after) > 0 && !sbd_events_reserved(t->name))
            window_insert(out, &count, cap, t);
    }
    urcu_memb_read_unlock();
    return count;
}

/* Drop hold @p i; a slot is freed in the segment only if @p free_slot. */
static void session_unhold(struct sbd_session *s, uint32_t i, int free_slot)
{
    struct sbd_hold h = s->holds[i];

    s->holds[i] = s->holds[--s->nholds];
    /* relaxed, each count: as in sbd_session_hold() (monitoring counters
     * of one writer, this thread, read alone by entry_fill()). */
    if (h.kind == SBD_HOLD_OPEN) {
        atomic_fetch_sub_explicit(&h.topic->clients, 1, memory_order_relaxed);
    } else if (h.kind == SBD_HOLD_PUB) {
        atomic_fetch_sub_explicit(&h.topic->publishers, 1, memory_order_relaxed);
    } else {
        if (free_slot && !sbd_topic_broken(h.topic)) {
            uint32_t returned = sb_admin_slot_free(h.topic->t, h.slot, s->dead);

            if (s->dead) {
                sbd_reaped_note(h.topic, (uint32_t)s->pid, SBD_REAPED_SLOTS, 1);
                sbd_reaped_note(h.topic, (uint32_t)s->pid, SBD_REAPED_RETURNED, returned);
            }
        }
        /* relaxed: the count alone; the slot's release is admin.c's. */
        atomic_fetch_sub_explicit(&h.topic->subscribers, 1, memory_order_relaxed);
    }
}

struct sbd_session *sbd_session_add(struct sbd_registry *r, int fd)
{
    struct sbd_session *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->fd = fd;
    s->id = ++r->next_session;
    urcu_memb_read_lock();
    cds_lfht_add(r->sessions, (unsigned long)s->id * SESSION_HASH_MUL, &s->node);
    urcu_memb_read_unlock();
    r->nsessions++;
    return s;
}

static void session_free(struct rcu_head *head)
{
    struct sbd_session *s = caa_container_of(head, struct sbd_session, rcu);

    SBD_TSAN_ACQUIRE(s);
    SBD_TSAN_GRACE();
    free(s->holds);
    free(s);
}

void sbd_session_remove(struct sbd_registry *r, struct sbd_session *s)
{
    /* A live process keeps its slots in use (it closed its connection, or
     * the daemon is stopping): they stay in the segment, and the reaper
     * frees them when the process dies. */
    while (s->nholds > 0)
        session_unhold(s, s->nholds - 1, s->dead);
    urcu_memb_read_lock();
    cds_lfht_del(r->sessions, &s->node);
    urcu_memb_read_unlock();
    close(s->fd);
    s->fd = -1;
    r->nsessions--;
    SBD_TSAN_RELEASE(s);
    urcu_memb_call_rcu(&s->rcu, session_free);
}

int sbd_session_hold(struct sbd_session *s, struct sbd_topic *t, uint32_t kind, uint32_t slot)
{
    if (s->nholds >= SBD_HOLDS_MAX)
        return SHMBUS_ERR_LIMIT;
    if (SB_VEC_RESERVE(s->holds, s->cap, s->nholds, 1, 8) < 0)
        return -ENOMEM;
    s->holds[s->nholds++] = (struct sbd_hold){.topic = t, .kind = kind, .slot = slot};
    /* relaxed, each count: monitoring counters, one writer (this thread),
     * read alone by entry_fill(); nothing is published with them. */
    if (kind == SBD_HOLD_OPEN)
        atomic_fetch_add_explicit(&t->clients, 1, memory_order_relaxed);
    else if (kind == SBD_HOLD_PUB)
        atomic_fetch_add_explicit(&t->publishers, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&t->subscribers, 1, memory_order_relaxed);
    return 0;
}

int sbd_session_find(const struct sbd_session *s, uint32_t topic_id, uint32_t kind, uint32_t slot)
{
    for (uint32_t i = s->nholds; i-- > 0;) {
        const struct sbd_hold *h = &s->holds[i];

        if (h->topic->id == topic_id && h->kind == kind &&
            (kind != SBD_HOLD_SLOT || h->slot == slot))
            return (int)i;
    }
    return -1;
}

void sbd_session_release(struct sbd_session *s, uint32_t i)
{
    session_unhold(s, i, 1);
}

void sbd_slot_reap(struct sbd_registry *r, struct sbd_topic *t, uint32_t idx)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;
    uint32_t pid = 0, returned;
    uint64_t start;

    urcu_memb_read_lock();
    cds_lfht_for_each (r->sessions, &it, n) {
        struct sbd_session *s = caa_container_of(n, struct sbd_session, node);
        int i = sbd_session_find(s, t->id, SBD_HOLD_SLOT, idx);

        if (i >= 0) {
            s->dead = 1;
            sbd_session_release(s, (uint32_t)i);
            urcu_memb_read_unlock();
            return;
        }
    }
    urcu_memb_read_unlock();
    if (sbd_topic_broken(t))
        return; /* nothing to free in a segment no longer served */
    sb_admin_owner(t->t, SB_ADMIN_SLOT, idx, &pid, &start);
    returned = sb_admin_slot_free(t->t, idx, 1);
    sbd_reaped_note(t, pid, SBD_REAPED_SLOTS, 1);
    sbd_reaped_note(t, pid, SBD_REAPED_RETURNED, returned);
}
