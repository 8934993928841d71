/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Daemon-side operations on topic segments (admin.h). The daemon is the
 * only process that names groups or takes slots on behalf of others, and it
 * does so from one thread, so naming needs no synchronisation among
 * writers; readers (monitors) see a name only after the number is handed
 * out over the control socket.
 *
 * Reaping acts only for processes the daemon knows are dead (their pidfd
 * was readable, or their pid now names a process with another start time),
 * so everything they stored is visible, and nothing they would still write
 * can come after ours.
 */
#include "registry/admin.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry/relay.h"
#include "ring/ack.h"
#include "ring/group.h"
#include "ring/read.h"
#include "ring/ring.h"
#include "ring/wait.h"
#include "util/cmp.h"
#include "util/name.h"

static_assert(SB_ADMIN_CAPACITY_MIN == SB_CAPACITY_MIN &&
                  (1u << SB_ADMIN_CAPACITY_BITS) == SB_CAPACITY_MAX &&
                  SB_ADMIN_MSG_MAX == SB_MAX_MSG_MAX && SB_ADMIN_SUBS_MAX == SB_SUBS_MAX,
              "admin.h topic option bounds");

int sb_admin_plan(const shmbus_topic_opts *o, shmbus_topic_opts *eff, uint64_t *size)
{
    struct sb_seg_params p;
    struct sb_geom g;
    uint32_t perm;
    int rc;

    rc = sb_topic_params(o, &p, &perm);
    if (rc < 0)
        return rc;
    *eff = (shmbus_topic_opts){.mode = p.mode,
                               .capacity = p.capacity,
                               .max_msg_size = p.max_msg_size,
                               .max_subscribers = p.max_subs,
                               .max_groups = p.max_groups,
                               .max_publishers = p.max_pubs,
                               .perm = perm,
                               .flags = p.flags,
                               .stall_timeout_ms = p.stall_timeout_ms};
    rc = sb_geom_plan(&p, &g);
    if (rc < 0)
        return rc;
    *size = g.total_len;
    return 0;
}

void sb_admin_topic_gone(const shmbus_topic *t)
{
    struct sb_shm_header *h = t->seg.hdr;

    /* seq_cst, all: the flag before the futex words, so that a sleeper
     * either re-checks after the flag (seq_cst, sb_topic_gone()) or has
     * its futex_wait fail on the changed word; everyone is woken, whatever
     * the sleeper counts say. */
    atomic_store_explicit(&h->gone, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&h->data_futex, 1, memory_order_seq_cst);
    sb_futex_wake(&h->data_futex, INT_MAX);
    atomic_fetch_add_explicit(&h->space_futex, 1, memory_order_seq_cst);
    sb_futex_wake(&h->space_futex, INT_MAX);
}

int sb_admin_topic_map(int fd, shmbus_topic **out)
{
    struct sb_segment seg;
    int rc;

    *out = NULL;
    rc = sb_segment_map_fd(fd, &seg);
    return rc < 0 ? rc : sb_topic_wrap(&seg, out);
}

int sb_admin_topic_fd(const shmbus_topic *t)
{
    return t->seg.fd;
}

void sb_admin_mapping(const shmbus_topic *t, void **base, size_t *len)
{
    *base = t->seg.base;
    *len = (size_t)t->seg.g.total_len;
}

uint64_t sb_admin_topic_epoch(const shmbus_topic *t)
{
    /* Written once by the segment's creator before the segment was
     * published (ready), never again: a plain read. */
    return t->seg.hdr->create_time_ns;
}

int sb_admin_slot_take(const shmbus_topic *t, uint32_t pid, uint64_t start)
{
    const struct sb_segment *seg = &t->seg;

    for (uint32_t i = 0; i < seg->g.max_subs; i++) {
        struct sb_shm_slot *s = &seg->slots[i];
        uint32_t st = SB_SLOT_FREE;

        /* acquire: pairs with the release (seq_cst) store of FREE by the
         * last owner or by sb_admin_slot_free(). */
        if (atomic_compare_exchange_strong_explicit(&s->state, &st, SB_SLOT_INIT,
                                                    memory_order_acquire, memory_order_relaxed)) {
            /* relaxed: the client learns the slot over the socket, which
             * orders these stores before its own; the daemon reads them
             * itself. */
            atomic_store_explicit(&s->start, start, memory_order_relaxed);
            /* release: start before pid (sb_admin_owner()). */
            atomic_store_explicit(&s->pid, pid, memory_order_release);
            return (int)i;
        }
    }
    return SHMBUS_ERR_NO_SLOT;
}

int sb_admin_owner(const shmbus_topic *t, enum sb_admin_kind kind, uint32_t idx, uint32_t *pid,
                   uint64_t *start)
{
    const struct sb_segment *seg = &t->seg;
    uint32_t st;

    if (kind == SB_ADMIN_SLOT) {
        /* acquire, both: the state pairs with the owner's state stores;
         * the pid with its release store after the start (sub.c). */
        st = atomic_load_explicit(&seg->slots[idx].state, memory_order_acquire);
        *pid = atomic_load_explicit(&seg->slots[idx].pid, memory_order_acquire);
        /* relaxed: ordered by the acquire load of the pid above. */
        *start = atomic_load_explicit(&seg->slots[idx].start, memory_order_relaxed);
        return st != SB_SLOT_FREE && *pid != 0;
    }
    /* acquire: pairs with the release store of ACTIVE in pub.c. */
    st = atomic_load_explicit(&seg->pubs[idx].state, memory_order_acquire);
    /* relaxed, both: stored before ACTIVE, ordered by the load above. */
    *pid = atomic_load_explicit(&seg->pubs[idx].pid, memory_order_relaxed);
    *start = atomic_load_explicit(&seg->pubs[idx].start, memory_order_relaxed);
    return st == SB_PUB_ACTIVE && *pid != 0;
}

