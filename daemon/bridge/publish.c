/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publishing for remote clients (publish.h). The bridge holds one
 * publisher per topic it publishes in, made quiet (sb_relay_pub_quiet()): its
 * messages do not wake the topic's pump, and the I/O thread delivers
 * them itself at the end of the read (sbb_publish_deliver()). A publish
 * into a full reliable topic leaves the command unread and pauses the
 * connection until the ring has room or --bridge-pub-timeout passes.
 */
#include "publish.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "events.h"
#include "link.h"
#include "pump.h"
#include "registry/relay.h"
#include "util/name.h"
#include "tsan.h"
#include "util/vec.h"

/* A topic name from a client, checked and terminated into @p out. */
int sbb_publish_topic_name(const char *p, size_t len, char out[SHMBUS_TOPIC_NAME_MAX + 1])
{
    if (len == 0 || len > SHMBUS_TOPIC_NAME_MAX || memchr(p, '\0', len) != NULL)
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return sb_name_valid(out, SHMBUS_TOPIC_NAME_MAX) ? 0 : -1;
}

/* The topic @p name, created with the default options if missing.
 * @return it, or NULL with @p why filled. */
static struct sbd_topic *pub_topic(struct sbd_bridge *b, const char *name, char *why,
                                   size_t why_len)
{
    struct sb_wire_open req;
    struct sbd_topic *t;
    int created;

    t = sbd_topic_find(b->reg, name);
    if (t != NULL)
        return t;
    memset(&req, 0, sizeof(req));
    memcpy(req.name, name, strlen(name));
    if (b->cfg->bridge_no_create)
        req.flags = SHMBUS_OPEN_NOCREATE; /* "no topic 'x'" */
    if (sbd_topic_open(b->reg, &req, &t, &created, why, why_len) < 0)
        t = NULL;
    if (created)
        sbb_link_topics_new(b);
    return t;
}

/* The bridge's publisher in @p t, created on first use. @return 0 or -1
 * with @p why filled. */
static int pub_get(struct sbd_bridge *b, struct sbd_topic *t, char *why, size_t why_len)
{
    int rc;

    if (t->bridge_pub != NULL)
        return 0;
    /* Its one publisher would be the bridge's, for good. */
    if (t->info.flags & SHMBUS_TOPIC_EXCLUSIVE) {
        snprintf(why, why_len, "topic '%s' is exclusive (one publisher at a time): publish locally",
                 t->name);
        return -1;
    }
    if (SB_VEC_RESERVE(b->pubt, b->pub_cap, b->npub, 1, 16) < 0) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    rc = shmbus_pub_create(t->t, &t->bridge_pub);
    if (rc < 0) {
        snprintf(why, why_len, "cannot publish on topic '%s': %s", t->name, shmbus_strerror(rc));
        return -1;
    }
    /* Our pump is not woken for our own messages: sbb_publish_deliver(). */
    sb_relay_pub_quiet(t->bridge_pub);
    b->pubt[b->npub++] = t;
    return 0;
}

/* Remember @p t for delivery at the end of this read. The publish did not
 * wake its pump (sb_relay_pub_quiet()): the delivery must happen. */
static void touch(struct sbb_io *io, struct sbd_topic *t)
{
    unsigned i = 0;

    while (i < io->ntouched && io->touched[i] != t)
        i++;
    if (i < io->ntouched)
        return;
    if (io->ntouched == SBB_TOUCHED_MAX)
        sbb_publish_deliver(io);
    io->touched[io->ntouched++] = t;
}

/* A reliable topic is full: wait (SBB_RUN_PAUSE) up to --bridge-pub-timeout,
 * then give up with @p p's why filled (SBB_RUN_OK). */
static int pub_full(const struct sbd_bridge *b, struct sbb_conn *c, const struct sbd_topic *t,
                    struct sbb_pub *p)
{
    uint64_t now = sbb_now_ms();

    if (c->paused_ms == 0)
        c->paused_ms = now == 0 ? 1 : now;
    if (now - c->paused_ms < b->cfg->bridge_pub_timeout_ms)
        return SBB_RUN_PAUSE;
    snprintf(p->why, p->why_len, "topic '%s' stayed full (reliable: a subscriber lags) for %u ms",
             t->name, b->cfg->bridge_pub_timeout_ms);
    c->paused_ms = 0;
    return SBB_RUN_OK;
}

/* The topic of @p p for @p c: the last one it published on, or the one
 * @p p names (checked here), created with the default options if missing,
 * as `shmbus pub` does. @return it, or NULL with @p p's why filled. */
static struct sbd_topic *pub_target(struct sbd_bridge *b, struct sbb_conn *c, struct sbb_pub *p)
{
    struct sbd_topic *t = c->last_pub;
    char checked[SHMBUS_TOPIC_NAME_MAX + 1];

