/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Waiting. A waiter spins on its cells for a bounded time (a futex wake-up
 * costs microseconds; a spin sees a message within a cache-line transfer),
 * then sleeps: it counts itself in each topic's data_waiters, reads each
 * topic's futex word, checks once more, and sleeps on all words at once.
 * Publishers wake only when data_waiters is non-zero (ring.h), so a topic
 * nobody sleeps on costs its publishers no system call; only once until a
 * sleeper runs again (data_pending), so a burst costs one; and they wake
 * only one sleeper, which wakes the others, so that fan-out to many
 * sleeping subscribers does not slow a publisher. A wait set is the same over many
 * subscribers, with futex_waitv.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "ring/ack.h"
#include "ring/merge.h"
#include "ring/read.h"
#include "ring/ring.h"
#include "ring/wait.h"
#include "util/clock.h"

struct shmbus_waitset {
    shmbus_sub *subs[SHMBUS_WAITSET_MAX];
    unsigned n;
};

static int any_ready(shmbus_sub *const *subs, unsigned n, memory_order order)
{
    for (unsigned i = 0; i < n; i++)
        if (sb_sub_ready_order(subs[i], order) != 0)
            return 1;
    return 0;
}

/* The spin a subscriber asked for: 0 = default, < 0 = none. */
static int64_t spin_of(const shmbus_sub *s)
{
    if (s->spin_ns == 0)
        return SHMBUS_SPIN_DEFAULT_NS;
    return s->spin_ns < 0 ? 0 : s->spin_ns;
}

static int64_t spin_budget(shmbus_sub *const *subs, unsigned n)
{
    int64_t min = INT64_MAX;

    for (unsigned i = 0; i < n; i++) {
        int64_t s = spin_of(subs[i]);
        if (s < min)
            min = s;
    }
    return min;
}

/* A publisher wakes one sleeper per topic (ring.h); the woken one wakes the
 * rest, once per publish: the first to move data_bcast to the futex value
 * it woke on does the broadcast. */
static void wake_delegate(struct sb_shm_header *h, uint32_t weight)
{
    /* relaxed, all three: the broadcast is only a wake-up; what a woken
     * sleeper then reads is ordered by the cells' stamps, and a sleeper
     * that missed it wakes at its slice end (SB_WAIT_SLICE_NS). */
    uint32_t now = atomic_load_explicit(&h->data_futex, memory_order_relaxed);
    uint32_t done = atomic_load_explicit(&h->data_bcast, memory_order_relaxed);

    /* Already relayed for this value. (Even if the value did not change
     * while we slept we may be the one a wake-up chose: a sleeper that
     * queued after the publisher bumped the word can be woken first.) */
    if (done == now)
        return;
    /* We still count ourselves (@p weight): nobody else sleeps. */
    if (atomic_load_explicit(&h->data_waiters, memory_order_relaxed) <= weight)
        return;
    /* EAGER: the counted sleepers; lazy ones look at their bound. */
    if (atomic_compare_exchange_strong_explicit(&h->data_bcast, &done, now, memory_order_relaxed,
                                                memory_order_relaxed))
        sb_futex_wake_bits(&h->data_futex, INT_MAX, SB_FUTEX_EAGER);
}

/*
 * We run: let the next publish wake us again (ring.h sb_wake_readers()).
 * After reading the futex word, before the re-check: a publisher that
 * then still reads the 1 committed before our re-check, which sees its
 * cell; one that sets it after wakes us, as our futex value is stale by
 * then. Cleared before reading the futex word instead, a wake-up could be
 * lost (docs/model/wakeup.pml PENDING_CLEAR_FIRST). A load that reads 0
 * does as well as a store of 0: the last store before it was a 0.
 */
static void pending_clear(struct sb_shm_header *h)
{
    /* seq_cst, both: in the total order with the futex load before and
     * the re-check after, and with the publisher's commit and CAS. The
     * load spares the line's ownership when nobody set it. */
    if (atomic_load_explicit(&h->data_pending, memory_order_seq_cst) != 0)
        atomic_store_explicit(&h->data_pending, 0, memory_order_seq_cst);
}

/* Count ourselves with @p weight among topic @p h's sleepers, and say so
 * in our slot @p s (unless NULL): if we die asleep, the daemon takes the
 * weight back out of the count (admin.c). */
