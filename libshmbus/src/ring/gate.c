/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Gates. A reliable publisher may claim seq s only below
 * min(gates, tail read before its scan) + capacity (pub.c). It caches that
 * limit, so a reader that appears later must start where a publisher with an
 * older limit cannot write: at or above the minimum that publisher saw.
 * Settled gates only move forward, and the tail is above all of them, so
 * min(settled gates now, tail now) is such a place, provided the joiner
 * reads each gate after the publisher did. A scan is not one instant: a
 * publisher can read the joiner's slot before the joiner makes it a gate,
 * the joiner read slot j at v, and the publisher read slot j later, after
 * its reader moved past v: the publisher's minimum is then above the seat
 * and it overwrites what the joiner reads. So a joiner bumps the header's
 * joins (seq_cst) after its provisional gate is visible and before it
 * reads anything, and a publisher keeps a scan only if joins did not move
 * across it (pub.c): a joiner that bumped before the scan is seen gating,
 * one that bumps after reads every gate after the publisher did.
 * Provisional positions of other joiners and group members' holds are not
 * settled: they can lie below what a publisher saw, so a joiner ignores
 * them (SB_GATE_SETTLED) while publishers respect them (SB_GATE_ALL).
 * So are acknowledged groups' pending entries, which lie below their
 * group's cursor.
 *
 * Publishers read cursors, then slots, then pending tables: the order in
 * which a group's message moves from one gate to the next. A member
 * stores its hold, then moves the cursor; makes its entry HELD, then
 * drops the hold (ring/ack.c); every later move of the entry keeps it
 * gating until it is freed. Each move shows the next gate before it takes
 * the last one away, all seq_cst, so a scan that sees a gate gone sees
 * the one that replaced it, further along in its own order.
 */
#include "ring/gate.h"

#include <errno.h>

#include "ring/read.h"
#include "ring/ring.h"
#include "ring/wait.h"
#include "util/clock.h"
#include "util/fault.h"

/* Spin this long on a full reliable ring before sleeping. */
#define PUB_SPIN_NS 20000u
/* Gate scans a limit refresh makes while readers are seated across them. */
#define PUB_SCAN_TRIES 4u

static uint64_t groups_min(const struct sb_segment *seg, enum sb_gate_kind kind)
{
    uint64_t min = UINT64_MAX;

    for (uint32_t i = 0; i < seg->g.max_groups; i++) {
        /* seq_cst: pairs with the seq_cst cursor updates in group.c. */
        uint64_t w = atomic_load_explicit(&seg->groups[i].cursor, memory_order_seq_cst);
        if ((w & SB_GRP_MEMBERS) == 0)
            continue; /* a group without members holds nothing */
        if (kind == SB_GATE_SETTLED && (w & SB_GRP_SEATING))
            continue;
        if (SB_GRP_SEQ(w) < min)
            min = SB_GRP_SEQ(w);
    }
    return min;
}

/* The lowest seq an acknowledged group's pending entries gate (HELD,
 * RETURNED, DEAD), members or not. */
static uint64_t pending_min(const struct sb_segment *seg, uint64_t min)
{
    for (uint32_t g = 0; g < seg->g.max_groups; g++) {
        /* acquire: pairs with the daemon's release store, made before
         * the group's first member joined (a group without one has no
         * entry). */
        if (atomic_load_explicit(&seg->groups[g].max_deliveries, memory_order_acquire) == 0)
            continue;
        for (uint32_t i = 0; i < seg->g.ack_entries; i++) {
            const struct sb_shm_pending *e = sb_pending(seg, g, i);
            /* seq_cst: pairs with the seq_cst CAS that moved the entry
             * (ring/ack.c), after the slot loads above it. */
            uint32_t st = SB_PEND_ST(atomic_load_explicit(&e->word, memory_order_seq_cst));
            uint64_t s;
            if (st != SB_PEND_HELD && st != SB_PEND_RETURNED && st != SB_PEND_DEAD)
                continue;
            /* relaxed: stored while the entry was RESERVED, before the
             * CAS that made it HELD (or the hold that a daemon's CAS to
             * RETURNED followed), which the load above read or followed. */
            s = atomic_load_explicit(&e->seq, memory_order_relaxed);
            if (s < min)
                min = s;
        }
    }
    return min;
}

