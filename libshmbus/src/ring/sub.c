/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Subscribers. A plain subscriber owns a private cursor (pos) and mirrors it
 * into its slot after each poll: publishers of a reliable topic read the
 * slot to know which cells they may overwrite. A group member takes
 * messages from its group's shared cursor instead (group.c). Reading a
 * cell is in read.c; where a new subscriber starts is in gate.c, and at a
 * seq or a time, through the journal if need be, in merge.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring/ack.h"
#include "ring/gate.h"
#include "ring/group.h"
#include "ring/merge.h"
#include "ring/read.h"
#include "ring/ring.h"
#include "ring/wait.h"
#include "util/clock.h"
#include "util/fork.h"
#include "util/name.h"
#include "util/proc.h"

/* At most this many cursor moves without a delivery in one poll, so that a
 * ring full of garbage cannot keep a poll busy for long. */
#define POLL_MAX_MOVES 1024u

static int plain_step(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap)
{
    const struct sb_segment *seg = &sub->topic->seg;
    uint64_t e = sub->pos;
    const struct sb_shm_cell *c = sb_cell(seg, e);
    /* acquire: pairs with the seq_cst commit CAS in pub.c cell_finish();
     * header and payload of a COMMITTED cell are visible. */
    uint64_t v = atomic_load_explicit(&c->stamp, memory_order_acquire);
    shmbus_msg msg;
    int rc;

    switch (sb_cell_classify(v, e, seg->g.mask)) {
    case SB_CELL_NOT_YET:
        return SB_STEP_NONE;
    case SB_CELL_SKIPPED:
        sub->pos = e + 1;
        sb_sub_count_lost(sub, 1);
        return SB_STEP_MOVED;
    case SB_CELL_CORRUPT:
        sub->pos = e + 1;
        sb_sub_count_lost(sub, 1);
        return SHMBUS_ERR_CORRUPT;
    case SB_CELL_LAPPED:
        /* A lossy reader with a journal goes back to it, losing nothing. */
        if (sub->merge != NULL && sub->copy_read)
            return sb_merge_lapped(sub);
        sub->pos = sb_lap_target(seg, e);
        sb_sub_count_lost(sub, sub->pos - e);
        /* Reliable publishers never lap a subscriber that gates them. */
        return sub->copy_read ? SB_STEP_MOVED : SHMBUS_ERR_CORRUPT;
    case SB_CELL_READY:
        break;
    }
    rc = sb_cell_fits(sub, c, v, cap, sub->copy_read);
    if (rc == 0)
        rc = sb_cell_read(sub, c, v, e, &msg, sub->copy_read);
    if (rc == 1)
        return SB_STEP_MOVED; /* overwritten: the next step sees the lap */
    if (rc == -EMSGSIZE)
        return rc; /* too big for the caller's buffer: left unread */
    sub->pos = e + 1;
    if (rc < 0) {
        sb_sub_count_lost(sub, 1);
        return rc;
    }
    return sb_sub_delivered(sub, fn(&msg, arg));
}

/* Publish the private cursor and counters into the slot after a poll that
 * delivered or lost something (@p before: the cursor before it). A poll
 * that found nothing stores nothing: the slot's line, which publishers
 * scanning the gates read, stays shared. */
static void sub_publish_pos(shmbus_sub *sub, uint64_t before)
{
    const struct sb_segment *seg = &sub->topic->seg;

    /* relaxed: statistics mirrors for monitoring tools. */
    atomic_store_explicit(&sub->slot->received, sub->received, memory_order_relaxed);
    atomic_store_explicit(&sub->slot->lost, sub->lost, memory_order_relaxed);
    /* A held reader's slot moves on release only (hold.c); one reading a
     * journal gates nothing, or its seat (merge.c), until it reads the ring. */
    if (sub->group != NULL || sub->pos == before || sub->held ||
        (sub->merge != NULL && sb_merge_reading(sub->merge)))
        return;
    if (!sub->copy_read) {
        /* seq_cst: releases the cells we read to publishers (their seq_cst
         * gate load synchronizes with it), and is our half of the Dekker
         * pair with a publisher sleeping on a full ring. */
        atomic_store_explicit(&sub->slot->pos, sub->pos, memory_order_seq_cst);
        sb_wake_publishers(seg->hdr);
    } else {
        /* relaxed: copy readers' positions are informational. */
        atomic_store_explicit(&sub->slot->pos, sub->pos, memory_order_relaxed);
    }
}

