/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Recording (rec.h): start and stop, the pattern table, the registry
 * listener that seats a recorder on each matching topic, the records'
 * table that JOURNAL requests ask, and the recorder threads, each of which
 * serves up to SBR_TOPICS topics: it sleeps in sb_relay_wait() on all of
 * them and its bell, and runs a round of each topic (topic.c) when one has
 * messages, a retry comes due, or a sync is pending. One thread keeps up
 * with many topics (a round is a poll, a copy, one write and at most one
 * fdatasync per topic); more start only beyond SBR_TOPICS topics, as
 * futex_waitv bounds one sleep.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/glob.h"
#include "guard.h"
#include "log.h"
#include "rec/rec.h"
#include "rec/state.h"
#include "util/clock.h"
#include "util/vec.h"

#define MS 1000000ull

/* Does a --record pattern match topic @p name? */
static int rec_match(const struct sbd_rec *r, const char *name)
{
    size_t len = strlen(name);

    for (unsigned i = 0; i < r->cfg->n_rec; i++)
        if (sb_glob_match(r->cfg->rec_glob[i], r->glob_len[i], name, len))
            return 1;
    return 0;
}

/* Bring have[] in line with want[]: the records handed over, complete
 * (the mutex orders the seat's writes before these reads). */
static void thread_sync(struct sbr_thread *th)
{
    pthread_mutex_lock(&th->mu);
    memcpy(th->have, th->want, th->nwant * sizeof(th->want[0]));
    th->nhave = th->nwant;
    pthread_mutex_unlock(&th->mu);
}

/* sb_relay_wait() callback: is any recording topic ready? */
static int thread_ready(void *arg, memory_order order)
{
    struct sbr_thread *th = arg;

    for (unsigned i = 0; i < th->nhave; i++)
        if (sbr_topic_ready(th->have[i], order))
            return 1;
    return 0;
}

/* One pass over the thread's topics, then a sleep until one is ready, one
 * wants looking at (a retry, a sync, a full ring to report), or the bell.
 * @return 0, or 1 to stop. */
static int thread_pass(struct sbr_thread *th)
{
    uint32_t seen = sb_relay_bell_seen(&th->bell);
    shmbus_topic *topics[SBR_TOPICS];
    uint64_t now, wake;
    unsigned nt = 0;
    int busy = 0, rc;

    /* relaxed: ordered through the bell, read after it (sbd_rec_stop()
     * stores stop, then rings with release). */
    if (atomic_load_explicit(&th->stop, memory_order_relaxed))
        return 1;
    thread_sync(th);
    now = sb_mono_ns();
    wake = now + SBR_NAP_MS * MS;
    for (unsigned i = 0; i < th->nhave; i++)
        busy |= sbr_topic_round(th->have[i], now, &wake, &th->batch) > 0;
    if (busy)
        return 0;
    for (unsigned i = 0; i < th->nhave; i++)
        if (th->have[i]->state == SBR_RECORDING && th->have[i]->sub != NULL)
            topics[nt++] = th->have[i]->t->t;
    rc = sb_relay_wait(topics, nt, thread_ready, th, wake, &th->bell, seen);
    if (rc < 0 && rc != SHMBUS_ERR_TIMEOUT && rc != -EINTR) {
        sbd_log(SBD_ERROR, "journal: recorder %u cannot sleep: %s", th->idx, shmbus_strerror(rc));
        usleep(1000); /* never spin */
    }
    return 0;
}

static void *thread_main(void *arg)
{
    struct sbr_thread *th = arg;

    while (thread_pass(th) == 0)
        ;
    /* Stopping: every journal flushed and closed, every slot given back. */
    thread_sync(th);
    for (unsigned i = 0; i < th->nhave; i++)
        if (th->have[i]->state != SBR_ENDED)
            sbr_topic_finish(th->have[i]);
    return NULL;
}

/* A thread with room, started if needed. Under mu. */
static struct sbr_thread *thread_pick(struct sbd_rec *r, int *rc)
{
    struct sbr_thread *th;
    sigset_t all, old;

