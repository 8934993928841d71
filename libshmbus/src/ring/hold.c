/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Held subscribers and kept slots (hold.h). A held subscriber reads at its
 * private position (sub->pos) as any plain one; sub.c leaves its slot's
 * pos alone after a poll, and only sb_sub_release() moves it, forward,
 * within what was read. Publishers see nothing new: a gate that moves
 * later than the reads. A kept slot is adopted by a CAS on its kept word
 * (layout.h), then written in as the adopter's, as sub.c's join does.
 */
#include "ring/hold.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "ring/ring.h"
#include "ring/wait.h"
#include "util/fork.h"
#include "util/proc.h"

/* A held subscriber of the calling process, not inherited through fork(). */
static int hold_ours(const shmbus_sub *sub)
{
    return sub != NULL && sub->held && sub->gen == sb_fork_gen();
}

int sb_sub_hold(shmbus_sub *sub)
{
    /* A group member's gate is its group's cursor; an observer (or any
     * reader of a lossy topic) gates nothing: neither has a gate to hold. */
    if (sub == NULL || sub->gen != sb_fork_gen() || sub->group != NULL || sub->copy_read)
        return SHMBUS_ERR_INVALID;
    if (sub->held)
        return 0;
    /* After every poll, and at the join, the slot's pos is sub->pos
     * (sub.c sub_publish_pos()): the gate starts where it stands. */
    sub->held_pos = sub->pos;
    sub->held = 1;
    return 0;
}

uint64_t sb_sub_held(const shmbus_sub *sub)
{
    if (sub == NULL)
        return 0;
    return sub->held ? sub->held_pos : sub->pos;
}

int sb_sub_release(shmbus_sub *sub, uint64_t seq)
{
    if (!hold_ours(sub) || seq < sub->held_pos || seq > sub->pos)
        return SHMBUS_ERR_INVALID; /* a gate only grows, and only over what was read */
    /* relaxed: a flag; an eviction a moment ago is reported by the next
     * poll, and a pos stored in an evicted slot gates nothing. */
    if (sb_sub_evicted(sub, memory_order_relaxed))
        return SHMBUS_ERR_EVICTED;
    if (seq == sub->held_pos)
        return 0;
    sub->held_pos = seq;
    /* seq_cst: its release half publishes that we are done with the cells
     * below seq (read, and whatever the caller did with them in place):
     * a publisher whose seq_cst gate load (gate.c sb_min_gate()) sees the
     * new pos may reuse them. seq_cst also makes it our half of the
     * Dekker pair with a publisher asleep on a full ring (gate.c
     * space_sleep()), as sub.c sub_publish_pos(). */
    atomic_store_explicit(&sub->slot->pos, seq, memory_order_seq_cst);
    sb_wake_publishers(sub->topic->seg.hdr);
    return 0;
}

int sb_sub_rewind(shmbus_sub *sub, uint64_t seq)
{
    /* Below the held position the cells may be reused already; above the
     * read position there is nothing read to go back to. */
    if (!hold_ours(sub) || seq < sub->held_pos || seq > sub->pos)
        return SHMBUS_ERR_INVALID;
    sub->pos = seq;
    return 0;
}

int sb_sub_keep(shmbus_sub *sub)
{
    if (!hold_ours(sub))
        return SHMBUS_ERR_INVALID; /* a slot that moves with the reads has no place to resume */
    /* release: pairs with an adopter's acquire CAS (adopt_claim()); the
     * positions we stored before come with the mark. */
    atomic_store_explicit(&sub->slot->kept, SB_KEEP_KEPT, memory_order_release);
    return 0;
}

/* Is the process @p pid (started at @p start; 0: unknown) gone? One that
 * cannot be told about counts as alive: its slot is left for a later
 * look rather than taken from a live owner. */
static int owner_gone(uint32_t pid, uint64_t start)
{
    uint64_t now;
    int rc;

    if (pid == 0)
        return 0; /* not written yet: the slot is being set up */
    rc = sb_proc_start_get((pid_t)pid, &now);
    if (rc < 0)
        return 0;
    return rc == 0 || (start != 0 && now != start);
}

/* The owner of slot @p s as it stands. */
static void slot_owner(const struct sb_shm_slot *s, uint32_t *pid, uint64_t *start)
{
    /* acquire: the owner stores start, then pid with release (sub.c
     * sub_join(), adopt_take()). */
    *pid = atomic_load_explicit(&s->pid, memory_order_acquire);
    /* relaxed: ordered by the acquire load of the pid. */
    *start = atomic_load_explicit(&s->start, memory_order_relaxed);
}