static void sleeper_in(struct sb_shm_header *h, struct sb_shm_slot *s, uint32_t weight)
{
    /* seq_cst: Dekker pair with sb_wake_readers(): we count ourselves,
     * then re-check the cells (seq_cst, sleep_on()); a publisher commits
     * (seq_cst), then reads the count. */
    atomic_fetch_add_explicit(&h->data_waiters, weight, memory_order_seq_cst);
    /* relaxed: read by the daemon only once we are dead, when every store
     * we made is visible; the RMW above is not reordered after it
     * (acquire half). Dying between the two leaks the weight. */
    if (s != NULL)
        atomic_store_explicit(&s->sleep, weight, memory_order_relaxed);
}

static void sleeper_out(struct sb_shm_header *h, struct sb_shm_slot *s, uint32_t weight)
{
    /* relaxed: as in sleeper_in(); cleared first, so that a death between
     * the two leaks the weight rather than have the daemon take it twice. */
    if (s != NULL)
        atomic_store_explicit(&s->sleep, 0, memory_order_relaxed);
    /* release: keeps the clear above before it. A stale count costs a
     * publisher one spurious wake. */
    atomic_fetch_sub_explicit(&h->data_waiters, weight, memory_order_release);
}

/* Sleep on the topics @p topics, the first @p counted of them counted
 * with @p weight (and named in @p slots, unless NULL), the others (lazy
 * subscribers') only watched, until @p ready (called with seq_cst, after
 * we count ourselves as sleepers) says something is there, a wake-up, the
 * slice end, @p wake_at (a nacked message falls due: ring/ack.c; a lazy
 * subscriber's bound), or (unless NULL) @p bell moving from @p seen. */
static int sleep_on(shmbus_topic *const *topics, struct sb_shm_slot *const *slots, unsigned n,
                    unsigned counted, uint32_t weight, sb_ready_fn ready, void *arg,
                    uint64_t deadline, uint64_t wake_at, _Atomic uint32_t *bell, uint32_t seen)
{
    _Atomic uint32_t *words[SHMBUS_WAITSET_MAX + 1] = {0};
    uint32_t vals[SHMBUS_WAITSET_MAX + 1] = {0};
    uint64_t slice_end = sb_mono_ns() + SB_WAIT_SLICE_NS;
    unsigned nw = n;
    int rc = 0;

    for (unsigned i = 0; i < n; i++) {
        if (i < counted)
            sleeper_in(topics[i]->seg.hdr, slots != NULL ? slots[i] : NULL, weight);
        /* Watched too when uncounted: the daemon's wake-ups (topic gone,
         * eviction) and a woken sleeper's relay still reach us. */
        words[i] = &topics[i]->seg.hdr->data_futex;
    }
    /* seq_cst: read before the re-check; a wake after this changes it and
     * the futex call returns at once. */
    for (unsigned i = 0; i < n; i++)
        vals[i] = atomic_load_explicit(words[i], memory_order_seq_cst);
    for (unsigned i = 0; i < counted; i++)
        pending_clear(topics[i]->seg.hdr);
    if (bell != NULL) {
        words[nw] = bell;
        vals[nw++] = seen;
    }
    if (slice_end > deadline)
        slice_end = deadline;
    if (slice_end > wake_at && wake_at < deadline)
        slice_end = wake_at;
    if (!ready(arg, memory_order_seq_cst)) {
        if (nw == 1)
            rc = sb_futex_wait_bits(words[0], vals[0], slice_end,
                                    counted < n ? SB_FUTEX_LAZY : SB_FUTEX_ANY);
        else
            rc = sb_futex_waitv(words, vals, nw, slice_end);
    }
    /* A lazy topic's word in a futex_waitv is woken by anyone (ANY): a
     * publisher's one wake-up may have chosen us; pass it on (weight 0:
     * we are not counted). Not after a timeout (nobody chose us), nor
     * alone (SB_FUTEX_LAZY: no publisher can). */
    for (unsigned i = counted; rc == 0 && nw > 1 && i < n; i++)
        wake_delegate(topics[i]->seg.hdr, 0);
    for (unsigned i = 0; i < counted; i++) {
        wake_delegate(topics[i]->seg.hdr, weight);
        sleeper_out(topics[i]->seg.hdr, slots != NULL ? slots[i] : NULL, weight);
    }
    /* The end of a slice is not the caller's timeout: it re-checks. */
    if (rc == -ETIMEDOUT)
        return slice_end == deadline ? SHMBUS_ERR_TIMEOUT : 0;
    return rc < 0 ? rc : 0;
}

struct subs_arg {
    shmbus_sub *const *subs;
    unsigned n;
};

static int subs_ready(void *arg, memory_order order)
{
    const struct subs_arg *a = arg;

    return any_ready(a->subs, a->n, order);
}

