/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Daemon-side ending of publishers' claims (admin.h): settling the claim
 * of a publisher that died between claim and commit (one seq, or the rest
 * of a batch), the token of a dead exclusive holder, and ending the claim
 * of a live publisher stalled past the topic's stall timeout. Split from
 * admin.c, which keeps slots, groups and gates. The orders and the proof
 * are in docs/design.md ("Publisher records", "Batches") and
 * docs/model/batch.pml.
 */
#include "registry/admin.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring/read.h"
#include "ring/ring.h"
#include "ring/wait.h"
#include "util/cmp.h"

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
