/*
 * Subscriber side of the ring. A plain subscriber owns a private cursor
 * (pos) and mirrors it into its slot: publishers of a reliable topic read
 * the slot to know which cells they may overwrite. A group member instead
 * takes messages from its group's shared cursor with a CAS, holding the
 * taken cell in its slot while it reads (reliable), so each message goes to
 * exactly one member.
 *
 * Reading a cell: load the stamp with acquire; COMMITTED(expected seq)
 * means the header and payload are complete. In a reliable topic nobody
 * may overwrite the cell before we advance, so the callback gets a pointer
 * into the ring. In a lossy topic a newer publisher may overwrite it at any
 * time, so we copy it out and check the stamp again afterwards (a seqlock
 * read); a changed stamp means we were lapped and the copy is discarded.
 * Lost messages are counted exactly from sequence numbers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring.h"
#include "ring/wait.h"
#include "util/clock.h"

/* Results of one step at the cursor, besides errors (< 0). */
enum step {
    STEP_NONE = 0,      /* nothing ready */
    STEP_DELIVERED = 1, /* one message delivered, go on */
    STEP_STOP = 2,      /* delivered, the callback asked to stop */
    STEP_MOVED = 3      /* the cursor moved without a delivery (skip, lap, race) */
};

/* At most this many cursor moves without a delivery in one poll, so that a
 * ring full of garbage cannot keep a poll busy for long. */
#define POLL_MAX_MOVES 1024u

typedef int (*deliver_fn)(const shmbus_msg *m, void *arg);

struct cell_meta {
    uint64_t timestamp_ns;
    uint32_t len;
    uint32_t pid;
};

static uint64_t start_pos(uint32_t start, uint64_t tail, uint32_t capacity)
{
    if (start == SHMBUS_START_OLDEST)
        return tail > capacity ? tail - capacity : 0;
    return tail;
}

/* Read a cell's header fields once each. In a lossy topic a writer may be
 * changing them; volatile forbids the compiler from reading a field twice
 * (a re-read length could differ from the checked one). */
static void cell_meta_read(const struct sb_shm_cell *c, struct cell_meta *m)
{
    m->timestamp_ns = *(const volatile uint64_t *)&c->timestamp_ns;
    m->len = *(const volatile uint32_t *)&c->len;
    m->pid = *(const volatile uint32_t *)&c->writer_pid;
}

/*
 * Seqlock read of a lossy cell whose stamp was @p v (COMMITTED) when loaded
 * with acquire. Copies header and payload, then re-checks the stamp.
 * @return 0 copy valid, 1 overwritten while copying, SHMBUS_ERR_CORRUPT for
 * an impossible length under an unchanged stamp.
 * The copy races with a lapping writer by design; the stamp check decides.
 * TSan is told so in tests/tsan.supp (race:copy_validated).
 */
static int copy_validated(const struct sb_shm_cell *c, uint64_t v, uint32_t max, uint8_t *dst,
                          struct cell_meta *m)
{
    cell_meta_read(c, m);
    if (m->len <= max)
        memcpy(dst, c + 1, m->len);
    /* acquire fence: orders the plain loads of the copy before the stamp
     * re-load; pairs with the release fence in pub.c cell_take(): if we read
     * any byte a newer writer stored, we see its BUSY stamp. There is no
     * atomic access to hang this order on: the copy is plain memory. */
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&c->stamp, memory_order_relaxed) != v)
        return 1;
    return m->len <= max ? 0 : SHMBUS_ERR_CORRUPT;
}

/* Fill @p msg from the COMMITTED cell @p c (stamp @p v, seq @p seq).
 * @return 0, 1 (lossy: overwritten, discard), or SHMBUS_ERR_CORRUPT. */
static int cell_read(shmbus_sub *sub, const struct sb_shm_cell *c, uint64_t v, uint64_t seq,
                     shmbus_msg *msg)
{
    const struct sb_geom *g = &sub->topic->seg.g;
    struct cell_meta m;
    int rc = 0;

    if (g->mode == SHMBUS_RELIABLE) {
        /* No writer can touch the cell until our position passes it. */
        cell_meta_read(c, &m);
        if (m.len > g->max_msg_size)
            return SHMBUS_ERR_CORRUPT;
        msg->data = c + 1;
    } else {
        rc = copy_validated(c, v, g->max_msg_size, sub->scratch, &m);
        if (rc != 0)
            return rc;
        msg->data = sub->scratch;
    }
    msg->len = m.len;
    msg->publisher_pid = m.pid;
    msg->timestamp_ns = m.timestamp_ns;
    msg->seq = seq;
    msg->lost = sub->pending_lost;
    return 0;
}