/* Deliver up to @p max messages; @p cap bounds the length a delivery may
 * have (SIZE_MAX: any). @return delivered count, or an error. */
static int sub_poll(shmbus_sub *sub, sb_deliver_fn fn, void *arg, unsigned max, size_t cap)
{
    uint64_t before = sub->pos, received = sub->received, lost = sub->lost;
    unsigned n = 0, moves = 0;
    int rc = 0;

    /* A fork child's copy: the slot and its cursor are the parent's. */
    if (sub->gen != sb_fork_gen())
        return SHMBUS_ERR_INVALID;
    if (sb_topic_gone(&sub->topic->seg, memory_order_relaxed))
        return SHMBUS_ERR_TOPIC_GONE;
    if (sb_sub_evicted(sub, memory_order_relaxed))
        return SHMBUS_ERR_EVICTED;
    if (sub->pending_err < 0) {
        rc = sub->pending_err;
        sub->pending_err = 0;
        return rc;
    }
    while (n < max && moves < POLL_MAX_MOVES) {
        if (sub->group != NULL)
            rc = sb_group_step(sub, fn, arg, cap);
        else if (sub->merge != NULL && sb_merge_reading(sub->merge))
            rc = sb_merge_step(sub, fn, arg, cap);
        else
            rc = plain_step(sub, fn, arg, cap);
        if (rc < 0 || rc == SB_STEP_NONE)
            break;
        if (rc == SB_STEP_MOVED) {
            moves++;
            continue;
        }
        n++;
        if (rc == SB_STEP_STOP)
            break;
    }
    /* Every delivery or loss counts in received or lost. */
    if (sub->pos != before || sub->received != received || sub->lost != lost)
        sub_publish_pos(sub, before);
    /* Evicted while reading in place: what we read may have been
     * overwritten (group members check each take, group.c), and a cell
     * that looks impossible may just have been lapped since. Only gating
     * readers are evicted: copy readers check each copy themselves. */
    if (!sub->copy_read && (rc < 0 || (n > 0 && sub->group == NULL)) &&
        sb_sub_evicted_after_reads(sub))
        return SHMBUS_ERR_EVICTED;
    if (rc < 0 && n > 0) {
        /* Report the messages now and the error on the next call. */
        sub->pending_err = rc == -EMSGSIZE ? 0 : rc;
        return (int)n;
    }
    return rc < 0 ? rc : (int)n;
}

struct poll_ctx {
    shmbus_msg_fn fn;
    void *arg;
};

static int poll_deliver(const shmbus_msg *m, void *arg)
{
    struct poll_ctx *ctx = arg;
    return ctx->fn(m, ctx->arg) != 0;
}

int shmbus_poll(shmbus_sub *sub, shmbus_msg_fn fn, void *arg, unsigned max)
{
    struct poll_ctx ctx = {.fn = fn, .arg = arg};

    if (sub == NULL || fn == NULL)
        return SHMBUS_ERR_INVALID;
    if (max > INT32_MAX)
        max = INT32_MAX;
    return sub_poll(sub, poll_deliver, &ctx, max, SIZE_MAX);
}

struct recv_ctx {
    void *buf;
    shmbus_msg *info;
};

static int recv_deliver(const shmbus_msg *m, void *arg)
{
    struct recv_ctx *ctx = arg;

    if (m->len > 0)
        memcpy(ctx->buf, m->data, m->len);
    *ctx->info = *m;
    ctx->info->data = ctx->buf;
    return 1;
}

