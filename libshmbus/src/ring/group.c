/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Consumer groups. Members take the message at the shared cursor with a
 * CAS that moves the cursor by one, so each message goes to exactly one
 * member. The cursor word also holds the member count and a SEATING flag
 * (layout.h), so that joining, leaving and taking are each one CAS and
 * cannot interleave badly: the last member out and a new member in agree
 * on whether the group is empty.
 *
 * In a reliable topic a member first stores the seq it is about to take in
 * its slot (a hold, seq_cst) and only then moves the cursor; publishers
 * read cursors before slots (gate.c), so a publisher that sees the moved
 * cursor also sees the hold. The hold is dropped after the callback. A
 * lossy member stores its hold too (relaxed, gating nothing), so that the
 * daemon can count a message whose member died in the callback.
 *
 * The first member of an empty group seats the cursor: one CAS puts a
 * provisional position there with SEATING set (publishers respect it at
 * once, members wait), then the member computes a safe start (sb_seat())
 * and moves the cursor forward to it, clearing SEATING. The cursor never
 * moves back: a refilled group never hands out a message twice.
 */
#include "ring/group.h"

#include "ring/ack.h"
#include "ring/gate.h"

static _Atomic uint64_t *group_word(const shmbus_sub *sub)
{
    return &sub->group->cursor;
}

uint64_t sb_group_pos(const shmbus_sub *sub, memory_order order)
{
    /* @p order: the caller's (acquire or seq_cst for readiness, relaxed
     * for statistics; see sub.c). */
    uint64_t w = atomic_load_explicit(group_word(sub), order);

    return (w & SB_GRP_SEATING) ? UINT64_MAX : SB_GRP_SEQ(w);
}

void sb_group_seat_finish(const struct sb_segment *seg, struct sb_shm_group *grp,
                          const struct sb_shm_slot *self, uint32_t start, uint64_t prov)
{
    uint64_t o, t0, w;

    if (seg->g.mode == SHMBUS_RELIABLE) {
        o = sb_seat(seg, self, start, prov);
    } else {
        /* relaxed: lossy readers gate nothing; any recent tail will do. */
        t0 = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
        o = sb_start_pos(start, t0, seg->g.capacity);
        o = o > prov ? o : prov;
    }
    /* Only member counts change while SEATING (takes wait for it).
     * seq_cst: as every cursor access. */
    w = atomic_load_explicit(&grp->cursor, memory_order_seq_cst);
    while ((w & SB_GRP_SEATING) && !atomic_compare_exchange_weak_explicit(
                                       &grp->cursor, &w, SB_GRP_WORD(o, w & SB_GRP_MEMBERS),
                                       memory_order_seq_cst, memory_order_seq_cst))
        ;
    /* The gate moved forward (publishers may sleep on it), and members that
     * joined while we seated may sleep on messages now theirs to take. */
    sb_wake_publishers(seg->hdr);
    sb_wake_readers(seg->hdr, 0);
}

/* Seat the cursor of an empty group whose word was @p w. @return 0, or -1
 * if the CAS lost to another member (retry). The slot's pos says SEATING
 * meanwhile, so that the daemon can finish the seat if we die in it. */
static int group_seat(shmbus_sub *sub, uint64_t w)
{
    const struct sb_segment *seg = &sub->topic->seg;
    uint64_t old = SB_GRP_SEQ(w), prov, t0;

    /* seq_cst: the provisional position must come from a tail read before
     * the CAS below makes it a gate (see gate.c). */
    t0 = atomic_load_explicit(&seg->hdr->tail, memory_order_seq_cst);
    prov = sb_start_pos(sub->start, t0, seg->g.capacity);
    prov = prov > old ? prov : old;
    /* relaxed: read by the daemon only once we are dead; a marker far above
     * any seq, so publishers reading it as a hold are not held back. */
    atomic_store_explicit(&sub->slot->pos, SB_POS_SEATING, memory_order_relaxed);
    /* seq_cst: as every cursor update; it makes the group a gate again. */
    if (!atomic_compare_exchange_strong_explicit(group_word(sub), &w,
                                                 SB_GRP_WORD(prov, SB_GRP_SEATING | 1u),
                                                 memory_order_seq_cst, memory_order_relaxed)) {
        atomic_store_explicit(&sub->slot->pos, SB_POS_IDLE, memory_order_relaxed);
        return -1;
    }
    sb_group_seat_finish(seg, sub->group, sub->slot, sub->start, prov);
    /* relaxed: as above. */
    atomic_store_explicit(&sub->slot->pos, SB_POS_IDLE, memory_order_relaxed);
    return 0;
}

