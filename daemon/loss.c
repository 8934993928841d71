/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loss scanner (loss.h). One thread, registered with liburcu, walks
 * the topic table every SBD_LOSS_TICK_MS and reads each topic's busy
 * slots as monitors do (shmbus_topic_slots_get(): a racy snapshot of
 * relaxed loads). For each slot it remembers the owner and the count last
 * seen; a count above it is told with the delta. A slot that changed
 * owner, or whose count went down (its owner left and someone took it
 * again between two looks), starts from zero: a new subscriber's count
 * does. The topics of the daemon itself (`_shmbus.`) are skipped: a slow
 * reader of the events topic would otherwise be told of its losses on
 * the topic it is losing, and sees them in shmbus_msg.lost anyway.
 */
#include "loss.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "log.h"
#include "registry.h"
#include "util/clock.h"
#include "util/vec.h"

/* What was last seen of one slot. */
struct loss_mark {
    uint32_t pid; /* 0: free at the last look */
    uint64_t lost;
};

/* What is remembered of one topic: its slots' marks. */
struct loss_topic {
    uint32_t nslots;
    struct loss_mark slot[];
};

struct sbd_loss {
    struct sbd_registry *reg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int stop;          /* under mu */
    /* The scanner thread's alone: records by topic id (ids are given in
     * order and topics stay until the daemon stops), the snapshot buffer,
     * and whether the first walk is done. */
    struct loss_topic **topics;
    size_t ntopics, topics_cap;
    shmbus_slot_info *info;
    size_t info_cap;
    int walked;
};

/* The record of @p t, made on first use with every mark at what the slots
 * hold now if @p now, else at zero. @return it, or NULL (no memory: the
 * topic is looked at again next tick). */
static struct loss_topic *loss_topic_of(struct sbd_loss *l, const struct sbd_topic *t)
{
    uint32_t n = t->info.max_subscribers;
    struct loss_topic *lt;

    if (t->id >= l->ntopics) {
        if (SB_VEC_RESERVE(l->topics, l->topics_cap, l->ntopics, t->id + 1 - l->ntopics, 64) < 0)
            return NULL;
        memset(l->topics + l->ntopics, 0, (t->id + 1 - l->ntopics) * sizeof(*l->topics));
        l->ntopics = t->id + 1;
    }
    if (l->topics[t->id] != NULL)
        return l->topics[t->id];
    lt = calloc(1, sizeof(*lt) + (size_t)n * sizeof(lt->slot[0]));
    if (lt == NULL)
        return NULL;
    lt->nslots = n;
    l->topics[t->id] = lt;
    return lt;
}

/* Tell that slot @p s of @p t lost @p delta more messages. */
static void loss_tell(const struct sbd_topic *t, const shmbus_slot_info *s, uint64_t delta)
{
    struct sbd_ev_field f[6] = {
        SBD_EV_S("topic", t->name), SBD_EV_U("slot", s->index), SBD_EV_U("pid", s->pid),
        SBD_EV_U("lost", delta),    SBD_EV_U("total", s->lost),
    };
    unsigned n = 5;

    if (s->group_name[0] != '\0')
        f[n++] = SBD_EV_S("group", s->group_name);
    sbd_event("loss", f, n);
}

/* Compare @p n busy slots of @p t (@p v) with their marks in @p lt and
 * tell the moves; a first look (@p first) only takes the counts in. */
static void loss_compare(struct loss_topic *lt, const struct sbd_topic *t,
                         const shmbus_slot_info *v, unsigned n, int first)
{
    uint32_t next = 0; /* slots below it that are not in v are free */

    for (unsigned k = 0; k < n; k++) {
        const shmbus_slot_info *s = &v[k];
        struct loss_mark *m;

        if (s->index >= lt->nslots)
            continue; /* a snapshot never says so; cheap to refuse */
        while (next < s->index)
            lt->slot[next++].pid = 0;
        next = s->index + 1;
        m = &lt->slot[s->index];
        if (!first && (m->pid != s->pid || s->lost < m->lost))
            m->lost = 0; /* a new subscriber: its count started at zero */
        if (!first && s->lost > m->lost)
            loss_tell(t, s, s->lost - m->lost);
        m->pid = s->pid;
        m->lost = s->lost;
    }
    while (next < lt->nslots)
        lt->slot[next++].pid = 0;
}

/* Look at topic @p t's slots once. */
static void loss_look(struct sbd_loss *l, const struct sbd_topic *t)
{
    struct loss_topic *lt;
    int n, first;

    /* A truncated segment (guard.h) has nothing left to read; the daemon's
     * own topics are not followed (top of file). */
    if (sbd_topic_broken(t) || sbd_events_reserved(t->name))
        return;
    if (SB_VEC_RESERVE(l->info, l->info_cap, 0, t->info.max_subscribers, 64) < 0)
        return; /* no memory now: the next tick tries again */
    first = t->id >= l->ntopics || l->topics[t->id] == NULL;
    n = shmbus_topic_slots_get(t->t, l->info, t->info.max_subscribers);
    if (n <= 0 && first)
        return; /* nobody there yet: no record needed */
    lt = loss_topic_of(l, t);
    if (lt == NULL)
        return;
    if (n > (int)t->info.max_subscribers)
        n = (int)t->info.max_subscribers;
    /* A topic met in the first walk was there before us: its counts so
     * far are history. One made since is followed from its start. */
    loss_compare(lt, t, l->info, n < 0 ? 0 : (unsigned)n, first && !l->walked);
}

/* One walk over every topic. */
static void loss_walk(struct sbd_loss *l)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;

    urcu_memb_read_lock();
    cds_lfht_for_each (l->reg->topics, &it, n)
        loss_look(l, sbd_topic_of(n));
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    l->walked = 1;
}

/* Wait one tick, or until stopped. @return 1 to go on, 0 to stop. */
static int loss_wait(struct sbd_loss *l)
{
    struct timespec ts;
    int go;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)SBD_LOSS_TICK_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT)
        ;
    go = !l->stop;
    pthread_mutex_unlock(&l->mu);
    return go;
}

static void *loss_main(void *arg)
{
    struct sbd_loss *l = arg;

    urcu_memb_register_thread();
    do
        loss_walk(l);
    while (loss_wait(l));
    urcu_memb_unregister_thread();
    return NULL;
}

/* Free @p l and what it kept (its thread not running). */
static void loss_free(struct sbd_loss *l)
{
    for (size_t i = 0; i < l->ntopics; i++)
        free(l->topics[i]);
    free(l->topics);
    free(l->info);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int sbd_loss_start(struct sbd_registry *r, struct sbd_loss **out)
{
    struct sbd_loss *l = calloc(1, sizeof(*l));
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (l == NULL) {
        sbd_log(SBD_ERROR, "events: no memory for the loss scanner");
        return -ENOMEM;
    }
    l->reg = r;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    rc = pthread_create(&l->thread, NULL, loss_main, l);
    if (rc != 0) {
        sbd_log(SBD_ERROR, "events: cannot start the loss scanner: %s", strerror(rc));
        loss_free(l);
        return -rc;
    }
    *out = l;
    return 0;
}

void sbd_loss_stop(struct sbd_loss *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    loss_free(l);
}