    for (unsigned i = 0; i < r->nthreads; i++)
        if (r->threads[i]->nwant < SBR_TOPICS)
            return r->threads[i];
    if (r->nthreads == SBR_THREADS_MAX) {
        *rc = SHMBUS_ERR_LIMIT;
        return NULL;
    }
    th = calloc(1, sizeof(*th));
    if (th == NULL) {
        *rc = -ENOMEM;
        return NULL;
    }
    th->rec = r;
    th->idx = r->nthreads;
    pthread_mutex_init(&th->mu, NULL);
    /* Every signal blocked but the faults: it may start before the
     * control thread blocks SIGTERM for its signalfd (a topic there at
     * start), and a signal it took would kill the daemon without its stop;
     * SIGBUS must reach the guard (a client truncated a segment the thread
     * reads) and the other faults the log (guard.h sbd_guard_sigmask()). */
    sbd_guard_sigmask(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    *rc = -pthread_create(&th->th, NULL, thread_main, th);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (*rc != 0) {
        pthread_mutex_destroy(&th->mu);
        free(th);
        return NULL;
    }
    r->threads[r->nthreads++] = th;
    return th;
}

/* A new record of @p t, seated and handed to a thread. Under mu and
 * topic_lock. @return it, or NULL (logged). */
static struct sbr_topic *record_new(struct sbd_rec *r, struct sbd_topic *t)
{
    struct sbr_topic *rt = calloc(1, sizeof(*rt));
    shmbus_topic_info info;
    struct sbr_thread *th;
    int rc = 0;