    /* A publisher usually sends on one topic: skip the name check and the
     * lookup when it is the last one's. */
    if (t != NULL && p->name_len == strlen(t->name) && memcmp(p->name, t->name, p->name_len) == 0)
        return t;
    if (sbb_publish_topic_name(p->name, p->name_len, checked) < 0) {
        snprintf(p->why, p->why_len, "%s", SBB_BAD_NAME_TEXT);
        return NULL;
    }
    /* The daemon's own topics (the events topic): nobody else speaks
     * there (events.h). */
    if (sbd_events_reserved(checked)) {
        snprintf(p->why, p->why_len, "only the daemon publishes on its _shmbus. topics");
        return NULL;
    }
    t = pub_topic(b, checked, p->why, p->why_len);
    if (t == NULL || pub_get(b, t, p->why, p->why_len) < 0)
        return NULL;
    c->last_pub = t; /* topics stay until the daemon stops */
    return t;
}

/*
 * Publish @p p's payload on the topic it names for @p c.
 * @return SBB_RUN_OK: p->receivers is the count (>= 0), or -1 with p->why
 * filled; SBB_RUN_PAUSE when a reliable topic is full and the wait goes on.
 */
int sbb_publish(struct sbb_io *io, struct sbb_conn *c, struct sbb_pub *p)
{
    struct sbd_bridge *b = io->b;
    struct sbd_topic *t;
    int rc;

    p->receivers = -1;
    t = pub_target(b, c, p);
    if (t == NULL)
        return SBB_RUN_OK;
    if (p->len > t->info.max_msg_size) {
        snprintf(p->why, p->why_len, "message of %zu bytes; topic '%s' takes at most %u", p->len,
                 t->name, t->info.max_msg_size);
        return SBB_RUN_OK;
    }
    /* Counted before: those the message goes to (as Redis counts; not the
     * links of a subscription still waiting for its reply).
     * relaxed: a monitoring count. */
    p->receivers = (long long)atomic_load_explicit(&t->subscribers, memory_order_relaxed) +
                   (t->bridge != NULL ? t->bridge->nlive : 0);
    rc = sbd_topic_broken(t) ? SHMBUS_ERR_TRUNCATED
                             : shmbus_publish(t->bridge_pub, p->data, p->len, 0);
    /* Lossy: a newer message took the cell while we wrote; readers count it
     * lost, like any other loss of a lossy topic, which publishers are not
     * told of either. */
    if (rc == SHMBUS_ERR_OVERRUN && t->info.mode == SHMBUS_LOSSY)
        rc = 0;
    if (rc < 0)
        p->receivers = -1;
    if (rc == -EAGAIN)
        return pub_full(b, c, t, p);
    c->paused_ms = 0;
    if (rc < 0) {
        snprintf(p->why, p->why_len, "message not published on '%s': %s", t->name,
                 shmbus_strerror(rc));
        return SBB_RUN_OK;
    }
    /* relaxed: counters. */
    atomic_fetch_add_explicit(&c->msgs_in, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->count.msgs_in, 1, memory_order_relaxed);
    if (t->bridge != NULL)
        touch(io, t);
    return SBB_RUN_OK;
}

/* Deliver what this read published, now, from this thread: the pump was
 * not woken for it (sb_relay_pub_quiet()), so the path from a remote publisher
 * to a remote subscriber costs no thread wake-up. Waits only while the
 * pump is delivering the same topic. */
void sbb_publish_deliver(struct sbb_io *io)
{
    if (io->ntouched == 0)
        return;
    urcu_memb_read_lock();
    for (unsigned i = 0; i < io->ntouched; i++) {
        struct sbb_topic *bt = io->touched[i]->bridge;
        int more;

        if (bt == NULL)
            continue; /* unsubscribed since: nobody remote to deliver to */
        /* One round: local publishers may keep the topic busy, and the I/O
         * thread has other connections to serve. What is left goes to the
         * pump, which the quiet publish did not wake: ring it. */
        pthread_mutex_lock(&bt->poll_mu);
        sbb_pump_deliver(io->b, &io->direct, bt);
        /* acquire: pairs with the commit of the cell's stamp (registry/relay.h
         * sb_relay_sub_ready()), as every ready check; nothing is read
         * through it here, the pump reads the cell with its own acquire.
         * What this catches does not rest on the order: our own quiet
         * publishes are this thread's stores, seen by program order; a
         * message another publisher commits meanwhile is not quiet, and
         * that publisher wakes the pump itself. */
        more = bt->sub != NULL && sb_relay_sub_ready(bt->sub, memory_order_acquire) != 0;
        pthread_mutex_unlock(&bt->poll_mu);
        if (more)
            sbb_pump_ring(bt->pump);
    }
    sbb_pump_flush(&io->direct);
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    io->ntouched = 0;
}