uint64_t sb_min_gate(const struct sb_segment *seg, const struct sb_shm_slot *self,
                     enum sb_gate_kind kind)
{
    /* Group cursors first, then slots, then pending tables: a member
     * stores its hold (seq_cst) before it advances the cursor past that
     * position (seq_cst), so if we see the advanced cursor we also see the
     * member's hold on the cell; see the top of the file. */
    uint64_t min = groups_min(seg, kind);

    for (uint32_t i = 0; i < seg->g.max_subs; i++) {
        const struct sb_shm_slot *s = &seg->slots[i];
        /* tests/test_join_race.c stops a publisher here, after slot 0. */
        if (kind == SB_GATE_ALL && i == 1)
            SB_FAULT_POINT("gate-scan-slot1");
        if (s == self)
            continue;
        /* seq_cst: pairs with the seq_cst state stores in sub.c; a slot
         * that turns JOINING after this load takes its start from a tail
         * it reads after that store (sb_seat()). */
        uint32_t st = atomic_load_explicit(&s->state, memory_order_seq_cst);
        if (kind == SB_GATE_SETTLED) {
            /* relaxed: group is written before the state is published. */
            if (st != SB_SLOT_ACTIVE || atomic_load_explicit(&s->group, memory_order_relaxed))
                continue;
        } else if (st != SB_SLOT_ACTIVE && st != SB_SLOT_JOINING) {
            continue;
        }
        /* seq_cst: pairs with the reader's seq_cst store of pos after it
         * consumed; what it read happens-before our overwrite. */
        uint64_t p = atomic_load_explicit(&s->pos, memory_order_seq_cst);
        if (p < min)
            min = p;
    }
    /* Last: a message leaves a member's hold for its group's table. */
    if (kind == SB_GATE_ALL && seg->g.ack_entries != 0)
        min = pending_min(seg, min);
    return min;
}

uint64_t sb_seat(const struct sb_segment *seg, const struct sb_shm_slot *self, uint32_t start,
                 uint64_t at_least)
{
    uint64_t t1, floor, o;

    /* seq_cst: after our provisional gate became visible, before every
     * load below; pairs with the publishers' seq_cst loads of joins
     * around their scans (sb_pub_refresh_limit(), top of the file). */
    atomic_fetch_add_explicit(&seg->hdr->joins, 1, memory_order_seq_cst);
    /* seq_cst: read after our provisional gate became visible, ordered
     * against the publishers' seq_cst gate loads and tail CAS (pub.c). */
    t1 = atomic_load_explicit(&seg->hdr->tail, memory_order_seq_cst);
    floor = sb_min_gate(seg, self, SB_GATE_SETTLED);
    o = sb_start_pos(start, t1, seg->g.capacity);

    if (floor > t1)
        floor = t1;
    if (o < floor)
        o = floor;
    return o > at_least ? o : at_least;
}

/* Recompute the private limit: a lap beyond the lowest gate, and never
 * beyond a lap past the tail @p s read (seq_cst) before the scan. A gate
 * read late in the scan can lie above a tail that a joiner we missed was
 * seated from; capping by s keeps every limit within a lap of such a seat
 * (gate.c). A scan across which a reader was seated may have read the
 * settled gates that reader seated on later than it did, and is dropped
 * (gate.c): we scan again, at most PUB_SCAN_TRIES times, and then keep
 * the last limit, which stays safe; the caller waits and comes back. */