/* Is @p sub in none of the states the general path handles: a group
 * member, a journal reader, an inherited copy (fork), an error to report,
 * a topic gone, an eviction? Each is one load of a line that stays in our
 * cache (the handle, the fork generation, the header's creation block, our
 * slot); relaxed as in sub_poll(). */
static inline int sub_plain(const shmbus_sub *sub)
{
    return sub->group == NULL && sub->merge == NULL && sub->pending_err == 0 &&
           sub->gen == sb_fork_gen() && !sb_topic_gone(&sub->topic->seg, memory_order_relaxed) &&
           !sb_sub_evicted(sub, memory_order_relaxed);
}

/*
 * shmbus_recv()'s common cases, for a plain subscriber and a buffer (not
 * NULL): nothing there yet, or the message it expects, committed, that
 * fits @p buf. A copy reader copies it into @p buf once (sb_cell_read_to():
 * the same seqlock read as into its scratch, so a copy that read a newer
 * writer's byte is discarded); an in-place reader copies it out of the
 * ring. Anything else (a loss, a race, a buffer too small, a rare state)
 * is left to sub_poll(), which reads the cell again from the start.
 * @return SB_STEP_DELIVERED (@p info filled), SB_STEP_NONE (nothing
 * there), SB_STEP_MOVED (take the general path), or SHMBUS_ERR_EVICTED
 * (sub_poll()'s check after reads in place).
 */
static int recv_plain(shmbus_sub *sub, void *buf, size_t cap, shmbus_msg *info)
{
    const struct sb_segment *seg = &sub->topic->seg;
    uint64_t e = sub->pos;
    const struct sb_shm_cell *c = sb_cell(seg, e);
    uint64_t v;

    /* No buffer (a zero-length receive), or a rare state to report. */
    if (buf == NULL || !sub_plain(sub))
        return SB_STEP_MOVED;
    /* acquire: as in plain_step(). */
    v = atomic_load_explicit(&c->stamp, memory_order_acquire);
    /* Not the message we expect: nothing yet, or a case to sort out. */
    if (v != SB_STAMP(e, SB_ST_COMMITTED))
        return sb_cell_classify(v, e, seg->g.mask) == SB_CELL_NOT_YET ? SB_STEP_NONE
                                                                      : SB_STEP_MOVED;
    if (sub->copy_read) {
        uint32_t max = cap < seg->g.max_msg_size ? (uint32_t)cap : seg->g.max_msg_size;
        /* Overwritten meanwhile, or longer than @p buf (or corrupt). */
        if (sb_cell_read_to(sub, c, v, e, info, buf, max) != 0)
            return SB_STEP_MOVED;
    } else {
        shmbus_msg m;
        /* Corrupt, or longer than @p buf: @p info stays untouched (a
         * -EMSGSIZE sets only its len, and never a pointer into the ring). */
        if (sb_cell_read(sub, c, v, e, &m, 0) != 0 || m.len > cap)
            return SB_STEP_MOVED;
        memcpy(buf, m.data, m.len);
        *info = m;
        info->data = buf;
    }
    sub->pos = e + 1;
    sb_sub_delivered(sub, 0);
    sub_publish_pos(sub, e);
    /* As in sub_poll(): what we read in place may have been overwritten. */
    if (!sub->copy_read && sb_sub_evicted_after_reads(sub))
        return SHMBUS_ERR_EVICTED;
    return SB_STEP_DELIVERED;
}