/* A member of group @p g whose owner is gone (dead, or evicted by us) held
 * a message when it went: taken off the cursor (which is past it) and
 * never finished. Counted as lost to the group; the member may have died
 * between storing its hold and a failed take, which counts one too many. */
static void slot_count_abandoned(const struct sb_segment *seg, struct sb_shm_slot *s, uint32_t g)
{
    /* relaxed: the owner's stores are visible (it is dead), or this is a
     * statistic (an evicted owner counts its own, group.c). */
    uint64_t hold = atomic_load_explicit(&s->pos, memory_order_relaxed);
    /* seq_cst: as every cursor access. */
    uint64_t w = atomic_load_explicit(&seg->groups[g - 1].cursor, memory_order_seq_cst);

    if (hold == SB_POS_IDLE || hold == SB_POS_SEATING || SB_GRP_SEQ(w) <= hold)
        return;
    /* relaxed, both: statistics only. */
    atomic_fetch_add_explicit(&seg->hdr->abandoned, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->lost, 1, memory_order_relaxed);
}

/* Take member slot @p s's own +1 out of group @p g's count, if it named
 * one (layout.h counted): the member was evicted, or died, and will never
 * leave by itself. seq_cst: after the caller's CAS or load of the slot's
 * state; pairs with the member's store after its join CAS (group.c). */
static void slot_uncount(const struct sb_segment *seg, struct sb_shm_slot *s, uint32_t g)
{
    if (atomic_exchange_explicit(&s->counted, 0, memory_order_seq_cst))
        sb_group_uncount(&seg->groups[g - 1]);
}

/* A member that died while seating its group: finish the seat for it, as
 * the reader it meant to be (start NEXT), so the other members go on. */
static void slot_finish_seat(const struct sb_segment *seg, struct sb_shm_slot *s, uint32_t g)
{
    struct sb_shm_group *grp = &seg->groups[g - 1];
    /* seq_cst: as every cursor access (group.c). */
    uint64_t w = atomic_load_explicit(&grp->cursor, memory_order_seq_cst);

    /* relaxed: the owner is gone; its last stores are visible. */
    if (atomic_load_explicit(&s->pos, memory_order_relaxed) != SB_POS_SEATING ||
        !(w & SB_GRP_SEATING))
        return;
    sb_group_seat_finish(seg, grp, s, SHMBUS_START_NEXT, SB_GRP_SEQ(w));
}

uint32_t sb_admin_slot_free(const shmbus_topic *t, uint32_t idx, int dead)
{
    const struct sb_segment *seg = &t->seg;
    struct sb_shm_slot *s;
    uint32_t st, g, returned = 0;

    if (idx >= seg->g.max_subs)
        return 0;
    s = &seg->slots[idx];
    /* acquire: the owner's last stores to the slot, before we judge it. */
    st = atomic_load_explicit(&s->state, memory_order_acquire);
    /* relaxed: written before the slot was published; ordered by the
     * acquire load above. */
    g = atomic_load_explicit(&s->group, memory_order_relaxed);
    if (st == SB_SLOT_FREE)
        return 0;
    /* An acknowledging member's messages go back to its group while its
     * hold still gates (any state: it may have died leaving). */
    returned = sb_ack_slot_return(seg, idx, g, dead ? SHMBUS_DL_DIED : SHMBUS_DL_LEFT, 1);
    if ((st == SB_SLOT_ACTIVE || st == SB_SLOT_EVICTED) && g >= 1 && g <= seg->g.max_groups) {
        slot_finish_seat(seg, s, g);
        /* relaxed: written once, before the group's first member joined. */
        if (dead &&
            atomic_load_explicit(&seg->groups[g - 1].max_deliveries, memory_order_relaxed) == 0)
            slot_count_abandoned(seg, s, g);
        if (st == SB_SLOT_ACTIVE)
            slot_uncount(seg, s, g); /* an evicted one's went at eviction */
    }
    /* Its owner died asleep: publishers stop waking it. A wake-up may
     * have chosen it (the wake-pending word set, the others not relayed
     * to): wake them. So may one that died asleep uncounted (a lazy
     * subscriber in a wait set: futex_waitv has no bitset, wait.c), and a
     * group member wakes readers too (group.c, ack.c): it may have died
     * between setting the word and waking. Once per death. */
    if (sb_wait_sleeper_take_back(&seg->hdr->data_waiters, &s->sleep) != 0 || dead)
        sb_wait_pending_settle(seg->hdr);
    /* relaxed: statistics only; counted before the slot is seen free. */
    if (dead)
        atomic_fetch_add_explicit(&seg->hdr->reaped, 1, memory_order_relaxed);
    sb_slot_release(s);
    sb_wake_publishers(seg->hdr);
    /* Its group may now have members counted but none left (group.c
     * counts a member by one CAS we cannot tell happened or not). */
    sb_admin_groups_reconcile(t);
    return returned;
}

int sb_admin_pub_dead(const shmbus_topic *t, uint32_t idx)
{
    struct sb_shm_pubrec *r = &t->seg.pubs[idx];
    uint32_t st = SB_PUB_ACTIVE;

    /* relaxed: only the daemon moves a record out of ACTIVE for someone
     * else; the owner is dead and its stores are visible. */
    if (!atomic_compare_exchange_strong_explicit(&r->state, &st, SB_PUB_DEAD, memory_order_relaxed,
                                                 memory_order_relaxed))
        return 0;
    /* Its owner died waiting for space: subscribers stop waking it. */
    sb_wait_sleeper_take_back(&t->seg.hdr->space_waiters, &r->sleep);
    /* It may have died between setting the wake-pending word and waking. */
    sb_wait_pending_settle(t->seg.hdr);
    /* relaxed: statistics only. */
    atomic_fetch_add_explicit(&t->seg.hdr->reaped, 1, memory_order_relaxed);
    return 1;
}