uint64_t sb_pub_refresh_limit(shmbus_pub *p, uint64_t s)
{
    const struct sb_segment *seg = &p->topic->seg;
    _Atomic uint64_t *joins = &seg->hdr->joins;

    for (unsigned i = 0; i < PUB_SCAN_TRIES; i++) {
        /* seq_cst, both: pair with the seq_cst bump in sb_seat(), which a
         * joiner makes after its provisional gate and before its reads. */
        uint64_t j = atomic_load_explicit(joins, memory_order_seq_cst);
        uint64_t gate = sb_min_gate(seg, NULL, SB_GATE_ALL);

        if (atomic_load_explicit(joins, memory_order_seq_cst) == j) {
            p->limit = (gate < s ? gate : s) + seg->g.capacity;
            break;
        }
    }
    return p->limit;
}

/* Sleep until a subscriber releases cells or the deadline passes. */
static int space_sleep(shmbus_pub *p, uint64_t s, uint64_t deadline)
{
    struct sb_shm_header *h = p->topic->seg.hdr;
    uint32_t v;
    int rc = 0;

    /* seq_cst: Dekker pair with sb_wake_publishers(): we count ourselves,
     * then re-check the gates; a subscriber stores its position, then
     * reads the count. One of us sees the other. */
    atomic_fetch_add_explicit(&h->space_waiters, 1, memory_order_seq_cst);
    /* relaxed: read by the daemon once we are dead (admin_claim.c), as a
     * sleeping subscriber's slot (wait.c sleeper_in()). */
    atomic_store_explicit(&p->rec->sleep, 1, memory_order_relaxed);
    v = atomic_load_explicit(&h->space_futex, memory_order_seq_cst);
    /* A bounded sleep: a wake-up that never comes (its subscriber died
     * between moving and waking) costs at most one slice. */
    if (deadline > sb_mono_ns() + SB_WAIT_SLICE_NS)
        deadline = sb_mono_ns() + SB_WAIT_SLICE_NS;
    /* seq_cst: the flag after the futex word, as the daemon stores them
     * in the other order (admin.c sb_admin_topic_gone()). */
    if (s >= sb_pub_refresh_limit(p, s) && !sb_topic_gone(&p->topic->seg, memory_order_seq_cst))
        rc = sb_futex_wait(&h->space_futex, v, deadline);
    /* relaxed, then release: cleared before we leave the count, as in
     * wait.c sleeper_out(). A stale count costs a subscriber one wake. */
    atomic_store_explicit(&p->rec->sleep, 0, memory_order_relaxed);
    atomic_fetch_sub_explicit(&h->space_waiters, 1, memory_order_release);
    return rc == -ETIMEDOUT ? 0 : rc;
}

/* Wait for space below the limit: spin briefly, then sleep. Called while
 * the ring is full; the caller re-checks and calls again until the
 * deadline passes. */
int sb_pub_wait_space(shmbus_pub *p, uint64_t *s, int64_t timeout_ns, uint64_t *deadline)
{
    _Atomic uint64_t *tail = &p->topic->seg.hdr->tail;
    uint64_t now, spin_end;

    if (timeout_ns == 0)
        return -EAGAIN;
    /* seq_cst: read after the last sleep's wake-up, which the daemon sends
     * after storing the flag (seq_cst). */
    if (sb_topic_gone(&p->topic->seg, memory_order_seq_cst))
        return SHMBUS_ERR_TOPIC_GONE;
    now = sb_mono_ns();
    if (*deadline == 0)
        *deadline = timeout_ns < 0 ? UINT64_MAX : now + (uint64_t)timeout_ns;
    if (now >= *deadline)
        return SHMBUS_ERR_TIMEOUT;
    spin_end = now + PUB_SPIN_NS < *deadline ? now + PUB_SPIN_NS : *deadline;
    while (*s >= sb_pub_refresh_limit(p, *s) && sb_mono_ns() < spin_end)
        sb_cpu_relax();
    if (*s >= p->limit) {
        int rc = space_sleep(p, *s, *deadline);
        if (rc < 0)
            return rc;
    }
    /* seq_cst: it may feed sb_pub_refresh_limit(), which with no gate uses it
     * as the limit's base: it must not be read after the gate loads. */
    *s = atomic_load_explicit(tail, memory_order_seq_cst);
    return 0;
}