int shmbus_recv(shmbus_sub *sub, void *buf, size_t cap, shmbus_msg *info, int64_t timeout_ns)
{
    shmbus_msg local;
    struct recv_ctx ctx = {.buf = buf, .info = info != NULL ? info : &local};
    uint64_t deadline = 0;

    if (sub == NULL || (buf == NULL && cap > 0))
        return SHMBUS_ERR_INVALID;
    for (;;) {
        int rc = recv_plain(sub, buf, cap, ctx.info);
        if (rc == SB_STEP_MOVED)
            rc = sub_poll(sub, recv_deliver, &ctx, 1, cap);
        if (rc > 0)
            return (int)ctx.info->len;
        if (rc == -EMSGSIZE)
            ctx.info->len = sub->want_len;
        if (rc < 0)
            return rc;
        if (timeout_ns == 0)
            return -EAGAIN;
        if (deadline == 0)
            deadline = sb_deadline(timeout_ns);
        rc = sb_wait_any(&sub, 1, deadline);
        if (rc < 0)
            return rc;
    }
}

int sb_sub_ready_order(shmbus_sub *sub, memory_order order)
{
    const struct sb_segment *seg = &sub->topic->seg;
    uint64_t c, v;

    if (sub->pending_err < 0 || sb_topic_gone(seg, order) || sb_sub_evicted(sub, order))
        return 1; /* the poll reports it */
    if (sub->merge != NULL && sb_merge_reading(sub->merge))
        return sb_merge_ready(sub->merge);
    /* @p order: seq_cst on the sleep path (Dekker with the committer), else
     * acquire, pairing with the members' cursor updates. Plain subscribers
     * load nothing more than before acknowledgements existed. */
    if (sub->group == NULL)
        c = sub->pos;
    else if (sub->ack != NULL)
        return sb_ack_ready(sub, order);
    else
        c = sb_group_pos(sub, order);
    if (c == UINT64_MAX)
        return 0; /* the group is being seated */
    /* @p order: as above; acquire pairs with the commit CAS. */
    v = atomic_load_explicit(&sb_cell(seg, c)->stamp, order);
    return sb_cell_classify(v, c, seg->g.mask) != SB_CELL_NOT_YET;
}

int shmbus_sub_ready(shmbus_sub *sub)
{
    if (sub == NULL)
        return SHMBUS_ERR_INVALID;
    return sb_sub_ready_order(sub, memory_order_acquire);
}

void sb_slot_release(struct sb_shm_slot *s)
{
    /* relaxed: published by the store of FREE. An INIT slot without a pid
     * is being set up by a live owner: the daemon leaves it alone. */
    atomic_store_explicit(&s->pid, 0, memory_order_relaxed);
    atomic_store_explicit(&s->start, 0, memory_order_relaxed);
    atomic_store_explicit(&s->kept, SB_KEEP_NONE, memory_order_relaxed);
    /* seq_cst: as in shmbus_sub_destroy(). */
    atomic_store_explicit(&s->state, SB_SLOT_FREE, memory_order_seq_cst);
}

/* Take a free slot: FREE -> INIT. */
static struct sb_shm_slot *slot_take(const struct sb_segment *seg)
{
    for (uint32_t i = 0; i < seg->g.max_subs; i++) {
        struct sb_shm_slot *s = &seg->slots[i];
        uint32_t st = SB_SLOT_FREE;
        /* acquire: pairs with the release in shmbus_sub_destroy(); the last
         * owner's stores to the slot are done before ours. */
        if (atomic_compare_exchange_strong_explicit(&s->state, &st, SB_SLOT_INIT,
                                                    memory_order_acquire, memory_order_relaxed))
            return s;
    }
    return NULL;
}

/* The acknowledgement options (SHMBUS_SUB_ACK) and reserved fields. */
static int sub_opts_check_ack(const shmbus_topic *t, const shmbus_sub_opts *o)
{
    if (o->reserved0 != 0)
        return SHMBUS_ERR_INVALID;
    for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
        if (o->reserved[i] != 0)
            return SHMBUS_ERR_INVALID;
    if (!(o->flags & SHMBUS_SUB_ACK))
        return o->max_inflight || o->max_deliveries || o->dead_letter ? SHMBUS_ERR_INVALID : 0;
    /* The daemon returns a dead member's messages and dead-letters: a
     * named group of a reliable topic from shmbus_open() only. */
    if (t->reg == NULL || o->group_name == NULL || t->seg.g.mode != SHMBUS_RELIABLE)
        return SHMBUS_ERR_INVALID;
    if (o->max_inflight > SHMBUS_INFLIGHT_MAX || o->max_deliveries > SHMBUS_MAX_DELIVERIES_MAX)
        return SHMBUS_ERR_INVALID;
    /* The daemon refuses a dead-letter topic that is the topic itself. */
    if (o->dead_letter != NULL && !sb_name_valid(o->dead_letter, SHMBUS_TOPIC_NAME_MAX))
        return SHMBUS_ERR_BAD_NAME;
    return 0;
}