int sb_admin_pub_is_dead(const shmbus_topic *t, uint32_t idx)
{
    /* relaxed: only the daemon sets or clears DEAD. */
    return atomic_load_explicit(&t->seg.pubs[idx].state, memory_order_relaxed) == SB_PUB_DEAD;
}

int sb_admin_pub_dead_claim(const shmbus_topic *t, uint32_t idx, uint64_t *seq)
{
    /* relaxed: the owner is dead, and only the daemon changes a DEAD
     * record (as in sb_admin_pub_settle()). */
    uint64_t c = atomic_load_explicit(&t->seg.pubs[idx].claim, memory_order_relaxed);

    if (!sb_admin_pub_is_dead(t, idx) || (c & (SB_CLAIM_IDLE | SB_CLAIM_CLAIMING)))
        return 0;
    *seq = c;
    return 1;
}

/* Does any live record's claim word satisfy @p match(seg, claim, s, x)?
 * Live: in use and not DEAD. The claim loads are relaxed: each caller made
 * an acquire load first (of the tail, or of a cell's stamp) that orders the
 * claim stores of the writers it saw (pub.c pub_rec_claiming()). */
static int live_claims_any(const struct sb_segment *seg,
                           int (*match)(const struct sb_segment *, uint64_t, uint64_t, uint64_t),
                           uint64_t s, uint64_t x)
{
    for (uint32_t i = 0; i < seg->g.max_pubs; i++) {
        const struct sb_shm_pubrec *r = &seg->pubs[i];
        /* acquire: pairs with the release store of ACTIVE (pub.c). */
        uint32_t st = atomic_load_explicit(&r->state, memory_order_acquire);

        if (st == SB_PUB_FREE || st == SB_PUB_DEAD)
            continue;
        /* relaxed: ordered by the caller's acquire load (see above). */
        if (match(seg, atomic_load_explicit(&r->claim, memory_order_relaxed), s, x))
            return 1;
    }
    return 0;
}

/* Claim word @p c is in flight with a seq at most @p x on the cell of
 * @p s: it may own the cell (an older lap still writing, under a newer
 * claim's mark; or the claim x itself), and ends it itself. */
static int claim_on_cell(const struct sb_segment *seg, uint64_t c, uint64_t s, uint64_t x)
{
    return !(c & (SB_CLAIM_CLAIMING | SB_CLAIM_IDLE)) && c <= x &&
           (c & seg->g.mask) == (s & seg->g.mask);
}

/* End seq @p s, whose cell holds @p v, as SKIPPED. @return 1 done. */
static int claim_skip(const struct sb_segment *seg, struct sb_shm_cell *c, uint64_t v, uint64_t s)
{
    /* seq_cst: a state readers wait for; before the waiter load in
     * sb_wake_readers(). A writer that took the cell meanwhile wins. */
    if (!atomic_compare_exchange_strong_explicit(&c->stamp, &v, SB_STAMP(s, SB_ST_SKIPPED),
                                                 memory_order_seq_cst, memory_order_relaxed))
        return 0;
    /* relaxed: statistics only. */
    atomic_fetch_add_explicit(&seg->hdr->skipped, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&seg->hdr->unblocked, 1, memory_order_relaxed);
    sb_wake_readers(seg->hdr, 0);
    return 1;
}

/* Seq @p s was claimed but its cell, holding @p v, never marked: may it be
 * skipped now? The cell's previous writer must be done (reliable: exactly
 * the previous lap, which readers still expect; lossy: anything older). */
static int claim_unmarked_ready(const struct sb_segment *seg, uint64_t v, uint64_t s)
{
    uint32_t st = SB_STAMP_ST(v);

    if (st == SB_ST_BUSY)
        return 0;
    if (seg->g.mode != SHMBUS_RELIABLE)
        return 1;
    if (s < seg->g.capacity)
        return v == 0;
    return (st == SB_ST_COMMITTED || st == SB_ST_SKIPPED) && SB_STAMP_SEQ(v) == s - seg->g.capacity;
}

/* A dead publisher held seq @p s (its record said so). */
static int claim_settle_seq(const struct sb_segment *seg, uint64_t s)
{
    struct sb_shm_cell *c = sb_cell(seg, s);
    /* acquire: pairs with the writers' seq_cst CAS; their records' stores
     * before it are visible (live_claims_any()). */
    uint64_t v = atomic_load_explicit(&c->stamp, memory_order_acquire), x = SB_STAMP_SEQ(v);

    if (SB_STAMP_ST(v) != SB_ST_EMPTY && SB_STAMP_ST(v) != SB_ST_BUSY && x >= s)
        return 1; /* ended: committed, skipped, or a newer lap's */
    if (SB_STAMP_ST(v) == SB_ST_BUSY && x >= s) {
        /* BUSY(s): we took the cell, or only marked it while an older
         * writer had it. BUSY(x > s): a newer claim marked the cell we had,
         * or took it after we ended ours. A live writer in flight on this
         * cell owns it and will end it; otherwise it was ours to end. */
        return !live_claims_any(seg, claim_on_cell, s, x) && claim_skip(seg, c, v, x);
    }
    return claim_unmarked_ready(seg, v, s) && claim_skip(seg, c, v, s);
}