static void sub_count_lost(shmbus_sub *sub, uint64_t n)
{
    sub->lost += n;
    sub->pending_lost += n;
}

/* Classify the stamp @p v found at the cell of @p seq. */
enum cell_state { CELL_NOT_YET, CELL_READY, CELL_SKIPPED, CELL_LAPPED, CELL_CORRUPT };

static enum cell_state cell_classify(uint64_t v, uint64_t seq, uint32_t mask)
{
    uint64_t vs = SB_STAMP_SEQ(v);
    uint32_t st = SB_STAMP_ST(v);

    if (st == SB_ST_EMPTY)
        return v == 0 ? CELL_NOT_YET : CELL_CORRUPT;
    /* A seq that maps to another cell cannot be in this one. */
    if ((vs ^ seq) & mask)
        return CELL_CORRUPT;
    if (vs < seq)
        return CELL_NOT_YET; /* still the previous lap's message */
    if (vs > seq)
        return CELL_LAPPED;
    if (st == SB_ST_BUSY)
        return CELL_NOT_YET;
    return st == SB_ST_COMMITTED ? CELL_READY : CELL_SKIPPED;
}

/* Oldest seq a lapped reader can still hope to read, past @p from. */
static uint64_t lap_target(const struct sb_segment *seg, uint64_t from)
{
    /* relaxed: any recent tail will do; what we then read is checked by
     * the cells' stamps. */
    uint64_t t = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
    uint64_t n = t > seg->g.capacity ? t - seg->g.capacity : 0;

    /* A tail that does not explain the lap is garbage: step over one cell. */
    return n > from ? n : from + 1;
}

static int plain_step(shmbus_sub *sub, deliver_fn fn, void *arg, size_t cap)
{
    const struct sb_segment *seg = &sub->topic->seg;
    uint64_t e = sub->pos;
    const struct sb_shm_cell *c = sb_cell(seg, e);
    /* acquire: pairs with the seq_cst commit CAS in pub.c cell_finish();
     * header and payload of a COMMITTED cell are visible. */
    uint64_t v = atomic_load_explicit(&c->stamp, memory_order_acquire);
    shmbus_msg msg;
    int rc;

    switch (cell_classify(v, e, seg->g.mask)) {
    case CELL_NOT_YET:
        return STEP_NONE;
    case CELL_SKIPPED:
        sub->pos = e + 1;
        sub_count_lost(sub, 1);
        return STEP_MOVED;
    case CELL_CORRUPT:
        sub->pos = e + 1;
        sub_count_lost(sub, 1);
        return SHMBUS_ERR_CORRUPT;
    case CELL_LAPPED:
        sub->pos = lap_target(seg, e);
        sub_count_lost(sub, sub->pos - e);
        /* Reliable publishers never lap a live subscriber. */
        return seg->g.mode == SHMBUS_RELIABLE ? SHMBUS_ERR_CORRUPT : STEP_MOVED;
    case CELL_READY:
        break;
    }
    /* Too big for the caller's buffer: leave it unread. */
    if (cap != SIZE_MAX && *(const volatile uint32_t *)&c->len > cap) {
        sub->want_len = *(const volatile uint32_t *)&c->len;
        return -EMSGSIZE;
    }
    rc = cell_read(sub, c, v, e, &msg);
    if (rc == 1)
        return STEP_MOVED; /* overwritten: the next step sees the lap */
    if (rc < 0) {
        sub->pos = e + 1;
        sub_count_lost(sub, 1);
        return rc;
    }
    rc = fn(&msg, arg);
    sub->pos = e + 1;
    sub->pending_lost = 0;
    sub->received++;
    return rc ? STEP_STOP : STEP_DELIVERED;
}

/* Place a reader's first position. In a reliable topic the slot gates a
 * provisional position first; the final one is never below any position a
 * publisher that has not seen us may still overwrite: the lowest gate of
 * the others, or the tail read after our slot became visible. */
