/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dead-letter pass (deadletter.h): for each message admin.h hands
 * out, find or create the group's dead-letter topic (the registry's way,
 * as federation's importer does), publish the envelope into it through
 * the daemon's own publisher there with timeout 0, and tell admin.h how
 * it went. Everything that fails is said: the group's counter, a log line
 * at most once a second per group (with the count since the last), and
 * an event each time.
 */
#include "deadletter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "log.h"
#include "registry/admin.h"
#include "registry/deadletter.h"
#include "util/clock.h"

/* The log limit of one group's failures. */
struct dl_group {
    uint64_t warn_ns;  /* CLOCK_MONOTONIC of the last line; 0: none yet */
    uint64_t unlogged; /* failures since that line */
};

/* What the pass keeps per topic it moves messages from. */
struct sbd_dl {
    uint32_t ngroups;
    struct dl_group g[];
};

/* A dead message's way out: its topic's name and handle, and why not. */
struct dl_try {
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    char group[SHMBUS_GROUP_NAME_MAX + 1];
    char why[160];
    struct sbd_topic *to;
};

int sbd_dl_topic(const struct sbd_topic *t)
{
    return t->info.mode == SHMBUS_RELIABLE;
}

void sbd_dl_free(struct sbd_topic *t)
{
    shmbus_pub_destroy(t->dl_pub);
    t->dl_pub = NULL;
    free(t->dl);
    t->dl = NULL;
}

/* The dead-letter topic @p x->name, found (whatever its options), or
 * created for the dead letters of @p t: reliable, @p t's capacity, its
 * max_msg_size and the envelope's room (at most the ring's largest).
 * @return 0 with x->to set, or an error with x->why filled. */
static int dl_target(struct sbd_registry *reg, const struct sbd_topic *t, struct dl_try *x)
{
    struct sb_wire_open req;
    char why[120] = "";
    int created = 0, rc;
    uint64_t max = (uint64_t)t->info.max_msg_size + SB_DL_ROOM;

    x->to = sbd_topic_find(reg, x->name);
    if (x->to != NULL)
        return 0;
    memset(&req, 0, sizeof(req));
    memcpy(req.name, x->name, strlen(x->name)); /* a valid name: it fits */
    req.mode = SHMBUS_RELIABLE;
    req.capacity = t->info.capacity;
    req.max_msg_size = (uint32_t)(max < SB_ADMIN_MSG_MAX ? max : SB_ADMIN_MSG_MAX);
    rc = sbd_topic_open(reg, &req, &x->to, &created, why, sizeof(why));
    /* It was there after all (a segment the registry had not served yet,
     * or a topic made meanwhile): served with whatever options it has. */
    if (rc == SHMBUS_ERR_MISMATCH && x->to != NULL)
        return 0;
    if (rc < 0) {
        x->to = NULL;
        snprintf(x->why, sizeof(x->why), "cannot create it: %s%s%s", shmbus_strerror(rc),
                 why[0] ? ": " : "", why);
        return rc;
    }
    if (created)
        sbd_log(SBD_INFO, "topic %s created for the dead letters of topic %s", x->name, t->name);
    return 0;
}

/* The daemon's publisher in x->to, made on first use. @return 0, or an
 * error with x->why filled. */
static int dl_pub(struct dl_try *x)
{
    struct sbd_topic *to = x->to;
    int rc;

    if (sbd_topic_broken(to)) {
        /* Not served any more: a publisher made before goes. */
        shmbus_pub_destroy(to->dl_pub);
        to->dl_pub = NULL;
        snprintf(x->why, sizeof(x->why), "its segment was truncated: not served");
        return SHMBUS_ERR_TRUNCATED;
    }
    if (to->dl_pub != NULL)
        return 0;
    /* Its one publisher would be the daemon's, for good. */
    if (to->info.flags & SHMBUS_TOPIC_EXCLUSIVE) {
        snprintf(x->why, sizeof(x->why), "it is exclusive (one publisher at a time)");
        return SHMBUS_ERR_INVALID;
    }
    rc = shmbus_pub_create(to->t, &to->dl_pub);
    if (rc < 0) {
        to->dl_pub = NULL;
        snprintf(x->why, sizeof(x->why), "cannot publish there: %s", shmbus_strerror(rc));
    }
    return rc;
}

/* Publish @p d wrapped as @p m into x->to, never waiting. @return 0, or
 * an error with x->why filled. */
static int dl_publish(struct dl_try *x, const struct sb_dl_meta *m, const struct sb_admin_dead *d)
{
    uint8_t head[SB_DL_ROOM];
    int hl = sb_dl_header_put(head, sizeof(head), m);
    shmbus_claim c;
    int rc;

    if (hl < 0) {
        snprintf(x->why, sizeof(x->why), "no envelope for it: %s", shmbus_strerror(hl));
        return hl;
    }
    /* Checked before the claim: an aborted claim would be a loss there. */
    if ((size_t)hl + d->len > x->to->info.max_msg_size) {
        snprintf(x->why, sizeof(x->why),
                 "too small: max_msg_size %u, the dead letter has %zu bytes",
                 x->to->info.max_msg_size, (size_t)hl + d->len);
        return SHMBUS_ERR_TOO_BIG;
    }
    rc = shmbus_pub_claim(x->to->dl_pub, &c, 0);
    if (rc == 0) {
        memcpy(c.data, head, (size_t)hl);
        memcpy((uint8_t *)c.data + hl, d->data, d->len);
        rc = shmbus_pub_commit(x->to->dl_pub, &c, (size_t)hl + d->len);
    }
    if (rc == -EAGAIN)
        snprintf(x->why, sizeof(x->why), "full: its subscribers hold it");
    else if (rc < 0)
        snprintf(x->why, sizeof(x->why), "publish failed: %s", shmbus_strerror(rc));
    if (rc == SHMBUS_ERR_TOPIC_GONE) {
        /* Its topic went: the publisher goes with it. */
        shmbus_pub_destroy(x->to->dl_pub);
        x->to->dl_pub = NULL;
    }
    return rc;
}