/* A start at a seq or a time: its field set only then, and no group (a
 * group's members share a cursor that one member cannot place). */
static int sub_opts_check_start(const shmbus_sub_opts *o)
{
    if (o->start > SHMBUS_START_TIME)
        return SHMBUS_ERR_INVALID;
    if ((o->start != SHMBUS_START_SEQ && o->start_seq != 0) ||
        (o->start != SHMBUS_START_TIME && o->start_time_ns != 0))
        return SHMBUS_ERR_INVALID;
    if ((o->start == SHMBUS_START_SEQ || o->start == SHMBUS_START_TIME) &&
        (o->group != 0 || o->group_name != NULL))
        return SHMBUS_ERR_INVALID;
    return 0;
}

static int sub_opts_check(const shmbus_topic *t, const shmbus_sub_opts *o)
{
    if (sub_opts_check_start(o) < 0)
        return SHMBUS_ERR_INVALID;
    if (o->wake_bound_ns != 0 && (o->wake_bound_ns < SHMBUS_WAKE_BOUND_MIN_NS ||
                                  o->wake_bound_ns > SHMBUS_WAKE_BOUND_MAX_NS))
        return SHMBUS_ERR_INVALID;
    if (o->flags & ~(uint32_t)(SHMBUS_SUB_OBSERVER | SHMBUS_SUB_ACK))
        return SHMBUS_ERR_INVALID;
    /* A group's members share one cursor, which gates as a whole. */
    if ((o->flags & SHMBUS_SUB_OBSERVER) && (o->group != 0 || o->group_name != NULL))
        return SHMBUS_ERR_INVALID;
    if (o->group > t->seg.g.max_groups)
        return SHMBUS_ERR_INVALID;
    /* Bus topics name their groups (the daemon numbers them); others number them. */
    if (t->reg != NULL ? o->group != 0 : o->group_name != NULL)
        return SHMBUS_ERR_INVALID;
    if (o->group_name != NULL && !sb_name_valid(o->group_name, SHMBUS_GROUP_NAME_MAX))
        return SHMBUS_ERR_BAD_NAME;
    return sub_opts_check_ack(t, o);
}

/* Set up the member of group @p group (1-based) whose slot we now hold:
 * its kind must be the group's (the daemon checked; a segment shared
 * with another daemon's client, or attached by number, may disagree).
 * @return 0 or an error. */
static int sub_group_kind(shmbus_sub *sub, const shmbus_sub_opts *o, uint32_t group)
{
    const struct sb_shm_group *grp = &sub->topic->seg.groups[group - 1];

    if (o->flags & SHMBUS_SUB_ACK)
        return sb_ack_init(sub, group, o->max_inflight);
    /* relaxed: written once, before the group's number was handed out. */
    return atomic_load_explicit(&grp->max_deliveries, memory_order_relaxed) != 0
               ? SHMBUS_ERR_MISMATCH
               : 0;
}

/* Place a plain subscriber and make its slot a gate. In a reliable topic
 * the slot first gates a provisional position (JOINING), then the start is
 * computed from what that makes safe (gate.c) and the slot turns ACTIVE.
 * @p at: SB_POS_IDLE to start as sub->start says, else a seq: a copy
 * reader starts there (its reads check the laps), a gating one at
 * max(at, min(settled gates, tail)), the start OLDEST with a floor. */
