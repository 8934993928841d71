/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Taking over the segments a previous daemon of the bus left
 * (registry.h sbd_registry_adopt(), sbd_registry_retry()): which ones are
 * served, retried, removed or left, and the queue of those to retry.
 */
#include "adopt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "events.h"
#include "log.h"
#include "segfile.h"
#include "util/clock.h"
#include "util/vec.h"

/* What becomes of @p seg, a second segment of a topic already served: a
 * generation name is the daemon's own making, of no use now, and removed;
 * the first name may be a direct creator's of our uid, whose processes
 * open it by name, and is left to them. */
static int adopt_second_fate(const struct sbd_registry *r, const char *seg)
{
    return sbd_seg_has_generation(r->cfg->bus, seg) ? SBD_ADOPT_REMOVED : SBD_ADOPT_LEFT;
}

/* Tell readers of the events topic that @p seg is not served (@p why),
 * and whether it was "removed" or "left" in place (@p action). */
static void adopt_refused(const char *seg, const char *why, const char *action)
{
    sbd_event("segment_refused",
              (struct sbd_ev_field[]){SBD_EV_S("segment", seg), SBD_EV_S("why", why),
                                      SBD_EV_S("action", action)},
              3);
}

/* Log that @p seg is a second segment of the topic @p served serves. */
static void adopt_second(const struct sbd_registry *r, const char *seg,
                         const struct sbd_topic *served)
{
    int removed = adopt_second_fate(r, seg) == SBD_ADOPT_REMOVED;

    sbd_log(SBD_WARN, "segment %s: a second segment of topic %s, which %s serves: %s", seg,
            served->name, served->seg,
            removed ? "removing it" : "left in place for the processes that open it by name");
    adopt_refused(seg, "a second segment of its topic", removed ? "removed" : "left");
}

/* What becomes of a segment whose adoption failed with @p rc. */
static int adopt_fate(int rc)
{
    switch (rc) {
    case -ENOENT:
        return SBD_ADOPT_VANISHED;
    case SHMBUS_ERR_TRUNCATED:
        /* Shorter than its header says (a creator sizes the file in one
         * ftruncate before writing it): every mapper faults on it, as
         * on one truncated under a running daemon (guard.h). */
        return SBD_ADOPT_REMOVED;
    case SBD_SEG_UNTRUSTED:
        /* Someone else's, or open to others: logged by sbd_seg_open();
         * removed if we may (a root daemon may anywhere in /dev/shm). */
        return SBD_ADOPT_UNTRUSTED;
    case SHMBUS_ERR_VERSION:   /* another layout: processes of another
                                  library version may be using it */
    case SHMBUS_ERR_BAD_MAGIC: /* not a topic segment */
    case SHMBUS_ERR_INVALID:   /* a geometry no layout of ours has */
    case SHMBUS_ERR_BAD_NAME:  /* no topic's name */
    case -EACCES:              /* another owner's */
    case SBD_SEG_OPEN:         /* ours, open to others: some process of
                                  our uid made it so; theirs to remove */
    case -ENODEV:
    case -EINVAL:
        return SBD_ADOPT_LEFT;
    default:
        /* SHMBUS_ERR_NOT_READY (its creator is still writing it),
         * -EMFILE, -ENFILE, -ENOMEM, -EAGAIN...: may pass. */
        return SBD_ADOPT_LATER;
    }
}

static int pending_find(const struct sbd_registry *r, const char *seg)
{
    for (uint32_t i = 0; i < r->npending; i++)
        if (strcmp(r->pending[i].seg, seg) == 0)
            return (int)i;
    return -1;
}

/* Is a segment of topic @p name, of any generation, waiting to be adopted? */
int sbd_pending_has_topic(const struct sbd_registry *r, const char *name)
{
    for (uint32_t i = 0; i < r->npending; i++) {
        const char *t = sbd_seg_topic(r->cfg->bus, r->pending[i].seg);

        if (t != NULL && strcmp(t, name) == 0)
            return 1;
    }
    return 0;
}

/* Queue @p seg after error @p rc, or back off its entry @p i. With
 * topic_lock held. @return 0 or -ENOMEM. */