/* Cells claim_settle_unknown() and claim_settle_range() look at per
 * call: a crafted tail, bound or batch (a range of 2^24 cells) is ended
 * over many calls, never in one. */
#define SETTLE_CELLS_MAX 4096u

/* The end (exclusive) of record @p r's claim on seq @p c: a batch's
 * claim_end (layout.h), or c + 1 for one seq, or for a claim_end left from
 * an older claim or out of bounds. acquire: pairs with the owner's release
 * store (pub.c pub_claim()); a claim word the caller reads after it and
 * finds still c says the end is c's (pub.c pub_rec_claiming()). */
static uint64_t claim_end_of(const struct sb_segment *seg, const struct sb_shm_pubrec *r,
                             uint64_t c)
{
    uint64_t e = atomic_load_explicit(&r->claim_end, memory_order_acquire);

    return e > c && e - c <= seg->g.capacity && e < SB_CLAIM_CLAIMING ? e : c + 1;
}

/* What the live records may own, read once: every seq at or above the
 * lowest CLAIMING bound, and the seqs claimed, a range [lo, hi) per
 * record (sorted by lo; the ranges are disjoint). */
struct live_snap {
    uint64_t min_claiming;
    uint32_t n;
    struct live_range {
        uint64_t lo; /* first: sorted by sb_u64_cmp() */
        uint64_t hi;
    } exact[SB_PUBS_MAX];
};

/* Add live record @p r's claim word @p c to @p ls. */
static void live_snap_add(const struct sb_segment *seg, const struct sb_shm_pubrec *r, uint64_t c,
                          struct live_snap *ls)
{
    uint64_t hi;

    if (c & SB_CLAIM_IDLE)
        return;
    if (!(c & SB_CLAIM_CLAIMING)) {
        hi = claim_end_of(seg, r, c);
        /* acquire: after claim_end's acquire load. A word moved on means
         * the end may be a later claim's: c stands for all above it. */
        if (atomic_load_explicit(&r->claim, memory_order_acquire) == c) {
            ls->exact[ls->n++] = (struct live_range){.lo = c, .hi = hi};
            return;
        }
    }
    if (SB_CLAIM_SEQ(c) < ls->min_claiming)
        ls->min_claiming = SB_CLAIM_SEQ(c);
}

/* Read the live records' claims once, after the caller's acquire load of
 * the tail. A writer seen IDLE, or claiming other seqs or above a bound,
 * cannot come to own a seq below that tail: it claims through the tail
 * RMW, whose release our acquire load would have ordered before its
 * CLAIMING store (pub.c pub_rec_claiming()). */
static void live_snap_take(const struct sb_segment *seg, struct live_snap *ls)
{
    ls->min_claiming = UINT64_MAX;
    ls->n = 0;
    for (uint32_t i = 0; i < seg->g.max_pubs; i++) {
        const struct sb_shm_pubrec *r = &seg->pubs[i];
        /* acquire: pairs with the release store of ACTIVE (pub.c). */
        uint32_t st = atomic_load_explicit(&r->state, memory_order_acquire);

        if (st == SB_PUB_FREE || st == SB_PUB_DEAD)
            continue;
        /* acquire: pairs with the owner's release store of a seq (pub.c
         * pub_rec_claimed()): its batch's claim_end is visible; a
         * CLAIMING bound is ordered by the caller's acquire load of the
         * tail. */
        live_snap_add(seg, r, atomic_load_explicit(&r->claim, memory_order_acquire), ls);
    }
    qsort(ls->exact, ls->n, sizeof(ls->exact[0]), sb_u64_cmp);
}

/* May a live record own seq @p s? The range with the greatest lo <= s is
 * the only one that can hold it. */