/* Try to move @p d of @p t: its group's names, the target, the publish.
 * @return 0 moved, or an error with x->why filled. */
static int dl_move(struct sbd_registry *reg, const struct sbd_topic *t,
                   const struct sb_admin_dead *d, struct dl_try *x)
{
    struct sb_dl_meta m = {.topic = t->name,
                           .group = x->group,
                           .seq = d->seq,
                           .timestamp_ns = d->timestamp_ns,
                           .dead_ns = sb_real_ns(),
                           .publisher_pid = d->pid,
                           .deliveries = d->deliveries,
                           .reason = d->reason};
    int rc;

    if ((rc = sb_admin_ack_dead_letter(t->t, d->group, x->name, sizeof(x->name))) < 0 ||
        (rc = sb_admin_group_name(t->t, d->group, x->group)) < 0) {
        snprintf(x->why, sizeof(x->why), "its group's %s in the segment is no name (%s)",
                 x->name[0] == '\0' ? "dead-letter topic" : "name", shmbus_strerror(rc));
        return rc;
    }
    /* The daemon's topics carry its events only (events.h). */
    if (sbd_events_reserved(x->name)) {
        snprintf(x->why, sizeof(x->why), "it is one of the daemon's own topics");
        return SHMBUS_ERR_DENIED;
    }
    if ((rc = dl_target(reg, t, x)) < 0 || (rc = dl_pub(x)) < 0)
        return rc;
    return dl_publish(x, &m, d);
}

/* The pass's state of @p t's groups, made on first use. @return NULL out
 * of memory (then failures are logged without a limit: they are rare). */
static struct dl_group *dl_group(struct sbd_topic *t, uint32_t g)
{
    if (t->dl == NULL) {
        t->dl = calloc(1, sizeof(*t->dl) + t->info.max_groups * sizeof(t->dl->g[0]));
        if (t->dl == NULL)
            return NULL;
        t->dl->ngroups = t->info.max_groups;
    }
    return g < t->dl->ngroups ? &t->dl->g[g] : NULL;
}

static void dl_moved(const struct sbd_topic *t, const struct sb_admin_dead *d,
                     const struct dl_try *x)
{
    sbd_log(SBD_INFO,
            "topic %s: group %s gave up on seq %llu after %u deliveries (%s): moved to "
            "dead-letter topic %s",
            t->name, x->group, (unsigned long long)d->seq, d->deliveries,
            shmbus_dead_letter_reason(d->reason), x->name);
    sbd_event("dead_letter",
              (struct sbd_ev_field[]){SBD_EV_S("topic", t->name), SBD_EV_S("group", x->group),
                                      SBD_EV_U("seq", d->seq),
                                      SBD_EV_U("deliveries", d->deliveries),
                                      SBD_EV_S("reason", shmbus_dead_letter_reason(d->reason)),
                                      SBD_EV_S("dead_letter", x->name)},
              6);
}

/* @p d could not be moved: it stays pending (admin.h counted it). Said
 * in the log and as an event at most once a second per group. */
static void dl_failed(struct sbd_topic *t, const struct sb_admin_dead *d, const struct dl_try *x)
{
    struct dl_group *g = dl_group(t, d->group);
    uint64_t now = sb_mono_ns();

    char since[64] = "";

    /* A failure that lasts is retried at every pass: said once a second. */
    if (g != NULL && g->warn_ns != 0 && now - g->warn_ns < SBD_DL_WARN_NS) {
        g->unlogged++;
        return;
    }
    if (g != NULL && g->unlogged > 0)
        snprintf(since, sizeof(since), " (%llu more failures since the last line)",
                 (unsigned long long)g->unlogged);
    sbd_log(SBD_WARN,
            "topic %s: group %s: seq %llu cannot go to dead-letter topic %s: %s; it stays "
            "pending, tried again at each pass%s",
            t->name, x->group[0] ? x->group : "?", (unsigned long long)d->seq,
            x->name[0] ? x->name : "?", x->why, since);
    if (g != NULL) {
        g->warn_ns = now;
        g->unlogged = 0;
    }
    sbd_event("dead_letter_failed",
              (struct sbd_ev_field[]){SBD_EV_S("topic", t->name), SBD_EV_S("group", x->group),
                                      SBD_EV_U("seq", d->seq), SBD_EV_S("dead_letter", x->name),
                                      SBD_EV_S("error", x->why)},
              5);
}

int sbd_dl_step(struct sbd_registry *reg, struct sbd_topic *t, uint32_t *pos)
{
    struct sb_admin_dead d;
    struct dl_try x;
    int moved;

    if (!sb_admin_ack_dead_next(t->t, pos, &d))
        return 0;
    memset(&x, 0, sizeof(x));
    moved = dl_move(reg, t, &d, &x) == 0;
    sb_admin_ack_dead_done(t->t, &d, moved);
    if (moved)
        dl_moved(t, &d, &x);
    else
        dl_failed(t, &d, &x);
    return 1;
}