static int pending_note(struct sbd_registry *r, int i, const char *seg, int rc)
{
    struct sbd_pending *p;

    if (i < 0 && SB_VEC_RESERVE(r->pending, r->pending_cap, r->npending, 1, 8) < 0)
        return -ENOMEM;
    if (i < 0) {
        p = &r->pending[r->npending++];
        *p = (struct sbd_pending){.delay_ms = SBD_RETRY_MIN_MS};
        snprintf(p->seg, sizeof(p->seg), "%s", seg);
    } else {
        p = &r->pending[i];
        p->delay_ms = p->delay_ms * 2 < SBD_RETRY_MAX_MS ? p->delay_ms * 2 : SBD_RETRY_MAX_MS;
    }
    p->rc = rc;
    p->tries++;
    p->next_ns = sb_mono_ns() + (uint64_t)p->delay_ms * 1000000u;
    return 0;
}

/*
 * The attempt to adopt @p seg ended: @p t attached, or error @p rc.
 * Register the topic, queue the segment for a retry, or drop it from the
 * queue: under topic_lock, so that its name is always either served or
 * queued (sbd_topic_open() answers a queued one "not ready", never "no
 * such topic"). @return enum sbd_adopt.
 */
static int adopt_settle(struct sbd_registry *r, const char *seg, struct sbd_topic *t, int *rc)
{
    const struct sbd_topic *served = NULL;
    int i, out;

    pthread_mutex_lock(&r->topic_lock);
    /* Two segments of one topic: the one served is the first in
     * sbd_seg_scan()'s order. */
    urcu_memb_read_lock();
    if (*rc == 0)
        served = sbd_topic_lookup(r, t->name);
    urcu_memb_read_unlock();
    if (served != NULL) {
        shmbus_topic_destroy(t->t);
        free(t);
        *rc = -EEXIST;
        adopt_second(r, seg, served); /* topics stay until the daemon stops */
    }
    out = served != NULL ? adopt_second_fate(r, seg) : *rc == 0 ? SBD_ADOPTED : adopt_fate(*rc);
    i = pending_find(r, seg);
    if (out == SBD_ADOPT_LATER && pending_note(r, i, seg, *rc) < 0)
        out = SBD_ADOPT_NOMEM; /* only a new entry allocates: at start */
    else if (out != SBD_ADOPT_LATER && i >= 0)
        r->pending[i] = r->pending[--r->npending];
    if (out == SBD_ADOPTED) {
        sbd_topic_insert(r, t);
        sbd_registry_created(r, t);
    }
    pthread_mutex_unlock(&r->topic_lock);
    return out;
}

/* Say what became of @p seg (error @p rc); @p tries earlier attempts
 * failed with @p prev. A retry that fails as before says nothing, nor
 * does a second segment of a topic (adopt_second() did). */
static void adopt_log(const char *seg, int rc, int out, uint32_t tries, int prev)
{
    if (rc == -EEXIST)
        return;
    if (out == SBD_ADOPTED)
        sbd_event("segment_adopted",
                  (struct sbd_ev_field[]){SBD_EV_S("segment", seg), SBD_EV_U("retries", tries)}, 2);
    if (out == SBD_ADOPT_LEFT || out == SBD_ADOPT_REMOVED)
        adopt_refused(seg, shmbus_strerror(rc), out == SBD_ADOPT_LEFT ? "left" : "removed");
    if (out == SBD_ADOPTED && tries > 0)
        sbd_log(SBD_INFO, "segment %s: taken over after %u retries", seg, tries);
    else if (out == SBD_ADOPT_LATER && (tries == 0 || rc != prev))
        sbd_log(SBD_WARN, "segment %s: %s: not taken over yet, retrying", seg, shmbus_strerror(rc));
    else if (out == SBD_ADOPT_LEFT)
        sbd_log(SBD_WARN, "segment %s: %s: not a topic this daemon can serve, left in place", seg,
                shmbus_strerror(rc));
    else if (out == SBD_ADOPT_REMOVED)
        sbd_log(SBD_WARN, "segment %s: %s: removing it", seg, shmbus_strerror(rc));
    else if (out == SBD_ADOPT_VANISHED && tries > 0)
        sbd_log(SBD_INFO, "segment %s: removed before it was taken over", seg);
    else if (out == SBD_ADOPT_NOMEM)
        sbd_log(SBD_ERROR, "segment %s: %s, and no memory to retry it later", seg,
                shmbus_strerror(rc));
}