/*
 * A lazy subscriber (wake_bound_ns > 0) is not counted among the sleepers,
 * so no publisher wakes it; it sleeps at most its bound. In a wait set
 * with both kinds, the others are counted as usual: a publish to one of
 * theirs wakes the set, one to a lazy one's topic is seen within the
 * shortest lazy bound.
 */
static int wait_sleep(shmbus_sub *const *subs, unsigned n, uint64_t deadline)
{
    shmbus_topic *topics[SHMBUS_WAITSET_MAX];
    struct sb_shm_slot *slots[SHMBUS_WAITSET_MAX];
    struct subs_arg a = {subs, n};
    uint64_t wake_at = UINT64_MAX, bound = UINT64_MAX;
    unsigned counted = 0, lazy = n;

    for (unsigned i = 0; i < n; i++) {
        /* Counted ones first, lazy ones from the end. */
        unsigned k = subs[i]->wake_bound_ns != 0 ? --lazy : counted++;

        topics[k] = subs[i]->topic;
        slots[k] = subs[i]->slot;
        if (subs[i]->wake_bound_ns != 0 && subs[i]->wake_bound_ns < bound)
            bound = subs[i]->wake_bound_ns;
        if (subs[i]->ack != NULL) {
            uint64_t at = sb_ack_wake_at(subs[i]);
            wake_at = at < wake_at ? at : wake_at;
        }
        if (subs[i]->merge != NULL) {
            uint64_t at = sb_merge_wake_at(subs[i]);
            wake_at = at < wake_at ? at : wake_at;
        }
    }
    if (bound != UINT64_MAX) {
        uint64_t at = sb_mono_ns() + bound;
        wake_at = at < wake_at ? at : wake_at;
    }
    return sleep_on(topics, slots, n, counted, 1, subs_ready, &a, deadline, wake_at, NULL, 0);
}

int sb_wait_topics(shmbus_topic *const *topics, unsigned n, uint32_t weight, sb_ready_fn ready,
                   void *arg, uint64_t deadline, _Atomic uint32_t *bell, uint32_t seen)
{
    if (sb_mono_ns() >= deadline)
        return SHMBUS_ERR_TIMEOUT;
    /* No slots named: a relay's weight (registry/relay.h) left by a daemon
     * that died is taken out by the next one when it adopts the segment
     * (admin.h sb_admin_waiters_settle()). */
    return sleep_on(topics, NULL, n, n, weight, ready, arg, deadline, UINT64_MAX, bell, seen);
}

/* Turns of a spin between looks at the clock (~20 ns a call) and, for a
 * lone plain subscriber, at its rare states. */
#define SPIN_LOOK_EVERY 64u

/*
 * Spin until something is ready or the clock passes @p spin_end (the time
 * seen last goes to @p now). A lone plain subscriber (no group, no
 * journal) spins on its next cell's stamp alone, classifying it only when
 * it changes, and looks at the rest of sb_sub_ready_order() (an error to
 * report, the topic gone, an eviction) with the clock: those are flags
 * that a spin sees SPIN_LOOK_EVERY turns later at worst (~1 us), as it
 * sees the end of its spin time. @return 1 ready, 0 spin over.
 */
static int spin_until(shmbus_sub *const *subs, unsigned n, uint64_t spin_end, uint64_t *now)
{
    const shmbus_sub *one =
        n == 1 && subs[0]->group == NULL && subs[0]->merge == NULL ? subs[0] : NULL;
    const struct sb_segment *seg = &subs[0]->topic->seg;
    const _Atomic uint64_t *stamp = one != NULL ? &sb_cell(seg, one->pos)->stamp : NULL;
    /* The first stamp gets classified (a stamp of all ones is corrupt: the
     * look every SPIN_LOOK_EVERY turns classifies it). */
    uint64_t seen = UINT64_MAX;

    for (unsigned i = 1;; i++) {
        if (one != NULL) {
            /* relaxed: a hint; the poll that follows loads the stamp again
             * with acquire (sub.c). */
            uint64_t v = atomic_load_explicit(stamp, memory_order_relaxed);
            if (v != seen) {
                if (sb_cell_classify(v, one->pos, seg->g.mask) != SB_CELL_NOT_YET)
                    return 1;
                seen = v;
            }
        } else if (any_ready(subs, n, memory_order_acquire)) {
            return 1;
        }
        sb_cpu_relax();
        if ((i % SPIN_LOOK_EVERY) != 0)
            continue;
        if (one != NULL && any_ready(subs, n, memory_order_acquire))
            return 1;
        if ((*now = sb_mono_ns()) >= spin_end)
            return 0;
    }
}