static void plain_join(shmbus_sub *sub, uint64_t at)
{
    const struct sb_segment *seg = &sub->topic->seg;
    struct sb_shm_slot *s = sub->slot;
    uint32_t start = at == SB_POS_IDLE ? sub->start : SHMBUS_START_OLDEST;
    uint64_t floor = at == SB_POS_IDLE ? 0 : at, p0;
    uint32_t st;
    uint64_t t0;

    if (sub->copy_read) {
        /* relaxed: copy readers gate nothing; any recent tail will do. */
        t0 = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
        sub->pos = at == SB_POS_IDLE ? sb_start_pos(start, t0, seg->g.capacity) : at;
        atomic_store_explicit(&s->pos, sub->pos, memory_order_relaxed);
        /* release: the fields above before the state, for monitors. */
        atomic_store_explicit(&s->state, sub->observer ? SB_SLOT_OBSERVING : SB_SLOT_ACTIVE,
                              memory_order_release);
        return;
    }
    /* seq_cst, all: the provisional gate comes from a tail read before it
     * is published, and the seat is read after (gate.c). */
    t0 = atomic_load_explicit(&seg->hdr->tail, memory_order_seq_cst);
    /* Never above the seat to come: sb_seat() gives at least the floor
     * and a later tail a lap back. */
    p0 = sb_start_pos(start, t0, seg->g.capacity);
    atomic_store_explicit(&s->pos, p0 > floor ? p0 : floor, memory_order_seq_cst);
    atomic_store_explicit(&s->state, SB_SLOT_JOINING, memory_order_seq_cst);
    sub->pos = sb_seat(seg, s, start, floor);
    atomic_store_explicit(&s->pos, sub->pos, memory_order_seq_cst);
    /* A CAS: a joiner stalled past the stall timeout may have been
     * evicted meanwhile (admin.c), and stays so. seq_cst, both: as the
     * state stores above, which publishers' gate loads pair with. */
    st = SB_SLOT_JOINING;
    atomic_compare_exchange_strong_explicit(&s->state, &st, SB_SLOT_ACTIVE, memory_order_seq_cst,
                                            memory_order_seq_cst);
    /* The gate moved forward: a publisher may be asleep on it. */
    sb_wake_publishers(seg->hdr);
}

void sb_sub_join_at(shmbus_sub *sub, uint64_t seq)
{
    plain_join(sub, seq);
}

int sb_sub_unseat(shmbus_sub *sub)
{
    uint32_t st = SB_SLOT_ACTIVE;

    if (sub->copy_read)
        return 0; /* gates nothing */
    /* seq_cst, both: as the store in shmbus_sub_destroy() (our reads go
     * to publishers, which see the slot stop gating), and a CAS because
     * the daemon may have evicted us (admin.c): exactly one of the two
     * moves the slot out of ACTIVE. */
    if (!atomic_compare_exchange_strong_explicit(&sub->slot->state, &st, SB_SLOT_INIT,
                                                 memory_order_seq_cst, memory_order_seq_cst))
        return SHMBUS_ERR_EVICTED;
    sb_wake_publishers(sub->topic->seg.hdr);
    return 0;
}

/* Make the slot ours: its fields for monitors and the daemon, not yet a
 * gate. */
static void sub_slot_fill(shmbus_sub *sub, uint32_t group)
{
    struct sb_shm_slot *s = sub->slot;

    /* relaxed, then release: the daemon reads pid (acquire) before start,
     * so a pid it sees comes with its start time. */
    atomic_store_explicit(&s->start, sb_proc_self_start(), memory_order_relaxed);
    atomic_store_explicit(&s->pid, (uint32_t)getpid(), memory_order_release);
    /* relaxed: published by the state store that follows. */
    atomic_store_explicit(&s->group, group, memory_order_relaxed);
    atomic_store_explicit(&s->received, 0, memory_order_relaxed);
    atomic_store_explicit(&s->lost, 0, memory_order_relaxed);
    atomic_store_explicit(&s->pos, SB_POS_IDLE, memory_order_relaxed);
    /* relaxed: as the fields above; a member names its count after its
     * join CAS (group.c group_counted()). */
    atomic_store_explicit(&s->counted, 0, memory_order_relaxed);
    atomic_store_explicit(&s->kept, SB_KEEP_NONE, memory_order_relaxed);
}