/* Claim kept slot @p s for process @p self if whoever it waits for is
 * gone. @return 1 claimed (kept word ADOPTING | self), 0 not. */
static int adopt_claim(struct sb_shm_slot *s, uint32_t self)
{
    /* acquire: pairs with the owner's release store of KEPT (or an
     * adopter's); the slot's other fields are visible. */
    uint32_t k = atomic_load_explicit(&s->kept, memory_order_acquire), pid, pid2;
    uint64_t start, start2;

    if (k == SB_KEEP_NONE)
        return 0;
    /* acquire: as above. relaxed: the group is written before the state
     * is published. A kept slot is an ACTIVE plain subscriber's. */
    if (atomic_load_explicit(&s->state, memory_order_acquire) != SB_SLOT_ACTIVE ||
        atomic_load_explicit(&s->group, memory_order_relaxed) != 0)
        return 0;
    slot_owner(s, &pid, &start);
    if (k == SB_KEEP_KEPT ? !owner_gone(pid, start) : !owner_gone(SB_KEEP_PID(k), 0))
        return 0; /* a live owner's slot is never taken, nor one being adopted */
    /* acq_rel: acquire as above; release, for the word other adopters
     * judge by. Of two adopters that both saw k, one CAS wins. */
    if (!atomic_compare_exchange_strong_explicit(&s->kept, &k, SB_KEEP_ADOPTING | self,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return 0;
    if (k != SB_KEEP_KEPT)
        return 1;
    /* KEPT again since we judged it: another adopter may have taken it
     * over and stored KEPT back in between (an ABA our CAS cannot see).
     * Then the owner changed: give the word back, untouched otherwise. */
    slot_owner(s, &pid2, &start2);
    if (pid2 == pid && start2 == start)
        return 1;
    /* That owner is alive and may meanwhile have freed the slot (kept
     * NONE) for a subscriber that keeps nothing to take: a CAS from our
     * own word, so that a stale KEPT never lands on that one's slot
     * (docs/model/reap.pml part 3). release: as sb_sub_keep(). */
    k = SB_KEEP_ADOPTING | self;
    atomic_compare_exchange_strong_explicit(&s->kept, &k, SB_KEEP_KEPT, memory_order_release,
                                            memory_order_relaxed);
    return 0;
}

/* Write the claimed slot @p s in as @p sub's (held at its pos, kept). */
static void adopt_take(shmbus_sub *sub, struct sb_shm_slot *s)
{
    struct sb_shm_header *h = sub->topic->seg.hdr;

    sub->slot = s;
    /* relaxed: the old owner is gone; its stores are visible through the
     * acquire loads of adopt_claim(). Only the owner writes pos. */
    sub->pos = atomic_load_explicit(&s->pos, memory_order_relaxed);
    sub->held_pos = sub->pos;
    sub->held = 1;
    sub->received = atomic_load_explicit(&s->received, memory_order_relaxed);
    sub->lost = atomic_load_explicit(&s->lost, memory_order_relaxed);
    /* The last owner may have died asleep on the topic. */
    sb_wait_sleeper_take_back(&h->data_waiters, &s->sleep);
    /* relaxed, then release: the daemon reads pid (acquire) before start
     * (sub.c sub_join()). */
    atomic_store_explicit(&s->start, sb_proc_self_start(), memory_order_relaxed);
    atomic_store_explicit(&s->pid, sub->pid, memory_order_release);
    /* release: as sb_sub_keep(): the slot is ours and kept. */
    atomic_store_explicit(&s->kept, SB_KEEP_KEPT, memory_order_release);
}

int sb_sub_adopt(shmbus_topic *t, shmbus_sub **out)
{
    shmbus_sub_opts o = {.start = SHMBUS_START_NEXT};
    const struct sb_segment *seg;
    shmbus_sub *sub;

    if (out == NULL)
        return SHMBUS_ERR_INVALID;
    *out = NULL;
    /* A topic opened through the daemon has its slots handed out by the
     * daemon, which would not know of one taken so. */
    if (t == NULL || t->reg != NULL || t->seg.g.mode != SHMBUS_RELIABLE)
        return SHMBUS_ERR_INVALID;
    seg = &t->seg;
    sub = sb_sub_alloc(t, &o);
    if (sub == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < seg->g.max_subs; i++) {
        if (!adopt_claim(&seg->slots[i], sub->pid))
            continue;
        adopt_take(sub, &seg->slots[i]);
        *out = sub;
        return 0;
    }
    free(sub);
    return -ENOENT;
}