static uint64_t sub_seat(shmbus_sub *sub)
{
    const struct sb_segment *seg = &sub->topic->seg;
    uint32_t n = seg->g.capacity;
    uint64_t t0, t1, floor, o;

    if (seg->g.mode != SHMBUS_RELIABLE) {
        /* relaxed: lossy readers never gate; any recent tail will do. */
        t0 = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
        return start_pos(sub->start, t0, n);
    }
    /* seq_cst: the tail loads and the pos store below are ordered against
     * the publishers' seq_cst gate loads and tail CAS (pub.c). */
    t0 = atomic_load_explicit(&seg->hdr->tail, memory_order_seq_cst);
    atomic_store_explicit(&sub->slot->pos, start_pos(sub->start, t0, n), memory_order_seq_cst);
    t1 = atomic_load_explicit(&seg->hdr->tail, memory_order_seq_cst);
    floor = sb_min_gate(seg, sub->slot);
    if (floor > t1)
        floor = t1;
    o = start_pos(sub->start, t1, n);
    return o > floor ? o : floor;
}

/* The group had no member: put its cursor where a new reader would start. */
static void group_reseat(shmbus_sub *sub, uint64_t c)
{
    const struct sb_segment *seg = &sub->topic->seg;
    uint64_t o = sub_seat(sub);

    /* seq_cst: cursor updates pair with the gate loads in sb_min_gate().
     * If another member re-seated first, its position stands. */
    atomic_compare_exchange_strong_explicit(&sub->group->cursor, &c, o, memory_order_seq_cst,
                                            memory_order_relaxed);
    if (seg->g.mode == SHMBUS_RELIABLE) {
        /* seq_cst: the cursor now gates; drop our provisional hold. */
        atomic_store_explicit(&sub->slot->pos, SB_POS_IDLE, memory_order_seq_cst);
    }
}