/* Make the slot visible and place the cursor. */
static void sub_join(shmbus_sub *sub, uint32_t group)
{
    struct sb_shm_slot *s = sub->slot;

    sub_slot_fill(sub, group);
    if (sub->group == NULL) {
        plain_join(sub, SB_POS_IDLE);
        return;
    }
    /* seq_cst: pairs with the state load in sb_min_gate(); the slot's
     * holds count from now on. */
    atomic_store_explicit(&s->state, SB_SLOT_ACTIVE, memory_order_seq_cst);
    sb_group_join(sub);
}

shmbus_sub *sb_sub_alloc(shmbus_topic *topic, const shmbus_sub_opts *o)
{
    shmbus_sub *sub = sb_handle_alloc(sizeof(*sub));

    if (sub == NULL)
        return NULL;
    sub->observer = (o->flags & SHMBUS_SUB_OBSERVER) != 0;
    sub->copy_read = topic->seg.g.mode == SHMBUS_LOSSY || sub->observer;
    if (sub->copy_read && (sub->scratch = malloc(topic->seg.g.max_msg_size + 1u)) == NULL) {
        free(sub);
        return NULL;
    }
    sub->topic = topic;
    sub->pid = (uint32_t)getpid();
    sb_fork_watch();
    sub->gen = sb_fork_gen();
    sub->start = o->start;
    sub->spin_ns = o->spin_ns;
    sub->wake_bound_ns = o->wake_bound_ns;
    return sub;
}

/* Undo a create whose start failed: the slot (INIT: a failed start seats
 * nothing, or unseated) goes back as shmbus_sub_destroy() gives it. */
static void sub_discard(shmbus_sub *sub)
{
    shmbus_topic *t = sub->topic;

    if (t->reg != NULL) {
        /* seq_cst: as in shmbus_sub_destroy(). */
        atomic_store_explicit(&sub->slot->state, SB_SLOT_INIT, memory_order_seq_cst);
        sb_hook_slot_give_back(t, (uint32_t)(sub->slot - t->seg.slots));
    } else {
        sb_slot_release(sub->slot);
    }
    sb_merge_free(sub);
    free(sub->scratch);
    free(sub);
}

int shmbus_sub_create(shmbus_topic *topic, const shmbus_sub_opts *opts, shmbus_sub **out)
{
    shmbus_sub_opts o = {0};
    shmbus_sub *sub;
    uint32_t group, idx;
    int rc = 0;

    if (out == NULL)
        return SHMBUS_ERR_INVALID;
    *out = NULL;
    if (topic == NULL)
        return SHMBUS_ERR_INVALID;
    if (opts != NULL)
        o = *opts;
    rc = sub_opts_check(topic, &o);
    if (rc < 0)
        return rc;
    sub = sb_sub_alloc(topic, &o);
    if (sub == NULL)
        return -ENOMEM;
    group = o.group;
    if (topic->reg != NULL) {
        /* The daemon takes a slot for us and numbers a named group. */
        struct sb_hook_ack ack = {.max_deliveries = o.max_deliveries, .dead_letter = o.dead_letter};
        rc = sb_hook_slot_want(topic, o.group_name, (o.flags & SHMBUS_SUB_ACK) ? &ack : NULL, &idx,
                               &group);
        sub->slot = rc < 0 ? NULL : &topic->seg.slots[idx];
    } else if ((sub->slot = slot_take(&topic->seg)) == NULL) {
        rc = SHMBUS_ERR_NO_SLOT;
    }
    if (rc == 0 && group != 0 && (rc = sub_group_kind(sub, &o, group)) < 0) {
        /* Still INIT, gating nothing: give it back. */
        if (topic->reg != NULL)
            sb_hook_slot_give_back(topic, idx);
        else
            sb_slot_release(sub->slot);
    }
    if (rc < 0) {
        free(sub->scratch);
        free(sub);
        return rc;
    }
    sub->group = group ? &topic->seg.groups[group - 1] : NULL;
    if (o.start == SHMBUS_START_SEQ || o.start == SHMBUS_START_TIME) {
        sub_slot_fill(sub, 0);
        rc = sb_merge_start(sub, &o);
        if (rc < 0) {
            sub_discard(sub);
            return rc;
        }
    } else {
        sub_join(sub, group);
    }
    *out = sub;
    return 0;
}

