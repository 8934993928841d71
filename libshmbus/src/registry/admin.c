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
