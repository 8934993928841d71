/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Acknowledged groups (SHMBUS_SUB_ACK): the members' side of the pending
 * tables (layout.h), and the give-backs the daemon shares with them.
 *
 * The protocol. An entry's word (state | owner-or-reason | deliveries |
 * generation) changes only by CAS, seq_cst, each CAS bumping the
 * generation, so a CAS from a word someone else changed fails.
 *
 *   FREE --member reserves--> RESERVED(owner)
 *   RESERVED --take ends--> HELD(owner, deliveries 1)
 *   HELD --ack, the member holds a reservation--> FREE
 *   HELD --ack, the member holds none--> RESERVED(owner), its reservation
 *                                        for its next take
 *   HELD --nack / daemon: owner died, was evicted, left--> RETURNED(reason)
 *   RETURNED --member takes it, deliveries < max--> HELD(deliveries + 1)
 *   RETURNED --daemon, deliveries >= max, or stalled--> DEAD
 *   DEAD --daemon published the dead letter--> FREE
 *   RESERVED(take in flight, owner gone) --daemon--> RETURNED(deliveries 0,
 *                                                       marked SB_PEND_COPY)
 *   RESERVED(owner gone) --daemon--> FREE
 *
 * A take from the cursor (sb_ack_take()), by a member holding a RESERVED
 * entry:
 *   1. entry.seq = c, the cursor's seq (relaxed: published by 2);
 *   2. slot.pos = c, the hold (seq_cst), as group.c's takes;
 *   3. CAS the cursor c -> c + 1 (seq_cst); on failure drop the hold and,
 *      before the reservation shows another seq, re-arm it (a CAS that
 *      bumps its generation: "exposed" below);
 *   4. CAS the entry RESERVED -> HELD, deliveries 1 (seq_cst): from here
 *      the entry gates publishers;
 *   5. drop the hold (seq_cst store of IDLE).
 * The daemon, giving back the entries of a member that died or that it
 * evicted, returns a RESERVED entry whose seq is the slot's hold while the
 * cursor is past it (the take got past 3, not past 4): RETURNED with
 * deliveries 0, so the message is redelivered, not lost. It loads the
 * word, then the hold and seq, then the cursor (all seq_cst), and CASes
 * from the word it loaded: a member that re-armed (3) or ended its take
 * (4) meanwhile makes that CAS fail, and one whose own CAS comes second
 * learns that its entry was taken from it (SHMBUS_ERR_EVICTED).
 * One window gives a duplicate: a member that dies (or is evicted) after
 * storing its hold (2) and before dropping it, its cursor CAS (3) failed
 * or not yet tried (it would fail), leaves an entry whose seq is its hold
 * with the cursor past it, so the daemon returns a message another member
 * took. At-least-once, never at-most-once. That member may have acked it
 * and a publisher that scanned the gates before the give-back may reuse
 * its cell: the returned entry does not hold that publisher back. So an
 * entry returned from RESERVED carries SB_PEND_COPY (layout.h) until it
 * is FREE or RESERVED again (pend_next() keeps it), and its readers,
 * members (ack_redeliver()) and the daemon's dead letters (admin_ack.c),
 * copy the message out and re-check the stamp (read.h sb_cell_copy():
 * the orders), never reading it in place. A copy whose message has gone
 * is freed as a duplicate, counted nowhere (pend_gone()).
 *
 * An ack keeps its entry as the member's reservation when it has none
 * (held_ack()): one CAS, where freeing the entry and then reserving one
 * for the next take (a scan and a CAS) make two. Still one reservation
 * per member at most, gating nothing, as a FREE entry. The word loses its
 * SB_PEND_COPY mark (pend_next()); the entry keeps the acked message's
 * seq, which no give-back takes for a take in flight: the member dropped
 * its hold for that seq (5) before its ack's CAS (a redelivery stores no
 * hold), so a daemon that loaded the word the ack made loads the hold
 * IDLE, or a later take's, whose seq (1) was stored before it.
 *
 * Eviction of a live member (admin.c sb_admin_slot_evict_count()): the
 * daemon gives back before its CAS of the slot to EVICTED (a take the
 * member is stalled in, while its hold still gates) and after it (HELD
 * entries, and a take begun in between); a live member's idle
 * reservation stays its own, and only it writes the entry's seq. A take
 * the member began between the two passes is ungated from the CAS until
 * the second pass: if a publisher overwrote its cell in that moment, the
 * next taker finds the stamp changed and counts it abandoned. The second
 * pass returns it from RESERVED, so it is marked as above: a publisher
 * whose limit came before that pass may write the cell while it is read,
 * and only a checked copy sees it. A marked entry whose reason is EVICTED
 * and whose message has gone may be such a loss or a duplicate: counted
 * abandoned. The member itself, after its entry turned HELD, looks at its
 * slot (seq_cst): if evicted, it gives the entry back (4 came after the
 * daemon's second pass) and says SHMBUS_ERR_EVICTED without delivering.
 * Once its callback has read the message in place it looks again, at the
 * slot and the entry's word (ack_lost_after_reads()): a message given
 * back meanwhile may have been taken, acked and its cell reused under the
 * reads, so the step says SHMBUS_ERR_EVICTED, as group.c's takes do.
 *
 * Why publishers see every phase (ring/gate.c scans cursors, then slots,
 * then the pending tables, each load seq_cst): each step above makes the
 * next gate visible before it takes the previous one away, and the scan
 * reads the gates in that order. A scan that sees the cursor past c
 * (after 3) sees the hold (2, before 3); one that sees the hold dropped
 * (5) sees HELD (4, before 5). Every later move keeps the entry in a
 * gating state (HELD, RETURNED, DEAD) until ack or the daemon frees it.
 * A RESERVED entry gates nothing: its take is gated by the hold.
 *
 * Redelivery (ack_redeliver()): a member under max_inflight takes the
 * lowest-seq RETURNED entry that is due (not nacked with a not_before
 * still ahead) and has deliveries < max_deliveries, by CAS to HELD with
 * deliveries + 1, before looking at the cursor. The group's returned
 * count (layout.h) is a hint that spares members the scan when nothing
 * came back: raised before an entry turns RETURNED, lowered after.
 *
 * Fields: seq is written only by the member holding the entry RESERVED
 * (1 above), and read after the word (acquire) by the others; not_before
 * by a nacking member before its CAS to RETURNED | NACKED. A nack that
 * loses its CAS to the daemon (the member was evicted meanwhile) has
 * still stored its not_before: the entry comes back with another reason,
 * for which not_before does not count; only if another member then took
 * and nacked the entry before that late store landed would its delay be
 * the evicted member's (one redelivery early or late, never lost).
 *
 * Waking: a nack and the daemon's give-backs wake sleeping readers
 * (sb_wake_readers()); a sleeper caps its sleep at the earliest
 * not_before of its group (sb_ack_wake_at()). An ack wakes publishers,
 * not readers: a member that found the table full (no entry to reserve)
 * looks again at its sleep slice's end (SB_WAIT_SLICE_NS).
 */
#include "ring/ack.h"

#include <errno.h>
#include <stdlib.h>

#include "ring/group.h"
#include "ring/ring.h"
#include "util/clock.h"
#include "util/fork.h"

static_assert(SHMBUS_DL_LEFT <= 0xfffu && SHMBUS_DL_STALLED <= 0xfffu,
              "a reason must fit the pending word's owner bits");
static_assert(SHMBUS_MAX_DELIVERIES_MAX < 0xffffu, "deliveries must fit the pending word");
static_assert(SHMBUS_INFLIGHT_MAX <= SB_ACK_ENTRIES, "a member's messages fit its table");

/* CAS attempts on one entry in a give-back before moving on. */
#define ACK_GIVE_BACK_TRIES 64u

/* The word after @p w with the given fields: generation + 1, and @p w's
 * SB_PEND_COPY mark unless the entry goes FREE or RESERVED (layout.h). */
static uint64_t pend_next(uint64_t w, uint32_t deliveries, uint32_t owner, uint32_t st)
{
    return SB_PEND_WORD(SB_PEND_GEN(w) + 1u, deliveries, owner, st) |
           (st == SB_PEND_FREE || st == SB_PEND_RESERVED ? 0 : (w & SB_PEND_COPY));
}

/* CAS entry @p e from @p w to @p nw. seq_cst: every pending word change
 * is, so that publishers' gate scans (gate.c) and the daemon's give-backs
 * order against the holds and cursors around them. */
static int pend_cas(struct sb_shm_pending *e, uint64_t w, uint64_t nw)
{
    return atomic_compare_exchange_strong_explicit(&e->word, &w, nw, memory_order_seq_cst,
                                                   memory_order_relaxed);
}

int sb_ack_return(struct sb_shm_group *grp, struct sb_shm_pending *e, uint64_t w,
                  uint32_t deliveries, uint32_t reason)
{
    /* A take the daemon could not confirm: marked for the entry's life
     * (protocol, top of file). */
    uint64_t nw = pend_next(w, deliveries, reason, SB_PEND_RETURNED) |
                  (SB_PEND_ST(w) == SB_PEND_RESERVED ? SB_PEND_COPY : 0);

    /* seq_cst, both: the hint goes up before the entry is RETURNED and
     * back down if it is not, so it is never below the truth; a sleeper
     * that counted itself (wait.c) and then loads it sees it, or is
     * woken by the give-back's caller. */
    atomic_fetch_add_explicit(&grp->returned, 1, memory_order_seq_cst);
    if (pend_cas(e, w, nw))
        return 1;
    atomic_fetch_sub_explicit(&grp->returned, 1, memory_order_seq_cst);
    return 0;
}

/* One RETURNED entry fewer (after the CAS that moved it away). */
void sb_ack_returned_less(struct sb_shm_group *grp)
{
    /* seq_cst: as in sb_ack_return(). A hint at 0 is left alone: a
     * scribbled count must not wrap into looking full forever. */
    uint32_t n = atomic_load_explicit(&grp->returned, memory_order_seq_cst);

    while (n != 0 && !atomic_compare_exchange_weak_explicit(
                         &grp->returned, &n, n - 1, memory_order_seq_cst, memory_order_seq_cst))
        ;
}

/* Is RETURNED word @p w (entry @p e) due for a member at @p *now (0:
 * not read yet; read when first needed)? */
static int pend_due(const struct sb_shm_pending *e, uint64_t w, uint32_t max_deliveries,
                    uint64_t *now)
{
    uint64_t nb;

    if (SB_PEND_DELIVERIES(w) >= max_deliveries)
        return 0; /* the daemon's, to dead-letter */
    if (SB_PEND_REASON(w) != SHMBUS_DL_NACKED)
        return 1;
    /* relaxed: stored before the CAS that published @p w, which the
     * caller loaded with acquire. */
    nb = atomic_load_explicit(&e->not_before, memory_order_relaxed);
    if (nb == 0)
        return 1;
    if (*now == 0)
        *now = sb_mono_ns();
    return nb <= *now;
}

/* Forget held message @p k. */
static void held_forget(struct sb_ack *a, uint32_t k)
{
    a->held[k] = a->held[--a->inflight];
}

static void held_add(struct sb_ack *a, uint32_t entry, uint64_t seq, uint64_t word)
{
    a->held[a->inflight++] = (struct sb_ack_held){.seq = seq, .word = word, .entry = entry};
}

/* Give held message @p k back to the group ourselves (@p reason), and
 * forget it; sleeping members are woken to take it. */
static void held_give_back(shmbus_sub *sub, uint32_t k, uint32_t reason)
{
    struct sb_ack *a = sub->ack;
    const struct sb_ack_held *m = &a->held[k];
    int ok =
        sb_ack_return(a->grp, &a->pend[m->entry], m->word, SB_PEND_DELIVERIES(m->word), reason);

    held_forget(a, k);
    if (ok)
        sb_wake_readers(sub->topic->seg.hdr, 0);
}

/* How held_drop() counts a message it drops. */
enum held_loss {
    HELD_LOST,      /* the member's loss (a skipped seq, a bad length) */
    HELD_ABANDONED, /* and the topic's abandoned */
    HELD_DUPLICATE  /* nobody's: a copy of a message another member took */
};

/* A held message @p k whose cell does not hold it any more (lost in an
 * eviction's window, top of file, a duplicate, or a scribbled segment):
 * free the entry and count it as @p how says. */
static void held_drop(shmbus_sub *sub, uint32_t k, enum held_loss how)
{
    struct sb_ack *a = sub->ack;
    const struct sb_ack_held *m = &a->held[k];

    pend_cas(&a->pend[m->entry], m->word, pend_next(m->word, 0, 0, SB_PEND_FREE));
    held_forget(a, k);
    if (how != HELD_DUPLICATE)
        sb_sub_count_lost(sub, 1);
    /* relaxed: statistics only. */
    if (how == HELD_ABANDONED)
        atomic_fetch_add_explicit(&sub->topic->seg.hdr->abandoned, 1, memory_order_relaxed);
    sb_wake_publishers(sub->topic->seg.hdr);
}

/* How to count RETURNED word @p w's message found gone from its cell.
 * Only an entry the daemon returned from RESERVED (SB_PEND_COPY) may
 * lose it to a publisher: a copy of a message another member took (a
 * duplicate, dropped uncounted), or, after an eviction, a take begun
 * between its two give-backs whose cell was reused in that moment (top
 * of file). The reason tells them apart only until a redelivery: EVICTED
 * is counted abandoned, as the eviction's window is. An unmarked entry
 * gated its cell all along: a scribbled segment's loss. */
static enum held_loss pend_gone(uint64_t w)
{
    if (!(w & SB_PEND_COPY) || SB_PEND_REASON(w) == SHMBUS_DL_EVICTED)
        return HELD_ABANDONED;
    return HELD_DUPLICATE;
}

/* After the caller's callback read our held message (entry @p entry, word
 * @p word) in place: was it taken from us meanwhile? The daemon gives an
 * evicted member's messages back, another member may take and ack one,
 * and a publisher then overwrites its cell under the reads; so, as group.c
 * does for its takes, the delivery is reported as an eviction, not as a
 * message. (A callback may have acked or nacked it itself.) @return 1 if
 * taken from us or evicted: the message is no longer ours. */
static int ack_lost_after_reads(shmbus_sub *sub, uint32_t entry, uint64_t word)
{
    struct sb_ack *a = sub->ack;
    /* Its acquire fence also orders the entry's load below: had we read a
     * byte a publisher wrote after the entry was freed, we see the word
     * moved from ours (generations only grow). */
    int evicted = sb_sub_evicted_after_reads(sub);

    for (uint32_t k = 0; k < a->inflight; k++) {
        if (a->held[k].entry != entry || a->held[k].word != word)
            continue;
        /* relaxed: ordered by the fence above. */
        if (atomic_load_explicit(&a->pend[entry].word, memory_order_relaxed) != word) {
            held_forget(a, k); /* the daemon gave it back */
            return 1;
        }
        if (evicted)
            held_give_back(sub, k, SHMBUS_DL_EVICTED);
        return evicted;
    }
    return evicted;
}

/* Reserve a FREE entry for our next take. @return 0, or -1 if the table
 * is full. */
static int ack_reserve(struct sb_ack *a)
{
    uint32_t i = a->hint;

    for (uint32_t k = 0; k < a->entries; k++, i++) {
        struct sb_shm_pending *e;
        uint64_t w, nw;

        if (i >= a->entries)
            i = 0;
        e = &a->pend[i];
        /* relaxed: a candidate; the CAS decides. */
        w = atomic_load_explicit(&e->word, memory_order_relaxed);
        if (SB_PEND_ST(w) != SB_PEND_FREE)
            continue;
        nw = pend_next(w, 0, a->owner, SB_PEND_RESERVED);
        if (!pend_cas(e, w, nw))
            continue;
        /* relaxed: no take in flight; read by the daemon after our hold
         * (seq_cst, stored after this) or once we are dead. */
        atomic_store_explicit(&e->seq, SB_POS_IDLE, memory_order_relaxed);
        a->resv = (int32_t)i;
        a->resv_word = nw;
        a->exposed = 0;
        a->hint = i + 1;
        return 0;
    }
    return -1;
}

/* Our reservation showed a seq and a hold for a take that did not end
 * HELD: bump its generation before it shows another, so that a daemon
 * that judged the old take in flight either has returned it (then this
 * fails: the entry is no longer ours) or fails its own CAS. @return 0, or
 * SHMBUS_ERR_EVICTED. */
static int ack_rearm(struct sb_ack *a)
{
    uint64_t nw = pend_next(a->resv_word, 0, a->owner, SB_PEND_RESERVED);

    if (!pend_cas(&a->pend[a->resv], a->resv_word, nw)) {
        a->resv = -1;
        return SHMBUS_ERR_EVICTED;
    }
    a->resv_word = nw;
    a->exposed = 0;
    return 0;
}

int sb_ack_take(shmbus_sub *sub, const struct sb_shm_cell *cell, uint64_t v, uint64_t w,
                sb_deliver_fn fn, void *arg)
{
    struct sb_ack *a = sub->ack;
    struct sb_shm_pending *e = &a->pend[a->resv];
    uint64_t c = SB_GRP_SEQ(w), hw = pend_next(a->resv_word, 1, a->owner, SB_PEND_HELD);
    uint32_t k;
    shmbus_msg msg;
    int rc;

    /* relaxed: published by the seq_cst hold store below; the daemon loads
     * the hold before this (protocol, top of file). */
    atomic_store_explicit(&e->seq, c, memory_order_relaxed);
    a->exposed = 1;
    /* The hold, then the cursor CAS (protocol, 2 and 3). */
    if (!sb_group_claim(sub, w, v))
        return SB_STEP_MOVED;
    /* The entry gates from here, before the hold goes (protocol, 4). */
    if (!pend_cas(e, a->resv_word, hw)) {
        /* The daemon gave the take back to the group: it evicted us. */
        a->resv = -1;
        sb_group_hold(sub, SB_POS_IDLE);
        return SHMBUS_ERR_EVICTED;
    }
    a->resv = -1;
    sb_group_hold(sub, SB_POS_IDLE);
    k = a->inflight;
    held_add(a, (uint32_t)(e - a->pend), c, hw);
    /* seq_cst: evicted before the entry turned HELD, our hold stopped
     * gating: give the message back (a later taker checks its cell). An
     * eviction after it leaves the entry gating, and the daemon returns
     * it, or we do: whoever's CAS comes first. */
    if (sb_sub_evicted(sub, memory_order_seq_cst)) {
        held_give_back(sub, k, SHMBUS_DL_EVICTED);
        return SHMBUS_ERR_EVICTED;
    }
    rc = sb_cell_read(sub, cell, v, c, &msg, sub->copy_read);
    if (rc != 0) {
        held_drop(sub, k, HELD_LOST);
        return rc == 1 ? SB_STEP_MOVED : rc;
    }
    msg.deliveries = 1;
    rc = fn(&msg, arg);
    if (ack_lost_after_reads(sub, (uint32_t)(e - a->pend), hw))
        return SHMBUS_ERR_EVICTED;
    return sb_sub_delivered(sub, rc);
}

/* Take the lowest-seq due RETURNED entry. @return a step result or an
 * error, SB_STEP_NONE if none is due. */
static int ack_redeliver(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap)
{
    const struct sb_segment *seg = &sub->topic->seg;
    struct sb_ack *a = sub->ack;
    uint64_t now = 0, best_seq = UINT64_MAX, best_w = 0, hw, v;
    uint32_t best = UINT32_MAX, k, d;
    const struct sb_shm_cell *cell;
    shmbus_msg msg;
    int rc, copy;

    for (uint32_t i = 0; i < a->entries; i++) {
        const struct sb_shm_pending *e = &a->pend[i];
        /* acquire: pairs with the CAS that made it RETURNED; seq and
         * not_before were stored before it. */
        uint64_t w = atomic_load_explicit(&e->word, memory_order_acquire), s;

        if (SB_PEND_ST(w) != SB_PEND_RETURNED || !pend_due(e, w, a->max_deliveries, &now))
            continue;
        /* relaxed: ordered by the acquire load above. */
        s = atomic_load_explicit(&e->seq, memory_order_relaxed);
        if (s < best_seq) {
            best_seq = s;
            best_w = w;
            best = i;
        }
    }
    if (best == UINT32_MAX)
        return SB_STEP_NONE;
    d = SB_PEND_DELIVERIES(best_w) + 1;
    hw = pend_next(best_w, d, a->owner, SB_PEND_HELD);
    if (!pend_cas(&a->pend[best], best_w, hw))
        return SB_STEP_MOVED; /* another member took it: look again */
    sb_ack_returned_less(a->grp);
    /* seq_cst: as in sb_ack_take(). Evicted before our CAS, the daemon's
     * give-back after its CAS of the slot may have come first and missed
     * the entry: back as it was, undelivered, or it stays HELD by a slot
     * nobody evicts again. */
    if (sb_sub_evicted(sub, memory_order_seq_cst)) {
        if (sb_ack_return(a->grp, &a->pend[best], hw, d - 1, SHMBUS_DL_EVICTED))
            sb_wake_readers(seg->hdr, 0);
        return SHMBUS_ERR_EVICTED;
    }
    /* relaxed: statistics only. */
    atomic_fetch_add_explicit(&a->grp->redelivered, 1, memory_order_relaxed);
    k = a->inflight;
    held_add(a, best, best_seq, hw);
    cell = sb_cell(seg, best_seq);
    /* acquire: pairs with the commit CAS (pub.c); the entry gated the cell
     * since, so it still shows the message unless it was lost. */
    v = atomic_load_explicit(&cell->stamp, memory_order_acquire);
    switch (sb_cell_classify(v, best_seq, seg->g.mask)) {
    case SB_CELL_READY:
        break;
    case SB_CELL_SKIPPED: /* a take the daemon returned was of a skipped seq */
        held_drop(sub, k, HELD_LOST);
        return SB_STEP_MOVED;
    case SB_CELL_CORRUPT:
        held_drop(sub, k, HELD_ABANDONED);
        return SHMBUS_ERR_CORRUPT;
    default: /* a copy's message gone, or an eviction's window (top of file) */
        held_drop(sub, k, pend_gone(best_w));
        return SB_STEP_MOVED;
    }
    /* A marked entry may gate nothing (protocol, top of file): read by a
     * checked copy (read.h sb_cell_copy(): its orders), dropped if the
     * stamp moved under it. */
    copy = sub->copy_read || (best_w & SB_PEND_COPY) != 0;
    rc = sb_cell_fits(sub, cell, v, cap, copy);
    if (rc == -EMSGSIZE) {
        /* Too big for the caller's buffer: back as it was, delivery
         * uncounted (as at the cursor, the message stays where it is). */
        if (sb_ack_return(a->grp, &a->pend[best], hw, d - 1, SB_PEND_REASON(best_w)))
            sb_wake_readers(seg->hdr, 0);
        held_forget(a, k);
        return rc;
    }
    if (rc == 0)
        rc = sb_cell_read(sub, cell, v, best_seq, &msg, copy);
    if (rc != 0) {
        held_drop(sub, k, rc == 1 ? pend_gone(best_w) : HELD_LOST);
        return rc == 1 ? SB_STEP_MOVED : rc;
    }
    msg.deliveries = d;
    rc = fn(&msg, arg);
    if (ack_lost_after_reads(sub, best, hw))
        return SHMBUS_ERR_EVICTED;
    return sb_sub_delivered(sub, rc);
}

int sb_ack_step(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap)
{
    struct sb_ack *a = sub->ack;
    int rc;

    if (a->inflight >= a->max_inflight)
        return SB_STEP_NONE; /* ack or nack first */
    /* acquire: pairs with the seq_cst raise, which comes before the CAS
     * that makes an entry RETURNED, so it orders nothing read after it: a
     * hint only; the entries' words, loaded with acquire, decide. */
    if (atomic_load_explicit(&a->grp->returned, memory_order_acquire) != 0) {
        rc = ack_redeliver(sub, fn, arg, cap);
        if (rc != SB_STEP_NONE)
            return rc;
    }
    if (a->resv < 0) {
        if (ack_reserve(a) < 0)
            return SB_STEP_NONE; /* every entry of the group pending */
    } else if (a->exposed && (rc = ack_rearm(a)) < 0) {
        return rc;
    }
    return sb_group_cursor_step(sub, fn, arg, cap);
}

/* Is a RETURNED entry due for us? */
static int ack_due_any(const struct sb_ack *a, memory_order order)
{
    uint64_t now = 0;

    for (uint32_t i = 0; i < a->entries; i++) {
        /* @p order: acquire, or seq_cst on the sleep path (after we
         * counted ourselves among the sleepers). */
        uint64_t w = atomic_load_explicit(&a->pend[i].word, order);
        if (SB_PEND_ST(w) == SB_PEND_RETURNED && pend_due(&a->pend[i], w, a->max_deliveries, &now))
            return 1;
    }
    return 0;
}

/* Could we reserve an entry (we hold one, or one is FREE)? */
static int ack_can_reserve(const struct sb_ack *a)
{
    if (a->resv >= 0)
        return 1;
    for (uint32_t i = 0; i < a->entries; i++)
        /* relaxed: a guess; the take's CAS decides. */
        if (SB_PEND_ST(atomic_load_explicit(&a->pend[i].word, memory_order_relaxed)) ==
            SB_PEND_FREE)
            return 1;
    return 0;
}

int sb_ack_ready(shmbus_sub *sub, memory_order order)
{
    const struct sb_segment *seg = &sub->topic->seg;
    struct sb_ack *a = sub->ack;
    uint64_t c, v;

    if (a->inflight >= a->max_inflight)
        return 0;
    /* @p order: see ack_due_any(); the hint pairs as in sb_ack_step(). */
    if (atomic_load_explicit(&a->grp->returned, order) != 0 && ack_due_any(a, order))
        return 1;
    c = sb_group_pos(sub, order);
    if (c == UINT64_MAX || !ack_can_reserve(a))
        return 0;
    /* @p order: as sb_sub_ready_order()'s stamp load. */
    v = atomic_load_explicit(&sb_cell(seg, c)->stamp, order);
    return sb_cell_classify(v, c, seg->g.mask) != SB_CELL_NOT_YET;
}

uint64_t sb_ack_wake_at(const shmbus_sub *sub)
{
    const struct sb_ack *a = sub->ack;
    uint64_t at = UINT64_MAX;

    /* At its limit the member takes nothing, due or not (sb_ack_ready()):
     * a time already past would end every sleep at once, a busy loop. */
    if (a->inflight >= a->max_inflight)
        return at;
    /* relaxed, all: a bound on a sleep; the sleeper re-checks on waking. */
    if (atomic_load_explicit(&a->grp->returned, memory_order_relaxed) == 0)
        return at;
    for (uint32_t i = 0; i < a->entries; i++) {
        uint64_t w = atomic_load_explicit(&a->pend[i].word, memory_order_relaxed), nb;
        if (SB_PEND_ST(w) != SB_PEND_RETURNED || SB_PEND_REASON(w) != SHMBUS_DL_NACKED ||
            SB_PEND_DELIVERIES(w) >= a->max_deliveries)
            continue;
        nb = atomic_load_explicit(&a->pend[i].not_before, memory_order_relaxed);
        if (nb < at)
            at = nb;
    }
    return at;
}

int sb_ack_init(shmbus_sub *sub, uint32_t group, uint32_t max_inflight)
{
    const struct sb_segment *seg = &sub->topic->seg;
    struct sb_shm_group *grp = &seg->groups[group - 1];
    /* acquire: written by the daemon before it handed out the number. */
    uint32_t md = atomic_load_explicit(&grp->max_deliveries, memory_order_acquire);
    struct sb_ack *a;

    if (seg->g.ack_entries == 0 || md == 0 || md > SHMBUS_MAX_DELIVERIES_MAX)
        return SHMBUS_ERR_MISMATCH; /* the group does not acknowledge */
    /* Room for checked copies of marked entries (sb_cell_read()); the
     * subscriber frees it (sub.c). */
    if (sub->scratch == NULL && (sub->scratch = malloc(seg->g.max_msg_size + 1u)) == NULL)
        return -ENOMEM;
    a = sb_handle_alloc(sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    a->grp = grp;
    a->pend = sb_pending(seg, group - 1, 0);
    a->entries = seg->g.ack_entries;
    a->owner = (uint32_t)(sub->slot - seg->slots) + 1;
    a->max_deliveries = md;
    a->max_inflight = max_inflight ? max_inflight : 1;
    a->resv = -1;
    sub->ack = a;
    return 0;
}

void sb_ack_fini(shmbus_sub *sub)
{
    struct sb_ack *a = sub->ack;

    if (a == NULL)
        return;
    while (a->inflight > 0)
        held_give_back(sub, a->inflight - 1, SHMBUS_DL_LEFT);
    if (a->resv >= 0)
        pend_cas(&a->pend[a->resv], a->resv_word, pend_next(a->resv_word, 0, 0, SB_PEND_FREE));
    free(a);
    sub->ack = NULL;
}

/* The checks shared by shmbus_ack() and shmbus_nack(). @return the index
 * of @p seq in held[] (>= 0), or an error. */
static int ack_find(shmbus_sub *sub, uint64_t seq)
{
    const struct sb_ack *a;

    if (sub == NULL || sub->ack == NULL || sub->gen != sb_fork_gen())
        return SHMBUS_ERR_INVALID;
    if (sb_topic_gone(&sub->topic->seg, memory_order_relaxed))
        return SHMBUS_ERR_TOPIC_GONE;
    a = sub->ack;
    for (uint32_t k = 0; k < a->inflight; k++)
        if (a->held[k].seq == seq) {
            /* relaxed: a flag; the entry's CAS is what tells. */
            if (sb_sub_evicted(sub, memory_order_relaxed)) {
                /* Back to the group unless the daemon did it (then
                 * the CAS fails): never left HELD by an evicted slot. */
                held_give_back(sub, k, SHMBUS_DL_EVICTED);
                return SHMBUS_ERR_EVICTED;
            }
            return (int)k;
        }
    return sb_sub_evicted(sub, memory_order_relaxed) ? SHMBUS_ERR_EVICTED : -ENOENT;
}

/* Acknowledge held message @p m: free its entry, or keep it as our
 * reservation if we hold none (protocol, top of file). @return 1 done, 0
 * the word had changed (the daemon gave it back). */
static int held_ack(struct sb_ack *a, const struct sb_ack_held *m)
{
    uint64_t nw;

    if (a->resv >= 0)
        return pend_cas(&a->pend[m->entry], m->word, pend_next(m->word, 0, 0, SB_PEND_FREE));
    nw = pend_next(m->word, 0, a->owner, SB_PEND_RESERVED);
    if (!pend_cas(&a->pend[m->entry], m->word, nw))
        return 0;
    a->resv = (int32_t)m->entry;
    a->resv_word = nw;
    a->exposed = 0; /* its seq is the acked one's, its hold dropped */
    return 1;
}

int shmbus_ack(shmbus_sub *sub, uint64_t seq)
{
    int k = ack_find(sub, seq), ok;
    struct sb_ack *a;

    if (k < 0)
        return k;
    a = sub->ack;
    ok = held_ack(a, &a->held[k]);
    held_forget(a, (uint32_t)k);
    if (!ok)
        return SHMBUS_ERR_EVICTED; /* the daemon gave it back */
    sb_wake_publishers(sub->topic->seg.hdr);
    return 0;
}

int shmbus_nack(shmbus_sub *sub, uint64_t seq, int64_t delay_ns)
{
    struct sb_ack *a;
    const struct sb_ack_held *m;
    int k, ok;

    if (delay_ns < 0 || delay_ns > SHMBUS_NACK_DELAY_MAX)
        return SHMBUS_ERR_INVALID;
    k = ack_find(sub, seq);
    if (k < 0)
        return k;
    a = sub->ack;
    m = &a->held[k];
    /* relaxed: published by the CAS to RETURNED | NACKED below, the only
     * word for which it counts. */
    atomic_store_explicit(&a->pend[m->entry].not_before,
                          delay_ns ? sb_mono_ns() + (uint64_t)delay_ns : 0, memory_order_relaxed);
    ok = sb_ack_return(a->grp, &a->pend[m->entry], m->word, SB_PEND_DELIVERIES(m->word),
                       SHMBUS_DL_NACKED);
    held_forget(a, (uint32_t)k);
    if (!ok)
        return SHMBUS_ERR_EVICTED;
    /* Sleeping members take it now, or cap their sleep at its time. */
    sb_wake_readers(sub->topic->seg.hdr, 0);
    return 0;
}

uint32_t sb_ack_slot_return(const struct sb_segment *seg, uint32_t idx, uint32_t g, uint32_t reason,
                            int gone)
{
    const struct sb_shm_slot *s = &seg->slots[idx];
    struct sb_shm_group *grp;
    uint32_t n = 0;

    if (seg->g.ack_entries == 0 || g == 0 || g > seg->g.max_groups)
        return 0;
    grp = &seg->groups[g - 1];
    /* relaxed: written once, before any member joined. */
    if (atomic_load_explicit(&grp->max_deliveries, memory_order_relaxed) == 0)
        return 0;
    for (uint32_t i = 0; i < seg->g.ack_entries; i++) {
        struct sb_shm_pending *e = sb_pending(seg, g - 1, i);
        /* seq_cst: the word first, then the hold and seq, then the cursor
         * (protocol, top of file). */
        uint64_t w = atomic_load_explicit(&e->word, memory_order_seq_cst), hold, seq, cur;

        /* A live owner moves its word a few times at most; one that keeps
         * changing is a scribbler's, left for the stall passes. */
        for (uint32_t tries = 0; tries < ACK_GIVE_BACK_TRIES; tries++) {
            if (SB_PEND_OWNER(w) != idx + 1 ||
                (SB_PEND_ST(w) != SB_PEND_HELD && SB_PEND_ST(w) != SB_PEND_RESERVED))
                break;
            if (SB_PEND_ST(w) == SB_PEND_HELD) {
                if (sb_ack_return(grp, e, w, SB_PEND_DELIVERIES(w), reason)) {
                    n++;
                    break;
                }
            } else {
                /* seq_cst, hold and cursor: as above; relaxed seq: stored
                 * before the hold (a release), or by a dead owner. */
                hold = atomic_load_explicit(&s->pos, memory_order_seq_cst);
                seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
                cur = SB_GRP_SEQ(atomic_load_explicit(&grp->cursor, memory_order_seq_cst));
                if (hold != SB_POS_IDLE && hold != SB_POS_SEATING && seq == hold && cur > hold) {
                    if (sb_ack_return(grp, e, w, 0, reason)) {
                        n++;
                        break;
                    }
                } else if (!gone || pend_cas(e, w, pend_next(w, 0, 0, SB_PEND_FREE))) {
                    break; /* a live owner's reservation stays its own */
                }
            }
            /* The word changed under us (its owner moved): look again. */
            w = atomic_load_explicit(&e->word, memory_order_seq_cst);
        }
    }
    if (n > 0) {
        /* Members asleep take them now. */
        sb_wake_readers(seg->hdr, 0);
    }
    return n;
}