/* What adoption does to segment @p seg after outcome @p out: remove one
 * that is truncated, and one that is not ours if we may (a root daemon
 * may; another uid's file in sticky /dev/shm is otherwise its owner's)
 * and no daemon of another uid may serve the bus (c->bus_exclusive: it
 * would be that daemon's live topic), as long as the name leads to the
 * file @p judged. */
static void adopt_remove(const struct sbd_config *c, const char *seg, int out,
                         const struct stat *judged)
{
    if (out == SBD_ADOPT_REMOVED) {
        sbd_seg_unlink_same(seg, judged);
    } else if (out == SBD_ADOPT_UNTRUSTED && c->bus_exclusive &&
               sbd_seg_unlink_same(seg, judged) == 0) {
        sbd_log(SBD_WARN, "segment %s: not ours to serve: removed", seg);
        adopt_refused(seg, "not ours to serve", "removed");
    } else if (out == SBD_ADOPT_UNTRUSTED) {
        sbd_log(SBD_WARN, "segment %s: not ours to serve, and we may not remove it: left in place",
                seg);
        adopt_refused(seg, "not ours to serve", "left");
    }
}

int sbd_registry_adopt(struct sbd_registry *r, const char *seg)
{
    struct sbd_topic *t = NULL;
    struct stat judged;
    int rc = sbd_topic_attach(r, seg, &t, &judged);
    int out = adopt_settle(r, seg, t, &rc);

    adopt_log(seg, rc, out, 0, 0);
    adopt_remove(r->cfg, seg, out, &judged);
    return out;
}

/* sbd_seg_abandoned() (adopt.h): sb_segment_create() sizes, reserves and
 * writes a segment in microseconds (seconds for a huge one's pages); one
 * still unfinished a minute after its last change was left by a creator
 * that died making it, and would hold its topic's name "not ready" for
 * good. */
int sbd_seg_abandoned(const struct stat *judged, int rc)
{
    struct timespec now;

    if (rc != SHMBUS_ERR_NOT_READY || judged->st_ino == 0)
        return 0; /* taken over, or a failure of ours (descriptors, memory) */
    if (clock_gettime(CLOCK_REALTIME, &now) < 0)
        return 0; /* cannot tell */
    return now.tv_sec - judged->st_mtime > SBD_ABANDONED_S;
}

/* Remove abandoned pending segment @p i (sbd_seg_abandoned()), the file
 * @p judged if still at its name, under topic_lock, so that its name goes
 * from queued to free with nothing in between for a creation to trip on. */
static void pending_remove(struct sbd_registry *r, uint32_t i, const struct stat *judged)
{
    char seg[SHMBUS_NAME_MAX + 1];

    pthread_mutex_lock(&r->topic_lock);
    memcpy(seg, r->pending[i].seg, sizeof(seg));
    r->pending[i] = r->pending[--r->npending];
    sbd_seg_unlink_same(seg, judged);
    pthread_mutex_unlock(&r->topic_lock);
    sbd_log(SBD_WARN,
            "segment %s: not ready for over %d s since it last changed: its creator died "
            "making it; removed",
            seg, SBD_ABANDONED_S);
    adopt_refused(seg, "abandoned by its creator before it was ready", "removed");
}

void sbd_registry_retry(struct sbd_registry *r)
{
    uint64_t now = sb_mono_ns();

    /* The control thread is the queue's only writer: it reads it unlocked. */
    for (uint32_t i = 0; i < r->npending;) {
        struct sbd_pending p = r->pending[i];
        struct sbd_topic *t = NULL;
        struct stat judged;
        int rc, out;

        if (p.next_ns > now) {
            i++;
            continue;
        }
        rc = sbd_topic_attach(r, p.seg, &t, &judged);
        /* Judged on this attempt, not the last one: a creator that just
         * finished is taken over, not removed. */
        if (sbd_seg_abandoned(&judged, rc)) {
            pending_remove(r, i, &judged); /* entry i is another one now */
            continue;
        }
        out = adopt_settle(r, p.seg, t, &rc);
        adopt_log(p.seg, rc, out, p.tries, p.rc);
        adopt_remove(r->cfg, p.seg, out, &judged);
        i += out == SBD_ADOPT_LATER; /* else entry i is another one now */
    }
    /* The events may have waited at the start (events.h). */
    if (!sbd_pending_has_topic(r, SBD_EVENTS_TOPIC))
        sbd_events_resume(r);
}