/* Leave our group, unless the daemon evicted us first: the daemon took
 * our count out then (admin.c slot_uncount()). seq_cst: the daemon evicts
 * with a CAS from ACTIVE; exactly one of the two CAS moves the slot out
 * of ACTIVE. While LEAVING the slot still counts as a member for the
 * daemon's reconcile, so it does not reset the group under our own
 * decrement. */
static void sub_leave_group(shmbus_sub *sub)
{
    uint32_t st = SB_SLOT_ACTIVE;

    if (atomic_compare_exchange_strong_explicit(&sub->slot->state, &st, SB_SLOT_LEAVING,
                                                memory_order_seq_cst, memory_order_seq_cst))
        sb_group_leave(sub);
}

void shmbus_sub_destroy(shmbus_sub *sub)
{
    struct sb_shm_header *h;
    shmbus_topic *t;

    if (sub == NULL)
        return;
    t = sub->topic;
    h = t->seg.hdr;
    /* A copy inherited through fork() only frees its memory: the slot and
     * the group membership are the creating process's. */
    if (sub->gen != sb_fork_gen())
        goto out;
    /* Our pending messages go back to the group (reason LEFT) before we
     * leave it: they gate publishers, member or not. */
    sb_ack_fini(sub);
    if (sub->group != NULL)
        sub_leave_group(sub);
    /* seq_cst: release half hands our reads to publishers that then see the
     * slot stop gating (acquire half of their seq_cst load); pairs too with
     * the acquire CAS of the slot's next owner. A bus topic's slot stays
     * taken (INIT, gating nothing) until the daemon frees it: the daemon
     * never hands it out while it still counts it as ours. If the daemon
     * cannot be told, the slot stays INIT until it sees us die. */
    if (t->reg != NULL) {
        atomic_store_explicit(&sub->slot->state, SB_SLOT_INIT, memory_order_seq_cst);
        sb_wake_publishers(h);
        sb_hook_slot_give_back(t, (uint32_t)(sub->slot - t->seg.slots));
    } else {
        sb_slot_release(sub->slot);
        sb_wake_publishers(h);
    }
out:
    sb_merge_free(sub);
    free(sub->ack); /* a fork child's copy: only the memory (NULL after sb_ack_fini()) */
    free(sub->scratch);
    free(sub);
}

int shmbus_sub_stats_get(const shmbus_sub *sub, shmbus_sub_stats *out)
{
    const struct sb_segment *seg;
    uint64_t tail, pos;

    if (sub == NULL || out == NULL)
        return SHMBUS_ERR_INVALID;
    seg = &sub->topic->seg;
    /* relaxed: a snapshot for statistics. */
    tail = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
    pos = sub->group != NULL ? sb_group_pos(sub, memory_order_relaxed) : sub->pos;
    if (pos == UINT64_MAX)
        pos = tail; /* the group is being seated */
    out->received = sub->received;
    out->lost = sub->lost;
    out->position = pos;
    /* A held reader (hold.c) lags from where it holds publishers. */
    if (sub->held)
        pos = sub->held_pos;
    out->lag = tail > pos ? tail - pos : 0;
    return 0;
}
