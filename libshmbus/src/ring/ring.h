/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring internals shared by the publisher, subscriber and wait-set code: the
 * handle structs behind the opaque public types and the small helpers on
 * the hot path. See docs/design.md for the protocol these implement.
 * ring/ includes shm/ and util/, never registry/: what the daemon must
 * hear of goes through the hooks (ring/hooks.h).
 */
#ifndef SHMBUS_RING_RING_H
#define SHMBUS_RING_RING_H

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring/hooks.h"
#include "shm/segment.h"
#include "shmbus/shmbus.h"
#include "util/futex.h"

struct sb_ack;
struct sb_merge;

struct shmbus_topic {
    struct sb_segment seg;
    /* Opened through the daemon (shmbus_open()): the client's record,
     * handed to the hooks; else NULL. */
    struct sb_topic_reg *reg;
};

/* Creation parameters and file mode from @p o (NULL: all defaults).
 * @return 0, or SHMBUS_ERR_INVALID if a reserved field of @p o is set (a
 * caller built against a later header is told, not ignored). */
int sb_topic_params(const shmbus_topic_opts *o, struct sb_seg_params *p, uint32_t *perm);

/* Are @p o's reserved fields all 0? (NULL: yes.) */
static inline int sb_topic_opts_clean(const shmbus_topic_opts *o)
{
    for (size_t i = 0; o != NULL && i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
        if (o->reserved[i] != 0)
            return 0;
    return 1;
}

/*
 * A zeroed handle (topic, publisher, subscriber) of @p size bytes that
 * starts a cache line and ends one, freed with free(). The publish and
 * receive paths read these handles on every call: with malloc()'s 16-byte
 * placement, where they fell relative to each other and to the process's
 * other data moved the spin ping-pong's median by 10-15 ns from build to
 * build (docs/benchmarks.md, issue 12). @return the handle or NULL.
 */
static inline void *sb_handle_alloc(size_t size)
{
    size_t len = (size + SB_LINE - 1) & ~(size_t)(SB_LINE - 1);
    void *p;

    if (posix_memalign(&p, SB_LINE, len) != 0)
        return NULL;
    memset(p, 0, len);
    return p;
}

/* Hand a mapped segment to a new topic handle (reg NULL); on failure the
 * mapping is gone. @return 0 or -ENOMEM. */
int sb_topic_wrap(struct sb_segment *seg, shmbus_topic **out);

struct shmbus_pub {
    shmbus_topic *topic;
    struct sb_shm_pubrec *rec; /* our publisher record (layout.h) */
    uint64_t next_min;         /* every seq we claim from now on is >= this */
    uint64_t limit;            /* reliable: claims below this need no rescan (private cache) */
    uint64_t open_seq;         /* seq of the open zero-copy claim */
    uint32_t pid;
    uint32_t gen;   /* fork generation at creation (util/fork.h) */
    int exclusive;  /* holds an exclusive topic's publisher token */
    int token_fd;   /* the token's lock (pub.c sb_pub_token_take()), or -1 */
    int open;       /* a zero-copy claim is open */
    uint32_t quiet; /* sb_pub_quiet(); 0 for every publisher of the API */
};

struct shmbus_sub {
    shmbus_topic *topic;
    struct sb_shm_slot *slot;
    struct sb_shm_group *group; /* NULL unless a group member */
    struct sb_ack *ack;         /* SHMBUS_SUB_ACK members (ring/ack.h), else NULL */
    uint64_t pos;               /* plain subscriber: next seq to read */
    uint64_t received;
    uint64_t lost;
    uint64_t pending_lost; /* lost since the last delivery */
    uint32_t pid;          /* the creating process (a fork child's copy touches nothing) */
    uint32_t gen;          /* fork generation at creation (util/fork.h) */
    int64_t spin_ns;
    uint64_t wake_bound_ns; /* > 0: lazy, sleeps at most this long, uncounted (wait.c) */
    uint32_t start;
    uint32_t want_len;      /* length of a message too big for recv's buffer */
    int pending_err;        /* error met after a delivery, reported next */
    int copy_read;          /* lossy topic or observer: copy, then re-check the stamp */
    int observer;           /* SHMBUS_SUB_OBSERVER: gates nothing */
    int held;               /* the slot's pos is held_pos, moved by sb_sub_release() only */
    uint8_t *scratch;       /* copy_read: validated copy of one message */
    uint64_t held_pos;      /* held: what the slot gates at; <= pos */
    struct sb_merge *merge; /* started at a seq or time with a journal (merge.c), else NULL */
};

/* A subscriber handle for @p topic with options @p o (checked), its slot
 * not yet taken (sub.c). @return it, or NULL (-ENOMEM). */
shmbus_sub *sb_sub_alloc(shmbus_topic *topic, const shmbus_sub_opts *o);

/* Seat plain subscriber @p sub, its slot filled and INIT, at seq @p seq:
 * a copy reader there (its reads check the laps); a gating one by the
 * join protocol (sub.c plain_join()) at max(seq, min(settled gates,
 * tail)), which may be above @p seq. Sets sub->pos to the seat. */
void sb_sub_join_at(shmbus_sub *sub, uint64_t seq);

/* Stop @p sub's slot gating (ACTIVE -> INIT), as destroying it would, to
 * seat it again later. @return 0; SHMBUS_ERR_EVICTED (the daemon evicted
 * it first). */
int sb_sub_unseat(shmbus_sub *sub);

/* Has the daemon removed the topic for good (layout.h gone)? @p order:
 * relaxed on the hot path, where the flag is one load of a line nobody
 * writes after creation (it stays shared in every cache) and a publish
 * that misses a flag set a moment ago lands in a segment nobody serves;
 * seq_cst on a sleeper's re-check, the Dekker pair with the daemon's
 * store and wake-up (admin.c sb_admin_topic_gone()). */
static inline int sb_topic_gone(const struct sb_segment *seg, memory_order order)
{
    return atomic_load_explicit(&seg->hdr->gone, order) != 0;
}

/* Has the daemon evicted the subscriber (stall timeout)? @p order: relaxed
 * at the start of a poll (a flag: seen a call later at worst), seq_cst on
 * a sleeper's re-check (the Dekker pair with the daemon's eviction CAS and
 * wake-up, admin.c). */
static inline int sb_sub_evicted(const shmbus_sub *sub, memory_order order)
{
    return atomic_load_explicit(&sub->slot->state, order) == SB_SLOT_EVICTED;
}

/* The same after reading cells in place: were we evicted before those
 * reads ended? If not, no publisher overwrote what we read: a publisher
 * that saw the eviction (seq_cst, after the daemon's CAS) writes the cell
 * only after its release fence (pub.c cell_take()), and had we read any
 * byte of its, the acquire fence below would make the eviction visible to
 * the load after it. The reads are of plain memory: there is no atomic
 * access to hang this order on. */
static inline int sb_sub_evicted_after_reads(const shmbus_sub *sub)
{
    atomic_thread_fence(memory_order_acquire);
    /* relaxed: ordered by the fence above. */
    return atomic_load_explicit(&sub->slot->state, memory_order_relaxed) == SB_SLOT_EVICTED;
}

/*
 * Wake sleeping subscribers after a cell changed state. seq_cst: this load
 * and the seq_cst CAS or store that committed the cell form a Dekker pair
 * with the sleeper's seq_cst increment of data_waiters and its seq_cst
 * re-check of the cell (wait.c sleep_on()): at least one side sees the
 * other, so either we wake it or it does not sleep. When nobody sleeps
 * this is one load of a line that stays shared in every cache, and no
 * system call.
 *
 * A sleeper is woken at most once until it has run again: we wake only if
 * we move data_pending from 0 to 1; a sleeper stores 0 there after reading
 * the futex word and before its re-check (sleep_on()). So a burst pays one
 * futex call, not one per message, while the woken sleeper has not run
 * (it shares our CPU, or its vCPU is idle). No wake-up is lost: if we read
 * the 1 before a sleeper's 0, our commit precedes its re-check, which sees
 * the cell; if after, the 1 was set by a publisher that did so after the
 * sleeper read the futex word, whose bump then fails the sleeper's
 * futex_wait or whose wake-up finds it asleep (docs/model/wakeup.pml, and
 * its mutation PENDING_CLEAR_FIRST).
 */
static inline void sb_wake_readers(struct sb_shm_header *h, uint32_t quiet)
{
    uint32_t w = atomic_load_explicit(&h->data_waiters, memory_order_seq_cst);
    uint32_t idle = 0;

    /* @p quiet: the weight of a sleeper the caller delivers for itself
     * (a relay's, registry/relay.h, or 0): when it is the only one, nobody
     * is woken. */
    if (w == 0 || w == quiet)
        return;
    /* seq_cst, the load and the CAS: the load is part of the Dekker pair
     * above (a 1 read before a sleeper's 0 is a commit before its
     * re-check); it spares the CAS, which would take the line, during a
     * burst. */
    if (atomic_load_explicit(&h->data_pending, memory_order_seq_cst) != 0 ||
        !atomic_compare_exchange_strong_explicit(&h->data_pending, &idle, 1, memory_order_seq_cst,
                                                 memory_order_seq_cst))
        return;
    /* seq_cst: a sleeper that read the old value has its futex_wait fail
     * with EAGAIN, one that reads the new value re-checks the cell after. */
    atomic_fetch_add_explicit(&h->data_futex, 1, memory_order_seq_cst);
    /* Wake one sleeper; it wakes the others (wait.c wake_delegate()), so a
     * publisher pays one wake-up however many subscribers sleep. EAGER: a
     * lazy subscriber (wait.c) is never the one. */
    sb_futex_wake_bits(&h->data_futex, 1, SB_FUTEX_EAGER);
}

/*
 * Make @p pub skip the wake-up when the only sleeper on its topic counts
 * @p weight: the caller delivers what it publishes itself (a relay,
 * registry/relay.h sb_relay_pub_quiet()). Any other sleeper is still
 * woken: it counted itself before re-checking the cells, so it either
 * shows in the count or sees the message.
 */
void sb_pub_quiet(shmbus_pub *pub, uint32_t weight);

/*
 * shmbus_publish() of a message published elsewhere (registry/relay.h
 * sb_relay_publish_imported()): the cell carries @p ts and @p pid, the
 * origin's, instead of ours, and origin 1 + @p origin_seq (layout.h).
 * @return as shmbus_publish(); SHMBUS_ERR_INVALID for an @p origin_seq of
 * UINT64_MAX, which the cell cannot tell from a local message.
 */
int sb_pub_publish_as(shmbus_pub *pub, const void *data, size_t len, int64_t timeout_ns,
                      uint64_t ts, uint32_t pid, uint64_t origin_seq);

/* The same for reliable publishers sleeping on a full ring, after a
 * subscriber or group released cells with a seq_cst store. */
static inline void sb_wake_publishers(struct sb_shm_header *h)
{
    if (atomic_load_explicit(&h->space_waiters, memory_order_seq_cst) == 0)
        return;
    atomic_fetch_add_explicit(&h->space_futex, 1, memory_order_seq_cst);
    sb_futex_wake(&h->space_futex, INT_MAX);
}

/* Take an exclusive topic's publisher token for process @p pid, settling
 * the last claim of a holder that died with it (pub.c).
 * @return the lock's fd (close it to give the token back, after storing
 * excl_owner 0 with release), -EBUSY if held, or -errno. */
int sb_pub_token_take(const struct sb_segment *seg, uint32_t pid);

/* Free a slot (pid cleared first, see layout.h), stopping it gating. */
void sb_slot_release(struct sb_shm_slot *s);

/* Is the message at the subscriber's position ready (or a loss to report)?
 * @p order is the order of the stamp load (seq_cst on the sleep path).
 * @return 1, 0, or a negative error. */
int sb_sub_ready_order(shmbus_sub *sub, memory_order order);

#endif