/* Move a group's cursor from @p c to @p to over messages nobody will get. */
static int group_skip(shmbus_sub *sub, uint64_t c, uint64_t to)
{
    /* seq_cst: as every cursor update. */
    if (!atomic_compare_exchange_strong_explicit(&sub->group->cursor, &c, to, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return 0; /* another member moved it */
    sub_count_lost(sub, to - c);
    /* relaxed: statistics only. */
    atomic_fetch_add_explicit(&sub->group->lost, to - c, memory_order_relaxed);
    return 1;
}

static void group_release(shmbus_sub *sub)
{
    if (sub->topic->seg.g.mode != SHMBUS_RELIABLE)
        return;
    /* seq_cst: ends our hold on the cell; Dekker pair with a publisher
     * sleeping on a full ring (sb_wake_publishers). */
    atomic_store_explicit(&sub->slot->pos, SB_POS_IDLE, memory_order_seq_cst);
    sb_wake_publishers(sub->topic->seg.hdr);
}

/* Take the message at the group cursor @p c, whose cell shows @p v. */
static int group_take(shmbus_sub *sub, const struct sb_shm_cell *c_cell, uint64_t v, uint64_t c,
                      deliver_fn fn, void *arg)
{
    const struct sb_segment *seg = &sub->topic->seg;
    int reliable = seg->g.mode == SHMBUS_RELIABLE;
    shmbus_msg msg;
    int rc;

    /* seq_cst: hold the cell before advancing the cursor past it, so a
     * publisher that sees the new cursor also sees the hold (sb_min_gate). */
    if (reliable)
        atomic_store_explicit(&sub->slot->pos, c, memory_order_seq_cst);
    if (!atomic_compare_exchange_strong_explicit(&sub->group->cursor, &c, c + 1,
                                                 memory_order_seq_cst, memory_order_relaxed)) {
        group_release(sub);
        return STEP_MOVED; /* another member took it */
    }
    if (SB_STAMP_ST(v) == SB_ST_SKIPPED) {
        group_release(sub);
        sub_count_lost(sub, 1);
        return STEP_MOVED;
    }
    rc = cell_read(sub, c_cell, v, c, &msg);
    if (rc != 0) {
        group_release(sub);
        sub_count_lost(sub, 1);
        return rc == 1 ? STEP_MOVED : rc;
    }
    rc = fn(&msg, arg);
    group_release(sub);
    sub->pending_lost = 0;
    sub->received++;
    return rc ? STEP_STOP : STEP_DELIVERED;
}

static int group_step(shmbus_sub *sub, deliver_fn fn, void *arg, size_t cap)
{
    const struct sb_segment *seg = &sub->topic->seg;
    /* acquire: pairs with the seq_cst cursor CAS of other members. */
    uint64_t c = atomic_load_explicit(&sub->group->cursor, memory_order_acquire);
    const struct sb_shm_cell *cell;
    uint64_t v;

    if (c & SB_GROUP_EMPTY) {
        group_reseat(sub, c);
        return STEP_MOVED;
    }
    cell = sb_cell(seg, c);
    /* acquire: pairs with the commit CAS, as in plain_step(). */
    v = atomic_load_explicit(&cell->stamp, memory_order_acquire);
    switch (cell_classify(v, c, seg->g.mask)) {
    case CELL_NOT_YET:
        return STEP_NONE;
    /* Our cursor value may be stale: another member may have moved the
     * cursor and a publisher reused the cell since. Only the member whose
     * CAS moves the cursor over the cell reports it. */
    case CELL_CORRUPT:
        return group_skip(sub, c, c + 1) ? SHMBUS_ERR_CORRUPT : STEP_MOVED;
    case CELL_LAPPED:
        if (!group_skip(sub, c, lap_target(seg, c)))
            return STEP_MOVED;
        return seg->g.mode == SHMBUS_RELIABLE ? SHMBUS_ERR_CORRUPT : STEP_MOVED;
    case CELL_READY:
        if (cap != SIZE_MAX && *(const volatile uint32_t *)&cell->len > cap) {
            sub->want_len = *(const volatile uint32_t *)&cell->len;
            return -EMSGSIZE;
        }
        break;
    case CELL_SKIPPED:
        break;
    }
    return group_take(sub, cell, v, c, fn, arg);
}

/* Publish the private cursor and counters into the slot after a poll. */
static void sub_publish_pos(shmbus_sub *sub, uint64_t before)
{
    const struct sb_segment *seg = &sub->topic->seg;

    /* relaxed: statistics mirrors for monitoring tools. */
    atomic_store_explicit(&sub->slot->received, sub->received, memory_order_relaxed);
    atomic_store_explicit(&sub->slot->lost, sub->lost, memory_order_relaxed);
    if (sub->group != NULL || sub->pos == before)
        return;
    if (seg->g.mode == SHMBUS_RELIABLE) {
        /* seq_cst: releases the cells we read to publishers (their seq_cst
         * gate load synchronizes with it), and is our half of the Dekker
         * pair with a publisher sleeping on a full ring. */
        atomic_store_explicit(&sub->slot->pos, sub->pos, memory_order_seq_cst);
        sb_wake_publishers(seg->hdr);
    } else {
        /* relaxed: lossy positions are informational. */
        atomic_store_explicit(&sub->slot->pos, sub->pos, memory_order_relaxed);
    }
}

/* Deliver up to @p max messages; @p cap bounds the length a delivery may
 * have (SIZE_MAX: any). @return delivered count, or an error. */
static int sub_poll(shmbus_sub *sub, deliver_fn fn, void *arg, unsigned max, size_t cap)
{
    uint64_t before = sub->pos;
    unsigned n = 0, moves = 0;
    int rc = 0;

    if (sub->pending_err < 0) {
        rc = sub->pending_err;
        sub->pending_err = 0;
        return rc;
    }
    while (n < max && moves < POLL_MAX_MOVES) {
        rc = sub->group ? group_step(sub, fn, arg, cap) : plain_step(sub, fn, arg, cap);
        if (rc < 0 || rc == STEP_NONE)
            break;
        if (rc == STEP_MOVED) {
            moves++;
            continue;
        }
        n++;
        if (rc == STEP_STOP)
            break;
    }
    sub_publish_pos(sub, before);
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

    memcpy(ctx->buf, m->data, m->len);
    *ctx->info = *m;
    ctx->info->data = ctx->buf;
    return 1;
}

int shmbus_recv(shmbus_sub *sub, void *buf, size_t cap, shmbus_msg *info, int64_t timeout_ns)
{
    shmbus_msg local;
    struct recv_ctx ctx = {.buf = buf, .info = info != NULL ? info : &local};
    uint64_t deadline = 0;

    if (sub == NULL || (buf == NULL && cap > 0))
        return SHMBUS_ERR_INVALID;
    for (;;) {
        int rc = sub_poll(sub, recv_deliver, &ctx, 1, cap);
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

    if (sub->pending_err < 0)
        return 1;
    if (sub->group != NULL) {
        /* @p order: seq_cst on the sleep path (Dekker with the committer),
         * else acquire, pairing with the members' cursor CAS. */
        c = atomic_load_explicit(&sub->group->cursor, order);
        if (c & SB_GROUP_EMPTY)
            return 1;
    } else {
        c = sub->pos;
    }
    /* @p order: as above; acquire pairs with the commit CAS. */
    v = atomic_load_explicit(&sb_cell(seg, c)->stamp, order);
    return cell_classify(v, c, seg->g.mask) != CELL_NOT_YET;
}

int shmbus_sub_ready(shmbus_sub *sub)
{
    if (sub == NULL)
        return SHMBUS_ERR_INVALID;
    return sb_sub_ready_order(sub, memory_order_acquire);
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

static int sub_opts_check(const struct sb_geom *g, const shmbus_sub_opts *o)
{
    if (o->start != SHMBUS_START_NEXT && o->start != SHMBUS_START_OLDEST)
        return SHMBUS_ERR_INVALID;
    if (o->group > g->max_groups)
        return SHMBUS_ERR_INVALID;
    return 0;
}

/* Make the slot visible and place the cursor (see sub_seat()). */
static void sub_join(shmbus_sub *sub, uint32_t group)
{
    struct sb_shm_slot *s = sub->slot;
    uint64_t c;

    /* relaxed: published by the seq_cst store of ACTIVE below. */
    atomic_store_explicit(&s->pid, (uint32_t)getpid(), memory_order_relaxed);
    atomic_store_explicit(&s->group, group, memory_order_relaxed);
    atomic_store_explicit(&s->received, 0, memory_order_relaxed);
    atomic_store_explicit(&s->lost, 0, memory_order_relaxed);
    atomic_store_explicit(&s->pos, SB_POS_IDLE, memory_order_relaxed);
    /* seq_cst: pairs with the state load in sb_min_gate(). */
    atomic_store_explicit(&s->state, SB_SLOT_ACTIVE, memory_order_seq_cst);
    if (sub->group == NULL) {
        sub->pos = sub_seat(sub);
        /* seq_cst: the final gate, as in sub_publish_pos(). */
        atomic_store_explicit(&s->pos, sub->pos, memory_order_seq_cst);
        return;
    }
    /* relaxed: a count; the cursor is what orders. */
    atomic_fetch_add_explicit(&sub->group->members, 1, memory_order_relaxed);
    /* seq_cst: read the cursor after our slot is visible. */
    c = atomic_load_explicit(&sub->group->cursor, memory_order_seq_cst);
    if (c & SB_GROUP_EMPTY)
        group_reseat(sub, c);
}

int shmbus_sub_create(shmbus_topic *topic, const shmbus_sub_opts *opts, shmbus_sub **out)
{
    shmbus_sub_opts o = {0};
    shmbus_sub *sub;
    const struct sb_geom *g;
    int rc;

    if (out == NULL)
        return SHMBUS_ERR_INVALID;
    *out = NULL;
    if (topic == NULL)
        return SHMBUS_ERR_INVALID;
    g = &topic->seg.g;
    if (opts != NULL)
        o = *opts;
    rc = sub_opts_check(g, &o);
    if (rc < 0)
        return rc;
    sub = calloc(1, sizeof(*sub));
    if (sub == NULL)
        return -ENOMEM;
    if (g->mode == SHMBUS_LOSSY && (sub->scratch = malloc(g->max_msg_size + 1u)) == NULL) {
        free(sub);
        return -ENOMEM;
    }
    sub->topic = topic;
    sub->start = o.start;
    sub->spin_ns = o.spin_ns;
    sub->group = o.group ? &topic->seg.groups[o.group - 1] : NULL;
    sub->slot = slot_take(&topic->seg);
    if (sub->slot == NULL) {
        free(sub->scratch);
        free(sub);
        return SHMBUS_ERR_NO_SLOT;
    }
    sub_join(sub, o.group);
    *out = sub;
    return 0;
}

void shmbus_sub_destroy(shmbus_sub *sub)
{
    struct sb_shm_header *h;

    if (sub == NULL)
        return;
    h = sub->topic->seg.hdr;
    if (sub->group != NULL) {
        /* seq_cst: as every cursor update; the last member out marks the
         * group empty so it stops gating and the next member re-seats it. */
        if (atomic_fetch_sub_explicit(&sub->group->members, 1, memory_order_seq_cst) == 1)
            atomic_fetch_or_explicit(&sub->group->cursor, SB_GROUP_EMPTY, memory_order_seq_cst);
    }
    /* seq_cst: release half hands our reads to publishers that then see the
     * slot FREE (acquire half of their seq_cst load); pairs too with the
     * acquire CAS of the slot's next owner. */
    atomic_store_explicit(&sub->slot->state, SB_SLOT_FREE, memory_order_seq_cst);
    sb_wake_publishers(h);
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
    pos = sub->group
              ? atomic_load_explicit(&sub->group->cursor, memory_order_relaxed) & ~SB_GROUP_EMPTY
              : sub->pos;
    out->received = sub->received;
    out->lost = sub->lost;
    out->position = pos;
    out->lag = tail > pos ? tail - pos : 0;
    return 0;
}