int sb_wait_any(shmbus_sub *const *subs, unsigned n, uint64_t deadline)
{
    int64_t spin = spin_budget(subs, n);
    uint64_t now = sb_mono_ns(), spin_end;

    if (now >= deadline)
        return SHMBUS_ERR_TIMEOUT;
    if (spin > 0) {
        spin_end =
            spin == INT64_MAX || (uint64_t)spin >= deadline - now ? deadline : now + (uint64_t)spin;
        if (spin_until(subs, n, spin_end, &now))
            return 0;
        if (now >= deadline)
            return SHMBUS_ERR_TIMEOUT;
    }
    return wait_sleep(subs, n, deadline);
}

int shmbus_waitset_create(shmbus_waitset **out)
{
    if (out == NULL)
        return SHMBUS_ERR_INVALID;
    *out = calloc(1, sizeof(**out));
    return *out == NULL ? -ENOMEM : 0;
}

void shmbus_waitset_destroy(shmbus_waitset *ws)
{
    free(ws);
}

int shmbus_waitset_add(shmbus_waitset *ws, shmbus_sub *sub)
{
    if (ws == NULL || sub == NULL)
        return SHMBUS_ERR_INVALID;
    for (unsigned i = 0; i < ws->n; i++)
        if (ws->subs[i] == sub)
            return -EEXIST;
    if (ws->n == SHMBUS_WAITSET_MAX)
        return SHMBUS_ERR_WAITSET_FULL;
    ws->subs[ws->n++] = sub;
    return 0;
}

int shmbus_waitset_remove(shmbus_waitset *ws, shmbus_sub *sub)
{
    if (ws == NULL || sub == NULL)
        return SHMBUS_ERR_INVALID;
    for (unsigned i = 0; i < ws->n; i++) {
        if (ws->subs[i] == sub) {
            ws->subs[i] = ws->subs[--ws->n];
            return 0;
        }
    }
    return -ENOENT;
}

static int collect_ready(shmbus_waitset *ws, shmbus_sub **ready, unsigned cap)
{
    unsigned k = 0;

    for (unsigned i = 0; i < ws->n && k < cap; i++)
        if (sb_sub_ready_order(ws->subs[i], memory_order_acquire) != 0)
            ready[k++] = ws->subs[i];
    return (int)k;
}

int shmbus_waitset_wait(shmbus_waitset *ws, shmbus_sub **ready, unsigned cap, int64_t timeout_ns)
{
    uint64_t deadline = 0;

    if (ws == NULL || ready == NULL || cap == 0 || ws->n == 0)
        return SHMBUS_ERR_INVALID;
    for (;;) {
        int k = collect_ready(ws, ready, cap);
        if (k > 0)
            return k;
        if (timeout_ns == 0)
            return -EAGAIN;
        if (deadline == 0)
            deadline = sb_deadline(timeout_ns);
        k = sb_wait_any(ws->subs, ws->n, deadline);
        if (k < 0)
            return k;
    }
}

uint32_t sb_wait_sleeper_take_back(_Atomic uint32_t *count, _Atomic uint32_t *mine)
{
    /* relaxed: the owner is dead; its last stores are visible. */
    uint32_t w = atomic_exchange_explicit(mine, 0, memory_order_relaxed);
    /* relaxed: a count other sleepers change by their own weights; the
     * CAS retries on their changes. A count lower than ours (damaged)
     * goes to zero. */
    uint32_t c = atomic_load_explicit(count, memory_order_relaxed);

    while (w != 0 && !atomic_compare_exchange_weak_explicit(
                         count, &c, c > w ? c - w : 0, memory_order_relaxed, memory_order_relaxed))
        ;
    return w;
}

void sb_wait_pending_settle(struct sb_shm_header *h)
{
    /* seq_cst, all: the 0 before the bump, so that a sleeper asleep now
     * has its futex_wait fail or is woken below, and one that goes to
     * sleep later clears the word itself (pending_clear()). Everyone is
     * woken: the one a wake-up chose may be the dead one, which relays
     * nothing; this happens once per death. */
    atomic_store_explicit(&h->data_pending, 0, memory_order_seq_cst);
    if (atomic_load_explicit(&h->data_waiters, memory_order_seq_cst) == 0)
        return;
    atomic_fetch_add_explicit(&h->data_futex, 1, memory_order_seq_cst);
    sb_futex_wake(&h->data_futex, INT_MAX);
}