/* Our +1 is in the count: say so for the daemon (layout.h counted).
 * seq_cst: after our CAS; the daemon reads it after its own CAS on our
 * slot's state. Dying or being evicted between the two leaves one count
 * the reconcile takes out once the group has no member slot left. */
static void group_counted(shmbus_sub *sub)
{
    atomic_store_explicit(&sub->slot->counted, 1, memory_order_seq_cst);
}

void sb_group_join(shmbus_sub *sub)
{
    /* seq_cst: read after our slot became visible; as every cursor access. */
    uint64_t w = atomic_load_explicit(group_word(sub), memory_order_seq_cst);

    for (;;) {
        if ((w & SB_GRP_MEMBERS) == 0) {
            if (group_seat(sub, w) == 0) {
                group_counted(sub);
                return;
            }
            w = atomic_load_explicit(group_word(sub), memory_order_seq_cst);
            continue;
        }
        /* seq_cst: as every cursor update. */
        if (atomic_compare_exchange_weak_explicit(group_word(sub), &w, w + 1, memory_order_seq_cst,
                                                  memory_order_relaxed)) {
            group_counted(sub);
            return;
        }
    }
}

void sb_group_uncount(struct sb_shm_group *grp)
{
    /* seq_cst: as every cursor update; at zero members the group stops
     * gating in the same step. */
    uint64_t w = atomic_load_explicit(&grp->cursor, memory_order_seq_cst);

    /* Never below zero: a count the daemon's reconcile reset under us
     * (admin.c) would otherwise borrow from the cursor's seq. */
    while ((w & SB_GRP_MEMBERS) != 0 &&
           !atomic_compare_exchange_weak_explicit(&grp->cursor, &w, w - 1, memory_order_seq_cst,
                                                  memory_order_seq_cst))
        ;
}

void sb_group_leave(shmbus_sub *sub)
{
    sb_group_uncount(sub->group);
    sb_wake_publishers(sub->topic->seg.hdr);
}

/* Move the cursor word @p w over messages nobody will get, to seq @p to.
 * @return 1 if we moved it (and account the loss), 0 if another did. */
static int group_skip(shmbus_sub *sub, uint64_t w, uint64_t to)
{
    uint64_t from = SB_GRP_SEQ(w);

    /* seq_cst: as every cursor update. */
    if (!atomic_compare_exchange_strong_explicit(group_word(sub), &w,
                                                 SB_GRP_WORD(to, w & SB_GRP_LOW),
                                                 memory_order_seq_cst, memory_order_relaxed))
        return 0;
    sb_sub_count_lost(sub, to - from);
    /* relaxed: statistics only. */
    atomic_fetch_add_explicit(&sub->group->lost, to - from, memory_order_relaxed);
    sb_wake_publishers(sub->topic->seg.hdr);
    return 1;
}

void sb_group_hold(shmbus_sub *sub, uint64_t seq)
{
    if (sub->topic->seg.g.mode != SHMBUS_RELIABLE) {
        /* relaxed: lossy holds gate nothing; the daemon reads them only
         * once we are dead, to count a message we died holding. */
        atomic_store_explicit(&sub->slot->pos, seq, memory_order_relaxed);
        return;
    }
    /* seq_cst: a hold is a gate publishers must see before the cursor
     * moves past it; dropping it is our half of the Dekker pair with a
     * publisher sleeping on a full ring. */
    atomic_store_explicit(&sub->slot->pos, seq, memory_order_seq_cst);
    if (seq == SB_POS_IDLE)
        sb_wake_publishers(sub->topic->seg.hdr);
}

/* A member of a reliable group took a message and finds itself evicted
 * (@p after_reads: the callback has read it in place): the message is
 * lost to the group. Counted once, here; the daemon counts only what
 * members that die holding a message took (admin.c). @return 1 if so. */
static int group_abandon_if_evicted(shmbus_sub *sub, int after_reads)
{
    struct sb_shm_header *h = sub->topic->seg.hdr;

    if (sub->copy_read)
        return 0; /* lossy groups gate nothing and are never evicted */
    /* relaxed: a flag; after the reads, ordered by the fence inside. */
    if (!(after_reads ? sb_sub_evicted_after_reads(sub)
                      : sb_sub_evicted(sub, memory_order_relaxed)))
        return 0;
    /* relaxed: statistics only. */
    atomic_fetch_add_explicit(&h->abandoned, 1, memory_order_relaxed);
    sb_sub_count_lost(sub, 1);
    sb_group_hold(sub, SB_POS_IDLE);
    return 1;
}