    if (rt == NULL || SB_VEC_RESERVE(r->recs, r->recs_cap, r->nrecs, 1, 16) < 0 ||
        (th = thread_pick(r, &rc)) == NULL) {
        free(rt);
        sbd_log(SBD_ERROR, "journal: topic %s cannot be recorded: %s", t->name,
                shmbus_strerror(rc < 0 ? rc : -ENOMEM));
        return NULL;
    }
    rt->rec = r;
    rt->t = t;
    rt->reliable = t->info.mode == SHMBUS_RELIABLE;
    /* Under topic_lock, before the topic's creator can publish: a journal
     * that reaches this seq is an earlier topic's (topic.c topic_open()). */
    shmbus_topic_info_get(t->t, &info);
    rt->seat_tail = info.published;
    rt->state = SBR_WAITING; /* its thread opens the journal at once */
    rt->asides = 1;          /* its thread looks for set-aside journals once */
    /* Seated now, before the topic's creator can publish: it misses none.
     * A failure (no slot free) is the thread's to retry, as a stop. */
    rc = sbr_topic_seat(rt);
    if (rc < 0)
        sbd_log(SBD_WARN, "journal: topic %s: no recorder seated yet: %s (retried)", t->name,
                shmbus_strerror(rc));
    r->recs[r->nrecs++] = rt;
    pthread_mutex_lock(&th->mu);
    th->want[th->nwant++] = rt;
    pthread_mutex_unlock(&th->mu);
    /* release: the handed-over record reaches the thread that wakes. */
    sb_relay_bell_ring(&th->bell);
    return rt;
}

/* Registry listener: runs under topic_lock in the thread that added the
 * topic, before its creator could publish, and at adoption before the
 * reaper frees a dead daemon's recorder slot. (Lock order: topic_lock,
 * then mu, then a thread's mu; nothing takes them the other way round.) */
static void topic_created(void *arg, struct sbd_topic *t)
{
    struct sbd_rec *r = arg;

    if (!rec_match(r, t->name) || sbd_topic_broken(t))
        return;
    pthread_mutex_lock(&r->mu);
    /* Once stopping, no record: its thread would have ended. */
    if (!r->stop)
        record_new(r, t);
    pthread_mutex_unlock(&r->mu);
}

/* Listen for new topics and record the matching ones there already, under
 * topic_lock so that none is missed. */
static void rec_listen(struct sbd_rec *r, int on)
{
    struct sbd_registry *reg = r->reg;

    pthread_mutex_lock(&reg->topic_lock);
    reg->on_create[SBD_LISTENER_REC] =
        (struct sbd_listener){.fn = on ? topic_created : NULL, .arg = on ? r : NULL};
    if (on) {
        struct cds_lfht_iter it;
        struct cds_lfht_node *n;

        urcu_memb_read_lock();
        cds_lfht_for_each (reg->topics, &it, n)
            topic_created(r, sbd_topic_of(n));
        SBD_TSAN_READ_DONE();
        urcu_memb_read_unlock();
    }
    pthread_mutex_unlock(&reg->topic_lock);
}

int sbd_rec_lock(const struct sbd_config *cfg, int *fd)
{
    char path[SBD_PATH_MAX + sizeof(SBD_REC_LOCK_NAME) + 1], who[SHMBUS_BUS_NAME_MAX + 1] = "";
    ssize_t n;
    int rc;

    *fd = -1;
    if (cfg->n_rec == 0)
        return 0;
    snprintf(path, sizeof(path), "%s/%s", cfg->journal_dir, SBD_REC_LOCK_NAME);
    /* No link followed: whoever may write in the directory could point
     * it at a file the daemon may write. */
    *fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (*fd < 0) {
        rc = -errno;
        fprintf(stderr, "shmbusd: --journal-dir %s: cannot open its lock %s: %s\n",
                cfg->journal_dir, path, strerror(-rc));
        return rc;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0) {
        /* Who holds it, for the next one's message: the bus's name. */
        if (ftruncate(*fd, 0) == 0 && pwrite(*fd, cfg->bus, strlen(cfg->bus), 0) < 0)
            sbd_log(SBD_WARN, "journal: cannot write %s: %s", path, strerror(errno));
        return 0;
    }
    rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
    n = pread(*fd, who, sizeof(who) - 1, 0);
    who[n > 0 ? n : 0] = '\0';
    if (rc == -EBUSY)
        fprintf(stderr,
                "shmbusd: --journal-dir %s is in use by another shmbusd (bus '%s'; it holds "
                "%s): two daemons would continue or set aside each other's journals; give "
                "each bus a directory of its own\n",
                cfg->journal_dir, strspn(who, "\n") == strlen(who) ? "?" : who, path);
    else
        fprintf(stderr, "shmbusd: --journal-dir %s: cannot lock %s: %s\n", cfg->journal_dir, path,
                strerror(-rc));
    close(*fd);
    *fd = -1;
    return rc;
}

int sbd_rec_start(const struct sbd_config *cfg, struct sbd_registry *reg, struct sbd_rec **out)
{
    struct sbd_rec *r;

    *out = NULL;
    if (cfg->n_rec == 0)
        return 0;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->cfg = cfg;
    r->reg = reg;
    r->jopts = (shmbus_journal_opts){
        .segment_size = cfg->journal_segment_size,
        .retain_bytes = cfg->journal_retain_bytes,
        .retain_ns = cfg->journal_retain_ns,
        .sync = cfg->journal_sync,
        .sync_interval_ms = cfg->journal_sync_ms,
        /* Whoever may open the topic's segment by name may read its
         * journal (not a client that gets segments as descriptors only). */
        .perm = cfg->have_group ? 0660u : 0600u,
    };
    for (unsigned i = 0; i < cfg->n_rec; i++)
        r->glob_len[i] = strlen(cfg->rec_glob[i]);
    pthread_mutex_init(&r->mu, NULL);
    rec_listen(r, 1);
    sbd_log(SBD_INFO, "journal: recording %u pattern%s into %s", cfg->n_rec,
            cfg->n_rec == 1 ? "" : "s", cfg->journal_dir);
    *out = r;
    return 0;
}

void sbd_rec_stop(struct sbd_rec *r)
{
    if (r == NULL)
        return;
    rec_listen(r, 0);
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_mutex_unlock(&r->mu);
    for (unsigned i = 0; i < r->nthreads; i++) {
        struct sbr_thread *th = r->threads[i];

        /* relaxed: published by the release of the ring that follows. */
        atomic_store_explicit(&th->stop, 1, memory_order_relaxed);
        sb_relay_bell_ring(&th->bell);
        pthread_join(th->th, NULL);
        pthread_mutex_destroy(&th->mu);
        free(th->batch.buf);
        free(th);
    }
    for (size_t i = 0; i < r->nrecs; i++)
        free(r->recs[i]);
    free(r->recs);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int sbd_rec_dir(struct sbd_rec *r, const char *topic, char *out, size_t cap)
{
    int rc = -ENOENT;

    if (r == NULL)
        return -ENOENT;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nrecs && rc == -ENOENT; i++) {
        if (strcmp(r->recs[i]->t->name, topic) != 0)
            continue;
        rc = strlen(r->cfg->journal_dir) < cap ? 0 : -ENAMETOOLONG;
        if (rc == 0)
            memcpy(out, r->cfg->journal_dir, strlen(r->cfg->journal_dir) + 1);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}