static int live_snap_may_own(const struct live_snap *ls, uint64_t s)
{
    uint32_t lo = 0, hi = ls->n;

    if (s >= ls->min_claiming)
        return 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (ls->exact[mid].lo <= s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && s < ls->exact[lo - 1].hi;
}

/* A dead publisher (record @p r) was claiming: it may hold one seq >=
 * @p from, claimed and not marked. End every such seq that no live
 * publisher may own, SETTLE_CELLS_MAX cells per call: the record's bound
 * moves up past the cells found ended, so the next call goes on from
 * there (only the daemon reads a DEAD record). @return 1 when all are. */
static int claim_settle_unknown(const struct sb_segment *seg, struct sb_shm_pubrec *r,
                                uint64_t from)
{
    /* acquire: pairs with the release RMW of every claim (pub.c), so the
     * CLAIMING or in-flight record of each seq below it is visible. */
    uint64_t tail = atomic_load_explicit(&seg->hdr->tail, memory_order_acquire);
    uint64_t lo = tail > seg->g.capacity ? tail - seg->g.capacity : 0;
    uint64_t s = from > lo ? from : lo, end, first = UINT64_MAX;
    struct live_snap ls;

    end = tail - s > SETTLE_CELLS_MAX ? s + SETTLE_CELLS_MAX : tail;
    if (s >= tail)
        return 1; /* nothing claimed at or above the bound */
    live_snap_take(seg, &ls);
    for (; s < end; s++) {
        struct sb_shm_cell *c = sb_cell(seg, s);
        /* acquire: as in claim_settle_seq(). */
        uint64_t v = atomic_load_explicit(&c->stamp, memory_order_acquire);

        if (SB_STAMP_ST(v) != SB_ST_EMPTY && SB_STAMP_SEQ(v) >= s)
            continue; /* marked or ended by its claimer */
        if ((live_snap_may_own(&ls, s) || !claim_unmarked_ready(seg, v, s) ||
             !claim_skip(seg, c, v, s)) &&
            first == UINT64_MAX)
            first = s;
    }
    s = first != UINT64_MAX ? first : end;
    /* relaxed: the daemon's own bookkeeping in a record nobody else reads
     * while it is DEAD. A bound that would not fit the word is left. */
    if (s < SB_CLAIM_CLAIMING)
        atomic_store_explicit(&r->claim, SB_CLAIM_CLAIMING | s, memory_order_relaxed);
    return first == UINT64_MAX && end == tail;
}

/* A dead publisher held seq @p c and, a batch, the seqs after it to its
 * claim_end, in order: end each, SETTLE_CELLS_MAX per call. The claim
 * word moves up past the seqs ended, so the next call goes on from there
 * (only the daemon reads a DEAD record; claim_end stays, and so does the
 * range). @return 1 when all are. */
static int claim_settle_range(const struct sb_segment *seg, struct sb_shm_pubrec *r, uint64_t c)
{
    uint64_t end = claim_end_of(seg, r, c), s = c;
    uint64_t stop = end - c > SETTLE_CELLS_MAX ? c + SETTLE_CELLS_MAX : end;

    while (s < stop && claim_settle_seq(seg, s))
        s++;
    if (s == end)
        return 1;
    /* relaxed: the daemon's own bookkeeping, as in claim_settle_unknown(). */
    atomic_store_explicit(&r->claim, s, memory_order_relaxed);
    return 0;
}

static int claim_settle(const struct sb_segment *seg, struct sb_shm_pubrec *r, uint64_t claim)
{
    if (claim & SB_CLAIM_IDLE)
        return 1;
    if (claim & SB_CLAIM_CLAIMING)
        return claim_settle_unknown(seg, r, SB_CLAIM_SEQ(claim));
    return claim_settle_range(seg, r, claim);
}

/* Exclusive topic whose holder @p pid died: take the token and give it
 * back, which settles its last claim (pub.c). @return 1 done, 0 retry. */
static int token_settle(const struct sb_segment *seg, uint32_t pid)
{
    int fd = sb_pub_token_take(seg, (uint32_t)getpid());

    if (fd == -EBUSY) {
        /* A new holder took it, and settled on taking it; or a fork child
         * of the dead holder still has its lock: wait for it. acquire:
         * pairs with the holders' stores of excl_owner. */
        return atomic_load_explicit(&seg->hdr->excl_owner, memory_order_acquire) != pid;
    }
    if (fd < 0)
        return 0;
    /* release: as a publisher giving the token back (pub.c). */
    atomic_store_explicit(&seg->hdr->excl_owner, 0, memory_order_release);
    close(fd);
    return 1;
}

int sb_admin_pub_settle(const shmbus_topic *t, uint32_t idx)
{
    const struct sb_segment *seg = &t->seg;
    struct sb_shm_pubrec *r = &seg->pubs[idx];
    /* relaxed: the owner is dead; its stores are visible. */
    uint64_t claim = atomic_load_explicit(&r->claim, memory_order_relaxed);
    uint32_t pid = atomic_load_explicit(&r->pid, memory_order_relaxed);
    int done;

    if (!sb_admin_pub_is_dead(t, idx))
        return 0; /* only a DEAD record is ours to end and free */
    done = (seg->g.flags & SHMBUS_TOPIC_EXCLUSIVE) ? token_settle(seg, pid)
                                                   : claim_settle(seg, r, claim);
    if (!done)
        return 0;
    /* relaxed: published by the release store of FREE below. */
    atomic_store_explicit(&r->claim, SB_CLAIM_IDLE, memory_order_relaxed);
    atomic_store_explicit(&r->start, 0, memory_order_relaxed);
    atomic_store_explicit(&r->pid, 0, memory_order_relaxed);
    /* release: pairs with the acquire CAS of the record's next owner. */
    atomic_store_explicit(&r->state, SB_PUB_FREE, memory_order_release);
    return 1;
}

int sb_admin_slot_evict(const shmbus_topic *t, uint32_t idx)
{
    return sb_admin_slot_evict_count(t, idx, NULL);
}

int sb_admin_slot_evict_count(const shmbus_topic *t, uint32_t idx, uint32_t *returned)
{
    const struct sb_segment *seg = &t->seg;
    struct sb_shm_slot *s = &seg->slots[idx];
    /* seq_cst: with the CAS below, ordered against the owner's own CAS out
     * of ACTIVE (sub.c sub_leave_group()) and the publishers' gate loads. */
    uint32_t st = atomic_load_explicit(&s->state, memory_order_seq_cst);
    /* relaxed: written before the slot was published. */
    uint32_t g = atomic_load_explicit(&s->group, memory_order_relaxed), n;

    if (returned != NULL)
        *returned = 0;
    if (st != SB_SLOT_ACTIVE && st != SB_SLOT_JOINING)
        return 0; /* left, or not a gate */
    /* An acknowledging member stalled inside a take (ring/ack.c): its
     * message goes back to the group while the hold still gates it. */
    n = sb_ack_slot_return(seg, idx, g, SHMBUS_DL_EVICTED, 0);
    /* seq_cst: publishers that load EVICTED stop counting the slot as a
     * gate; its owner's reads in place are checked against it (ring.h
     * sb_sub_evicted_after_reads()). */
    if (!atomic_compare_exchange_strong_explicit(&s->state, &st, SB_SLOT_EVICTED,
                                                 memory_order_seq_cst, memory_order_seq_cst)) {
        if (returned != NULL)
            *returned = n;
        return 0;
    }
    /* What it held, and a take it began before the CAS above. */
    n += sb_ack_slot_return(seg, idx, g, SHMBUS_DL_EVICTED, 0);
    if (returned != NULL)
        *returned = n;
    if (g >= 1 && g <= seg->g.max_groups) {
        slot_finish_seat(seg, s, g);
        slot_uncount(seg, s, g); /* it will never leave by itself */
    }
    /* relaxed: statistics only. */
    atomic_fetch_add_explicit(&seg->hdr->evicted, 1, memory_order_relaxed);
    /* seq_cst: after the CAS, so that a sleeping owner either re-checks
     * its state after this (seq_cst, sub.c sb_sub_ready_order()) or has
     * its futex_wait fail on the changed word. Everyone is woken: the
     * word is the topic's; this happens once per eviction. */
    atomic_fetch_add_explicit(&seg->hdr->data_futex, 1, memory_order_seq_cst);
    sb_futex_wake(&seg->hdr->data_futex, INT_MAX);
    sb_wake_publishers(seg->hdr);
    sb_admin_groups_reconcile(t);
    return 1;
}

/* Is there something at @p seq for a reader to take (a message, or a seq
 * to skip)? A reader waiting at a claim still open is not the one
 * stalling: the claim is (sb_admin_pub_unblock()). */
static int gate_has_work(const struct sb_segment *seg, uint64_t seq)
{
    /* acquire: pairs with the writers' seq_cst commit CAS. */
    uint64_t v = atomic_load_explicit(&sb_cell(seg, seq)->stamp, memory_order_acquire);

    return sb_cell_classify(v, seq, seg->g.mask) != SB_CELL_NOT_YET;
}

/* Is the ring full against gate @p at (publishers cannot claim), @p tail
 * its tail? Without overflow, whatever a scribbled gate says. */
static int gate_full(const struct sb_segment *seg, uint64_t at, uint64_t tail)
{
    return tail >= at && tail - at >= seg->g.capacity;
}

int sb_admin_slot_gate(const shmbus_topic *t, uint32_t idx, uint64_t tail, uint64_t *gate)
{
    const struct sb_segment *seg = &t->seg;
    const struct sb_shm_slot *s = &seg->slots[idx];
    /* seq_cst, both: as a publisher's gate scan (gate.c). */
    uint32_t st = atomic_load_explicit(&s->state, memory_order_seq_cst);
    uint64_t p = atomic_load_explicit(&s->pos, memory_order_seq_cst);

    if (st != SB_SLOT_ACTIVE && st != SB_SLOT_JOINING)
        return 0;
    /* A member idle, or placing its group's cursor: the group gates. */
    if (p == SB_POS_IDLE || p == SB_POS_SEATING)
        return 0;
    *gate = p;
    if (!gate_full(seg, p, tail))
        return 0; /* publishers can go on: the cell, which they write, is left unread */
    /* relaxed: written before the slot was published. A member's hold is
     * a message it took: it has work by definition. */
    return atomic_load_explicit(&s->group, memory_order_relaxed) != 0 || gate_has_work(seg, p);
}

int sb_admin_group_gate(const shmbus_topic *t, uint32_t g, uint64_t tail, uint64_t *gate)
{
    /* seq_cst: as a publisher's gate scan (gate.c). */
    uint64_t w = atomic_load_explicit(&t->seg.groups[g].cursor, memory_order_seq_cst);

    if ((w & SB_GRP_MEMBERS) == 0 || (w & SB_GRP_SEATING))
        return 0;
    *gate = SB_GRP_SEQ(w);
    /* The cell is read only when the ring is full against the group. */
    return gate_full(&t->seg, *gate, tail) && gate_has_work(&t->seg, *gate);
}

int sb_admin_slot_kept(const shmbus_topic *t, uint32_t idx)
{
    const struct sb_shm_slot *s;

    if (idx >= t->seg.g.max_subs)
        return 0;
    s = &t->seg.slots[idx];
    /* acquire: pairs with the release store of KEPT (ring/hold.c); the
     * owner it names is then visible. */
    if (atomic_load_explicit(&s->kept, memory_order_acquire) == SB_KEEP_NONE)
        return 0;
    /* acquire: pairs with the owner's state stores. Only an ACTIVE plain
     * slot is adopted (hold.c adopt_claim()): one evicted (an eviction
     * decided just before the owner kept it) or otherwise out of use
     * would be kept for nobody, a slot lost for good. relaxed: the group
     * is written before the state is published. */
    return atomic_load_explicit(&s->state, memory_order_acquire) == SB_SLOT_ACTIVE &&
           atomic_load_explicit(&s->group, memory_order_relaxed) == 0;
}

int sb_admin_slot_member_of(const shmbus_topic *t, uint32_t idx, uint32_t g)
{
    /* relaxed: written before the slot was published; a statistic-grade
     * answer: eviction re-checks the state with a CAS. */
    return atomic_load_explicit(&t->seg.slots[idx].group, memory_order_relaxed) == g + 1;
}

int sb_admin_group_name(const shmbus_topic *t, uint32_t g, char out[SHMBUS_GROUP_NAME_MAX + 1])
{
    static_assert(sizeof(t->seg.groups[0].name) == SHMBUS_GROUP_NAME_MAX + 1, "group name field");

    out[0] = '\0';
    if (g >= t->seg.g.max_groups)
        return -ENOENT;
    /* Written by the daemon once, before the group's number went out; a
     * scribbler may change it at any time: copied, cut, then checked. */
    memcpy(out, t->seg.groups[g].name, SHMBUS_GROUP_NAME_MAX + 1);
    out[SHMBUS_GROUP_NAME_MAX] = '\0';
    if (out[0] == '\0')
        return -ENOENT;
    if (sb_name_valid(out, SHMBUS_GROUP_NAME_MAX))
        return 0;
    out[0] = '\0';
    return SHMBUS_ERR_CORRUPT;
}

int sb_admin_pub_ended(const shmbus_topic *t, uint32_t idx, uint64_t *seq)
{
    /* relaxed: written by the daemon only (sb_admin_pub_unblock()). */
    uint64_t e = atomic_load_explicit(&t->seg.pubs[idx].ended, memory_order_relaxed);

    *seq = e - 1;
    return e != 0;
}

int sb_admin_pub_claim(const shmbus_topic *t, uint32_t idx, uint64_t *seq)
{
    const struct sb_shm_pubrec *r = &t->seg.pubs[idx];
    /* acquire: pairs with the release store of ACTIVE (pub.c). */
    uint32_t st = atomic_load_explicit(&r->state, memory_order_acquire);
    /* relaxed: a live writer's claim word; what we do with it is decided
     * by a CAS on the cell's stamp (sb_admin_pub_unblock()). */
    uint64_t c = atomic_load_explicit(&r->claim, memory_order_relaxed);

    if (st != SB_PUB_ACTIVE || (c & (SB_CLAIM_IDLE | SB_CLAIM_CLAIMING)))
        return 0;
    *seq = c;
    return 1;
}

/* Is a live writer other than record @p idx (while it still claims
 * @p seq) in flight on the cell of @p x with a seq at most @p x? Such a
 * writer owns the cell, or is a newer claim that has just marked it and
 * is on its way out: either way the BUSY there is not ours to end. The
 * claim loads are relaxed after the caller's acquire load of the stamp:
 * each writer stores its claim before its stamp CAS (pub.c). */
static int cell_other_writer(const struct sb_segment *seg, uint32_t idx, uint64_t seq, uint64_t x)
{
    for (uint32_t i = 0; i < seg->g.max_pubs; i++) {
        const struct sb_shm_pubrec *r = &seg->pubs[i];
        /* acquire: pairs with the release store of ACTIVE (pub.c). */
        uint32_t st = atomic_load_explicit(&r->state, memory_order_acquire);
        /* relaxed: see above. */
        uint64_t c = atomic_load_explicit(&r->claim, memory_order_relaxed);

        if (st == SB_PUB_FREE || st == SB_PUB_DEAD || (i == idx && c == seq))
            continue;
        if (claim_on_cell(seg, c, x, x))
            return 1;
    }
    return 0;
}

/* A stamp that keeps changing under our CAS is left to the next scan
 * after this many looks. A newer claim that marked the cell (pub.c
 * cell_take()) is in flight only until it returns SHMBUS_ERR_OVERRUN:
 * it is left to the next scan at once. */
#define UNBLOCK_LOOKS_MAX 16u

int sb_admin_pub_unblock(const shmbus_topic *t, uint32_t idx, uint64_t seq, int resumed)
{
    const struct sb_segment *seg = &t->seg;
    struct sb_shm_pubrec *r = &seg->pubs[idx];
    struct sb_shm_cell *c = sb_cell(seg, seq);

    /* relaxed: our own earlier store; the writer was told already. */
    if (atomic_load_explicit(&r->ended, memory_order_relaxed) == seq + 1)
        resumed = 1;
    for (unsigned looks = 0;; looks++) {
        /* acquire: pairs with the writers' seq_cst stamp CAS; the claim
         * each stored before it is visible (cell_other_writer()). */
        uint64_t v = atomic_load_explicit(&c->stamp, memory_order_acquire), x = SB_STAMP_SEQ(v);

        /* Only a mark at or beyond the claim can be our writer's: a claim
         * whose cell is not marked is a writer waiting for the cell's
         * previous lap; a final stamp, a claim already ended. */
        if (SB_STAMP_ST(v) != SB_ST_BUSY || x < seq)
            return 0;
        /* relaxed: after the acquire above. Until we stored ended, a
         * writer that moved on (committed) is not ours to end. */
        if (!resumed && atomic_load_explicit(&r->claim, memory_order_relaxed) != seq)
            return 0;
        if (looks >= UNBLOCK_LOOKS_MAX)
            return resumed ? -EAGAIN : 0; /* the next scan looks again */
        /* A marker on its way out, or a live owner of a newer lap: the
         * caller looks again at its next scan, never waiting for it here
         * (the daemon's control thread runs this). Before our writer is
         * told, that is a claim not ended yet; once it is, -EAGAIN. */
        if (cell_other_writer(seg, idx, seq, x))
            return resumed ? -EAGAIN : 0;
        /* seq_cst: before the stamp CAS (seq_cst); the writer reads the
         * stamp with acquire when its commit fails (pub.c
         * pub_claim_ended()) and then leaves the cell to us. */
        atomic_store_explicit(&r->ended, seq + 1, memory_order_seq_cst);
        resumed = 1;
        if (claim_skip(seg, c, v, x))
            return 1;
    }
}

int sb_admin_pub_end_rest(const shmbus_topic *t, uint32_t idx, uint64_t seq)
{
    const struct sb_segment *seg = &t->seg;
    const struct sb_shm_pubrec *r = &seg->pubs[idx];
    uint64_t end;
    uint32_t n = 0;

    /* acquire, both: as in live_snap_take(). A word that moved on is a
     * writer that went on with its batch, or found its claim ended and
     * skips the rest itself (pub.c vec_skip_rest()). */
    if (atomic_load_explicit(&r->claim, memory_order_acquire) != seq)
        return 0;
    end = claim_end_of(seg, r, seq);
    if (end - seq > SETTLE_CELLS_MAX)
        end = seq + SETTLE_CELLS_MAX; /* the next scan goes on */
    for (uint64_t s = seq + 1; s < end; s++) {
        struct sb_shm_cell *c = sb_cell(seg, s);
        uint64_t v;

        /* acquire: after claim_end's acquire load (see above). */
        if (atomic_load_explicit(&r->claim, memory_order_acquire) != seq)
            break;
        /* acquire: as in claim_settle_seq(). */
        v = atomic_load_explicit(&c->stamp, memory_order_acquire);
        if (SB_STAMP_ST(v) != SB_ST_EMPTY && SB_STAMP_SEQ(v) >= s)
            continue; /* taken by its writer, who went on, or ended */
        /* Our CAS or the writer's take (pub.c cell_take(), which reads our
         * SKIPPED as ended and counts nothing): whichever lands first. */
        if (claim_unmarked_ready(seg, v, s) && claim_skip(seg, c, v, s))
            n++;
    }
    return (int)n;
}

/* Count, per group, the member slots in use (ACTIVE, JOINING, LEAVING)
 * into @p used (max_groups entries, zeroed by the caller). */
static void members_in_use(const struct sb_segment *seg, uint32_t *used)
{
    for (uint32_t i = 0; i < seg->g.max_subs; i++) {
        /* seq_cst: a joiner stores ACTIVE (seq_cst) before its CAS. */
        uint32_t st = atomic_load_explicit(&seg->slots[i].state, memory_order_seq_cst);
        /* relaxed: written before the slot was published. */
        uint32_t g = atomic_load_explicit(&seg->slots[i].group, memory_order_relaxed);

        if ((st == SB_SLOT_ACTIVE || st == SB_SLOT_JOINING || st == SB_SLOT_LEAVING) && g >= 1 &&
            g <= seg->g.max_groups)
            used[g - 1]++;
    }
}

static_assert(SB_ADMIN_GROUPS_MAX == SB_GROUPS_MAX, "admin.h groups bound");

/* Is group @p g marked in bitmap @p busy (NULL: none is)? */
static int group_busy(const uint64_t *busy, uint32_t g)
{
    return busy != NULL && ((busy[g / 64] >> (g % 64)) & 1);
}

void sb_admin_groups_reconcile_except(const shmbus_topic *t, const uint64_t *busy)
{
    const struct sb_segment *seg = &t->seg;
    uint64_t w[SB_GROUPS_MAX];
    uint32_t used[SB_GROUPS_MAX] = {0};
    int counted = 0;

    /* seq_cst: every word is read before the slots; a member that turns
     * ACTIVE after our scan joins with a CAS that makes ours fail. A busy
     * group's word, which every take writes, is not read at all. */
    for (uint32_t g = 0; g < seg->g.max_groups; g++) {
        w[g] = group_busy(busy, g)
                   ? 0
                   : atomic_load_explicit(&seg->groups[g].cursor, memory_order_seq_cst);
        counted |= (w[g] & SB_GRP_LOW) != 0;
    }
    if (!counted)
        return; /* no count to look behind: the slots are left unread */
    members_in_use(seg, used);
    for (uint32_t g = 0; g < seg->g.max_groups; g++) {
        /* Only a count with no member slot at all behind it is reset: a
         * member evicted or reaped is taken out by the daemon one by one
         * (slot_uncount()); lowering a count to the slots seen would, on
         * a leave and a join between our read and our CAS (the same
         * word), take out a member that just joined. */
        if ((w[g] & SB_GRP_LOW) == 0 || used[g] != 0)
            continue;
        /* seq_cst: as every cursor update; the group stops gating. */
        if (atomic_compare_exchange_strong_explicit(&seg->groups[g].cursor, &w[g],
                                                    SB_GRP_WORD(SB_GRP_SEQ(w[g]), 0),
                                                    memory_order_seq_cst, memory_order_relaxed))
            sb_wake_publishers(seg->hdr);
    }
}

void sb_admin_groups_reconcile(const shmbus_topic *t)
{
    sb_admin_groups_reconcile_except(t, NULL);
}

uint32_t sb_admin_slot_member(const shmbus_topic *t, uint32_t idx)
{
    const struct sb_shm_slot *s = &t->seg.slots[idx];
    /* relaxed, both: a hint for sb_admin_groups_reconcile_except(), which
     * only skips a group on it (the next scan looks again). */
    uint32_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    uint32_t g = atomic_load_explicit(&s->group, memory_order_relaxed);

    if ((st != SB_SLOT_ACTIVE && st != SB_SLOT_JOINING && st != SB_SLOT_LEAVING) || g == 0 ||
        g > t->seg.g.max_groups)
        return 0;
    return g;
}

void sb_admin_waiters_settle(const shmbus_topic *t)
{
    struct sb_shm_header *h = t->seg.hdr;
    /* relaxed: a count, changed by sleepers by one at a time meanwhile;
     * the CAS retries on their changes. */
    uint32_t w = atomic_load_explicit(&h->data_waiters, memory_order_relaxed);

    while (w >= SB_RELAY_WEIGHT &&
           !atomic_compare_exchange_weak_explicit(&h->data_waiters, &w, w % SB_RELAY_WEIGHT,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    /* The dead pump may be the sleeper a publisher's wake-up chose: it
     * neither relayed nor will clear the wake-pending word, so publishers
     * stay silent while the real sleepers sleep (as for a dead subscriber,
     * sb_admin_slot_free()). */
    if (w >= SB_RELAY_WEIGHT)
        sb_wait_pending_settle(h);
}