int sb_group_claim(shmbus_sub *sub, uint64_t w, uint64_t v)
{
    sb_group_hold(sub, SB_GRP_SEQ(w));
    /* seq_cst: as every cursor update; fails if a member took it, or one
     * joined or left (then we look again). */
    if (!atomic_compare_exchange_strong_explicit(group_word(sub), &w,
                                                 w + (1ull << SB_GRP_SEQ_SHIFT),
                                                 memory_order_seq_cst, memory_order_relaxed)) {
        sb_group_hold(sub, SB_POS_IDLE);
        return 0;
    }
    if (SB_STAMP_ST(v) == SB_ST_SKIPPED) {
        sb_group_hold(sub, SB_POS_IDLE);
        sb_sub_count_lost(sub, 1);
        return 0;
    }
    return 1;
}

/* Take the message at cursor word @p w, whose cell shows @p v. */
static int group_take(shmbus_sub *sub, const struct sb_shm_cell *cell, uint64_t v, uint64_t w,
                      sb_deliver_fn fn, void *arg)
{
    uint64_t c = SB_GRP_SEQ(w);
    shmbus_msg msg;
    int rc;

    if (!sb_group_claim(sub, w, v))
        return SB_STEP_MOVED;
    rc = sb_cell_read(sub, cell, v, c, &msg, sub->copy_read);
    if (rc != 0) {
        sb_group_hold(sub, SB_POS_IDLE);
        sb_sub_count_lost(sub, 1);
        return rc == 1 ? SB_STEP_MOVED : rc;
    }
    /* Evicted before the message was handed over (our hold may not have
     * been respected), or while the callback read it in place. */
    if (group_abandon_if_evicted(sub, 0))
        return SHMBUS_ERR_EVICTED;
    rc = fn(&msg, arg);
    if (group_abandon_if_evicted(sub, 1))
        return SHMBUS_ERR_EVICTED;
    sb_group_hold(sub, SB_POS_IDLE);
    return sb_sub_delivered(sub, rc);
}

int sb_group_cursor_step(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap)
{
    const struct sb_segment *seg = &sub->topic->seg;
    /* acquire: pairs with the seq_cst cursor updates of other members. */
    uint64_t w = atomic_load_explicit(group_word(sub), memory_order_acquire);
    const struct sb_shm_cell *cell;
    uint64_t c, v;
    int rc;

    if (w & SB_GRP_SEATING)
        return SB_STEP_NONE; /* the first member is placing the cursor */
    c = SB_GRP_SEQ(w);
    cell = sb_cell(seg, c);
    /* acquire: pairs with the commit CAS in pub.c cell_finish(). */
    v = atomic_load_explicit(&cell->stamp, memory_order_acquire);
    switch (sb_cell_classify(v, c, seg->g.mask)) {
    case SB_CELL_NOT_YET:
        return SB_STEP_NONE;
    /* Our cursor value may be stale: another member may have moved the
     * cursor and a publisher reused the cell since. Only the member whose
     * CAS moves the cursor over the cell reports it. */
    case SB_CELL_CORRUPT:
        return group_skip(sub, w, c + 1) ? SHMBUS_ERR_CORRUPT : SB_STEP_MOVED;
    case SB_CELL_LAPPED:
        if (!group_skip(sub, w, sb_lap_target(seg, c)))
            return SB_STEP_MOVED;
        return seg->g.mode == SHMBUS_RELIABLE ? SHMBUS_ERR_CORRUPT : SB_STEP_MOVED;
    case SB_CELL_READY:
        rc = sb_cell_fits(sub, cell, v, cap, sub->copy_read);
        if (rc == 0)
            break;
        /* A stale cursor: the message went to another member, and its
         * length may be the next lap's. Only report what is still ours. */
        if (rc == 1 || !sb_word_unchanged(group_word(sub), w))
            return SB_STEP_MOVED;
        return rc;
    case SB_CELL_SKIPPED:
        break;
    }
    if (sub->ack != NULL)
        return sb_ack_take(sub, cell, v, w, fn, arg);
    return group_take(sub, cell, v, w, fn, arg);
}

int sb_group_step(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap)
{
    if (sub->ack != NULL)
        return sb_ack_step(sub, fn, arg, cap); /* redeliveries first, then the cursor */
    return sb_group_cursor_step(sub, fn, arg, cap);
}
