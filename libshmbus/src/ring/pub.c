/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publisher side of the ring. A publish is: claim a sequence number (one
 * atomic on the tail), take the cell that number maps to (one CAS on the
 * cell's stamp), write header and payload, commit (one CAS on the stamp),
 * and wake sleepers only if the waiter count says someone sleeps.
 *
 * Lossy topics claim with fetch_add and never wait. A claim that finds its
 * cell still being written by an older, stalled publisher does not write
 * (two writers in one cell would tear it): it leaves its seq in the stamp,
 * marked BUSY, so that the older writer turns the cell into SKIPPED when it
 * finishes, and readers count the seq as lost. A writer whose cell is so
 * marked while it writes finds out at commit, and its message is dropped.
 *
 * Reliable topics claim with a CAS below a limit, min(gating positions,
 * tail) + capacity, that the publisher caches privately and recomputes only
 * when a claim reaches it; a full ring returns -EAGAIN or sleeps on
 * space_futex.
 *
 * Exclusive topics have one publisher, holding a token: it claims with a
 * store, marks with a plain store and commits with one seq_cst store.
 *
 * A batch (shmbus_publish_vec()) claims k seqs with one tail operation,
 * then takes, writes and commits each cell as above and wakes once; its
 * record names the range (layout.h), for the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring/gate.h"
#include "ring/read.h"
#include "ring/ring.h"
#include "ring/wait.h"
#include "util/clock.h"
#include "util/fault.h"
#include "util/fork.h"
#include "util/proc.h"

/* A token holder that died may have died between claim and commit: its
 * open seqs would stall readers forever. It commits in order, so they are
 * the seqs above its last final stamp: one, or the rest of a batch
 * (shmbus_publish_vec()), within a lap of the tail. We hold the token now,
 * so nobody else writes: end each as SKIPPED. */
static void pub_settle_dead_holder(const struct sb_segment *seg)
{
    /* relaxed, the tail and every stamp below: the holder's process has
     * exited (the kernel dropped its lock before ours was granted, a full
     * barrier on both sides), so all it stored is visible. */
    uint64_t t = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed), v;
    uint64_t lo = t > seg->g.capacity ? t - seg->g.capacity : 0;

    for (uint64_t s = t; s-- > lo;) {
        struct sb_shm_cell *c = sb_cell(seg, s);
        uint32_t st;

        v = atomic_load_explicit(&c->stamp, memory_order_relaxed);
        st = SB_STAMP_ST(v);
        if (SB_STAMP_SEQ(v) == s && (st == SB_ST_COMMITTED || st == SB_ST_SKIPPED))
            break; /* committed in order: everything below is final too */
        /* seq_cst: a state readers wait for; before the waiter load. */
        atomic_store_explicit(&c->stamp, SB_STAMP(s, SB_ST_SKIPPED), memory_order_seq_cst);
        /* relaxed: statistics only. */
        atomic_fetch_add_explicit(&seg->hdr->skipped, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&seg->hdr->unblocked, 1, memory_order_relaxed);
    }
    /* It may also have died between its commit and its wake-up. */
    sb_wake_readers(seg->hdr, 0);
}

/* Take an exclusive topic's publisher token: an OFD write lock on the first
 * byte of the segment file, through a file description of our own. The
 * kernel drops it when the holder closes it or dies, whatever its pid
 * namespace, and a zombie or a reused pid cannot keep or fake it.
 * excl_owner says whether the last holder gave the token back (0) or died. */
int sb_pub_token_take(const struct sb_segment *seg, uint32_t pid)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    char path[40];
    int fd, rc;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", seg->fd);
    fd = open(path, O_RDWR | O_CLOEXEC); /* a new open file description */
    if (fd < 0)
        return -errno;
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        rc = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
        close(fd);
        return rc;
    }
    /* acquire: pairs with the release store of 0 by a holder that gave the
     * token back; non-zero: it died holding it. */
    if (atomic_load_explicit(&seg->hdr->excl_owner, memory_order_acquire) != 0)
        pub_settle_dead_holder(seg);
    /* relaxed: read only by the next holder, after our lock is gone. */
    atomic_store_explicit(&seg->hdr->excl_owner, pid, memory_order_relaxed);
    return fd;
}

/* Take a free publisher record: FREE -> INIT, our identity, ACTIVE. */
static struct sb_shm_pubrec *pub_rec_take(const struct sb_segment *seg, uint32_t pid)
{
    for (uint32_t i = 0; i < seg->g.max_pubs; i++) {
        struct sb_shm_pubrec *r = &seg->pubs[i];
        uint32_t st = SB_PUB_FREE;

        /* acquire: pairs with the release store of FREE in pub_rec_free()
         * or by the daemon; the last owner's stores come before ours. */
        if (!atomic_compare_exchange_strong_explicit(&r->state, &st, SB_PUB_INIT,
                                                     memory_order_acquire, memory_order_relaxed))
            continue;
        /* relaxed: published by the release store of ACTIVE. */
        atomic_store_explicit(&r->claim, SB_CLAIM_IDLE, memory_order_relaxed);
        atomic_store_explicit(&r->start, sb_proc_self_start(), memory_order_relaxed);
        atomic_store_explicit(&r->pid, pid, memory_order_relaxed);
        /* release: the daemon judges an ACTIVE record by pid and start. */
        atomic_store_explicit(&r->state, SB_PUB_ACTIVE, memory_order_release);
        return r;
    }
    return NULL;
}

static void pub_rec_free(struct sb_shm_pubrec *r)
{
    /* relaxed: published by the release store of FREE. */
    atomic_store_explicit(&r->claim, SB_CLAIM_IDLE, memory_order_relaxed);
    atomic_store_explicit(&r->pid, 0, memory_order_relaxed);
    /* release: pairs with the acquire CAS of the next owner. */
    atomic_store_explicit(&r->state, SB_PUB_FREE, memory_order_release);
}

/* Give back what the publisher holds in the ring and free it. */
static void pub_release(shmbus_pub *pub)
{
    /* A copy inherited through fork() only frees its memory: the claim and
     * the token are the creating process's. */
    if (pub->gen == sb_fork_gen()) {
        if (pub->open) {
            shmbus_claim c = {.seq = pub->open_seq};
            shmbus_pub_abort(pub, &c);
        }
        /* release: our tail and cells before the next holder's acquire. */
        if (pub->exclusive)
            atomic_store_explicit(&pub->topic->seg.hdr->excl_owner, 0, memory_order_release);
        if (pub->rec != NULL)
            pub_rec_free(pub->rec);
    }
    if (pub->token_fd >= 0)
        close(pub->token_fd); /* drops the lock once no process holds it */
    free(pub);
}

int shmbus_pub_create(shmbus_topic *topic, shmbus_pub **out)
{
    shmbus_pub *p;
    int rc;

    if (out == NULL)
        return SHMBUS_ERR_INVALID;
    *out = NULL;
    if (topic == NULL)
        return SHMBUS_ERR_INVALID;
    p = sb_handle_alloc(sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->topic = topic;
    p->pid = (uint32_t)getpid();
    sb_fork_watch();
    p->gen = sb_fork_gen();
    p->exclusive = (topic->seg.g.flags & SHMBUS_TOPIC_EXCLUSIVE) != 0;
    p->token_fd = -1;
    p->rec = pub_rec_take(&topic->seg, p->pid);
    if (p->rec == NULL) {
        free(p);
        return SHMBUS_ERR_NO_SLOT;
    }
    /* relaxed: a lower bound; every seq we claim is at least this. */
    p->next_min = atomic_load_explicit(&topic->seg.hdr->tail, memory_order_relaxed);
    if (p->exclusive && (p->token_fd = rc = sb_pub_token_take(&topic->seg, p->pid)) < 0) {
        pub_rec_free(p->rec);
        free(p);
        return rc;
    }
    /* Registered for monitoring only: a publisher holds nothing the daemon
     * would have to free, so a failure here fails the create cleanly. */
    if (topic->reg != NULL && (rc = sb_hook_pub_added(topic)) < 0) {
        pub_release(p);
        return rc;
    }
    *out = p;
    return 0;
}

void shmbus_pub_destroy(shmbus_pub *pub)
{
    if (pub == NULL)
        return;
    /* Only by the creator: the client refuses calls from forked children. */
    if (pub->topic->reg != NULL && pub->gen == sb_fork_gen())
        sb_hook_pub_removed(pub->topic);
    pub_release(pub);
}

/* Claim up to *@p k seqs (at least one) below the limit, the first in
 * *@p seq; *@p k says how many. */
static int pub_claim_reliable(shmbus_pub *p, uint64_t *seq, uint32_t *k, int64_t timeout_ns)
{
    _Atomic uint64_t *tail = &p->topic->seg.hdr->tail;
    uint64_t deadline = 0, n;
    /* seq_cst: as in sb_pub_wait_space(); then a guess for the CAS below. */
    uint64_t s = atomic_load_explicit(tail, memory_order_seq_cst);

    for (;;) {
        /* A batch that does not fit below the cached limit rescans once. */
        if (s + *k > p->limit)
            sb_pub_refresh_limit(p, s);
        if (s >= p->limit) {
            int rc;

            /* While we wait, our bound must not lag: the daemon reads a
             * CLAIMING bound as "may own any seq from here", and a stale
             * one would make it wait for us to settle a dead publisher's
             * claim that our own wait depends on. s was loaded (seq_cst)
             * from the tail; anything we claim later is above it. */
            atomic_store_explicit(&p->rec->claim, SB_CLAIM_CLAIMING | s, memory_order_relaxed);
            rc = sb_pub_wait_space(p, &s, timeout_ns, &deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        n = p->limit - s < *k ? p->limit - s : *k;
        /* seq_cst: ordered after the seq_cst gate loads of the last refresh,
         * which a joining subscriber's seq_cst tail read is ordered against
         * (gate.c sb_seat()); on failure s is reloaded (seq_cst, as above). */
        if (atomic_compare_exchange_weak_explicit(tail, &s, s + n, memory_order_seq_cst,
                                                  memory_order_seq_cst)) {
            *seq = s;
            *k = (uint32_t)n;
            return 0;
        }
    }
}

/* The exclusive publisher is the tail's only writer: no RMW. Claims as
 * pub_claim_reliable() (reliable) or all *@p k (lossy). */
static int pub_claim_exclusive(shmbus_pub *p, uint64_t *seq, uint32_t *k, int64_t timeout_ns)
{
    _Atomic uint64_t *tail = &p->topic->seg.hdr->tail;
    /* relaxed: our own last store. */
    uint64_t s = atomic_load_explicit(tail, memory_order_relaxed), deadline = 0;

    if (p->topic->seg.g.mode == SHMBUS_RELIABLE) {
        /* A batch that does not fit below the cached limit rescans; only
         * no room at all waits. */
        while (s + *k > p->limit && s >= sb_pub_refresh_limit(p, s)) {
            int rc = sb_pub_wait_space(p, &s, timeout_ns, &deadline);
            if (rc < 0)
                return rc;
        }
        if (p->limit - s < *k)
            *k = (uint32_t)(p->limit - s);
        /* seq_cst: ordered after the gate loads of the last refresh, as
         * the CAS in pub_claim_reliable() (gate.c sb_seat()). */
        atomic_store_explicit(tail, s + *k, memory_order_seq_cst);
    } else {
        /* relaxed: what a reader may see of a cell is ordered by its
         * stamp, as for the lossy fetch_add in pub_claim_seq(), whose
         * release only orders a record's CLAIMING, which we do not keep
         * (the daemon settles us through the token). */
        atomic_store_explicit(tail, s + *k, memory_order_relaxed);
    }
    *seq = s;
    return 0;
}

/* Claim *@p k seqs, 1 <= *@p k <= capacity (a lossy batch never laps
 * itself), the first in *@p seq; reliable: as many as fit below the
 * limit, *@p k says how many. */
static inline int pub_claim_seq(shmbus_pub *p, uint64_t *seq, uint32_t *k, int64_t timeout_ns)
{
    if (p->exclusive)
        return pub_claim_exclusive(p, seq, k, timeout_ns);
    if (p->topic->seg.g.mode == SHMBUS_RELIABLE)
        return pub_claim_reliable(p, seq, k, timeout_ns);
    /* release: the RMW alone makes every seq unique, and what a reader
     * may see of the cell is ordered by the cell's stamp; release orders
     * our record's CLAIMING before it for the daemon, which reads the tail
     * (acquire) before the records (pub_rec_claiming()). */
    *seq = atomic_fetch_add_explicit(&p->topic->seg.hdr->tail, *k, memory_order_release);
    return 0;
}

/* Reliable: has the writer of this cell's previous seq (s - capacity)
 * finished? Only a final stamp of exactly that seq says so. */
static int cell_prev_done(uint64_t v, uint64_t s, uint32_t capacity)
{
    uint32_t st = SB_STAMP_ST(v);

    if (s < capacity)
        return v == 0;
    return (st == SB_ST_COMMITTED || st == SB_ST_SKIPPED) && SB_STAMP_SEQ(v) == s - capacity;
}

/* Reliable, lapped while nobody gated: wait for the previous writer until
 * the caller's timeout, or until the topic is removed (that writer may
 * never finish then). @return 1 to keep waiting, 0 to give up. */
static int take_wait(const struct sb_segment *seg, unsigned spins, int64_t timeout_ns,
                     uint64_t *deadline)
{
    if (timeout_ns == 0)
        return 0;
    if (*deadline == 0)
        *deadline = sb_deadline(timeout_ns);
    if (spins % 1024 == 0) {
        if (sb_mono_ns() >= *deadline || sb_topic_gone(seg, memory_order_relaxed))
            return 0;
        sched_yield();
    }
    sb_cpu_relax();
    return 1;
}

/* A stamp no protocol step can leave in the cell of seq @p s (garbage):
 * the same judgement readers make (read.c). */
static int cell_impossible(uint64_t v, uint64_t s, uint32_t mask)
{
    return sb_cell_classify(v, s, mask) == SB_CELL_CORRUPT;
}

/* cell_take(): the daemon ended our seq before we took its cell (a batch
 * whose publisher stalled, admin_claim.c sb_admin_pub_end_rest()); it
 * counted the skip. */
#define PUB_TAKE_ENDED 1

/* Take the cell for seq @p s: 0 if we own it (stamp BUSY(s)), or
 * SHMBUS_ERR_OVERRUN if we may not write it: a newer seq owns it; or an
 * older writer still does, and our seq is left in the stamp (BUSY) for it
 * to turn into SKIPPED; or PUB_TAKE_ENDED. A reliable publisher first waits for the previous
 * writer, which may be writing without a mark, up to its timeout; if it
 * gives up on a cell nobody owns, it skips its seq itself. A stamp that
 * cannot be there is overwritten rather than waited for. */
static inline int cell_take(const struct sb_segment *seg, uint64_t s, int64_t timeout_ns)
{
    struct sb_shm_cell *c = sb_cell(seg, s);
    uint32_t mask = seg->g.mask;
    int reliable = seg->g.mode == SHMBUS_RELIABLE;
    /* relaxed: a guess; the CAS decides. */
    uint64_t v = atomic_load_explicit(&c->stamp, memory_order_relaxed), deadline = 0, want;

    for (unsigned spins = 1;; spins++) {
        uint32_t st = SB_STAMP_ST(v);
        int ours = !reliable || cell_prev_done(v, s, mask + 1) || cell_impossible(v, s, mask);
        /* A newer (or the same, skipped by the daemon) seq is already here. */
        if (st != SB_ST_EMPTY && SB_STAMP_SEQ(v) >= s && !cell_impossible(v, s, mask))
            return v == SB_STAMP(s, SB_ST_SKIPPED) ? PUB_TAKE_ENDED : SHMBUS_ERR_OVERRUN;
        if (!ours && take_wait(seg, spins, timeout_ns, &deadline)) {
            v = atomic_load_explicit(&c->stamp, memory_order_relaxed);
            continue;
        }
        want = SB_STAMP(s, ours || st == SB_ST_BUSY ? SB_ST_BUSY : SB_ST_SKIPPED);
        /* acquire: pairs with the previous owner's commit (cell_finish) so
         * its header and payload stores are ordered before ours; the
         * release fence below orders our BUSY before our own stores.
         * seq_cst: a SKIPPED stamp must be seen by sleepers (ring.h). */
        if (atomic_compare_exchange_weak_explicit(&c->stamp, &v, want, memory_order_seq_cst,
                                                  memory_order_relaxed))
            break;
    }
    /* An older writer still owns the cell: we only left our seq to skip;
     * or we skipped our seq ourselves. */
    if ((SB_STAMP_ST(v) == SB_ST_BUSY && !cell_impossible(v, s, mask)) ||
        SB_STAMP_ST(want) == SB_ST_SKIPPED)
        return SHMBUS_ERR_OVERRUN;
    /* release fence: BUSY(s) becomes visible before any header or payload
     * store below; pairs with the acquire fence in read.c's sb_cell_copy(),
     * so a reader that saw any byte of ours sees the stamp changed. */
    atomic_thread_fence(memory_order_release);
    return 0;
}

/* Did the daemon end our claim on @p s (stall timeout, admin_claim.c
 * sb_admin_pub_unblock())? It stores ended before its stamp CAS; every
 * later stamp change is an RMW, so a stamp we read with acquire at or
 * after its CAS makes the store visible. relaxed: ordered so. */
static int pub_claim_ended(const shmbus_pub *p, uint64_t s)
{
    return atomic_load_explicit(&p->rec->ended, memory_order_relaxed) == s + 1;
}

/* The cell of our claim @p s, holding @p v, was marked with a newer seq
 * while we wrote it: hand it over as SKIPPED(that seq). Only the owner
 * ends BUSY, so we loop until our CAS lands; unless the daemon ended our
 * claim (then the cell is no longer ours: a BUSY there is another
 * writer's, or a mark the daemon hands on). */
static void cell_release(const shmbus_pub *p, struct sb_shm_cell *c, uint64_t v, uint64_t s)
{
    /* seq_cst: the SKIPPED stamp is a state readers wait for; seq_cst also
     * orders it before the waiter load in sb_wake_readers(). acquire on
     * failure: for pub_claim_ended(). */
    while (SB_STAMP_ST(v) == SB_ST_BUSY && !pub_claim_ended(p, s) &&
           !atomic_compare_exchange_weak_explicit(&c->stamp, &v,
                                                  SB_STAMP(SB_STAMP_SEQ(v), SB_ST_SKIPPED),
                                                  memory_order_seq_cst, memory_order_acquire))
        ;
}

/* Did the daemon end our claim on @p s while we wrote (stall timeout)?
 * Then the cell may hold a newer message already: not a byte more of ours
 * goes there, not even the header. Our own record first: the cell's line
 * is the one a spinning reader polls, and loading it between taking the
 * cell and committing costs a line transfer per publish (measured: +35 ns
 * one-way); ended is read relaxed there, so an end made a moment ago can
 * be missed, and then the header is written as the payload was (the hole
 * shmbus.h documents). The commit's CAS decides what happens to the cell
 * either way (cell_finish()). acquire: if ended names us, the stamp the
 * daemon's CAS wrote, or a later one, confirms it. */
static int pub_claim_lost(const shmbus_pub *p, const struct sb_shm_cell *c, uint64_t s)
{
    if (p->exclusive || !pub_claim_ended(p, s))
        return 0;
    if (atomic_load_explicit(&c->stamp, memory_order_acquire) == SB_STAMP(s, SB_ST_BUSY))
        return 0; /* told, but the daemon's CAS lost: the cell is still ours */
    /* relaxed: statistics only (the daemon counted the skip). */
    atomic_fetch_add_explicit(&p->topic->seg.hdr->overruns, 1, memory_order_relaxed);
    return 1;
}

/* End our ownership of the cell for seq @p s with state @p st, waking
 * nobody. If the stamp is no longer our BUSY(s), a newer claim found us
 * writing and left its seq (our message is dropped and the cell handed
 * on), or the daemon ended our claim (stall timeout; dropped, and the
 * cell is not ours). @p excl_order: the exclusive publisher's store,
 * seq_cst unless the caller issues a seq_cst fence before its wake-up
 * (shmbus_publish_vec()). */
static int cell_settle(struct sb_shm_header *h, struct sb_shm_cell *c, uint64_t s, uint32_t st,
                       const shmbus_pub *p, memory_order excl_order)
{
    uint64_t expect = SB_STAMP(s, SB_ST_BUSY);
    int rc = 0;

    if (p->exclusive) {
        /* release at least: publishes header and payload to the reader's
         * acquire load of the stamp; seq_cst, or release and the caller's
         * fence: one side of the Dekker pair in sb_wake_readers(). */
        atomic_store_explicit(&c->stamp, SB_STAMP(s, st), excl_order);
        /* relaxed: statistics only. */
        if (st == SB_ST_SKIPPED)
            atomic_fetch_add_explicit(&h->skipped, 1, memory_order_relaxed);
        return 0;
    }

    /* seq_cst: its release half publishes header and payload to the
     * reader's acquire load of the stamp; seq_cst makes it one side of the
     * Dekker pair in sb_wake_readers(). acquire on failure: if the daemon
     * ended our claim, the stamp we find is its, and its store of ended
     * before it is visible (pub_claim_ended()). */
    if (!atomic_compare_exchange_strong_explicit(&c->stamp, &expect, SB_STAMP(s, st),
                                                 memory_order_seq_cst, memory_order_acquire)) {
        cell_release(p, c, expect, s);
        /* relaxed: statistics only. */
        atomic_fetch_add_explicit(&h->overruns, 1, memory_order_relaxed);
        rc = SHMBUS_ERR_OVERRUN;
    }
    /* relaxed: statistics only; a claim the daemon ended it counted. */
    if (st == SB_ST_SKIPPED || (rc < 0 && !pub_claim_ended(p, s)))
        atomic_fetch_add_explicit(&h->skipped, 1, memory_order_relaxed);
    return rc;
}

/* cell_settle(), then wake sleepers: the settle's seq_cst CAS or store
 * before the waiter load (ring.h). */
static int cell_finish(struct sb_shm_header *h, struct sb_shm_cell *c, uint64_t s, uint32_t st,
                       const shmbus_pub *p)
{
    int rc = cell_settle(h, c, s, st, p, memory_order_seq_cst);

    sb_wake_readers(h, p->quiet);
    return rc;
}

/*
 * The publisher record's claim word (layout.h), for the daemon to end the
 * claim of a publisher that dies between claim and commit. Exclusive
 * publishers skip it (the daemon settles their topic through the token).
 * CLAIMING is relaxed, ordered by the tail RMW after it. A batch's
 * claim_end is stored with release after the RMW: a daemon that reads it
 * (acquire) and then the claim word reads no claim older than that batch
 * (admin_claim.c live_snap_add()). The seq is stored with release: a
 * daemon that reads it (acquire) sees the batch's claim_end; the cell's
 * seq_cst CAS after it orders it for a daemon that read the cell. IDLE is
 * release, after the commit. A dead process's stores are all visible to
 * the daemon anyway; the orders matter for live publishers, whose records
 * the daemon reads to know that a claim is not theirs. On x86 none of
 * these stores costs more than a plain one: they go to our own record's
 * line.
 */
static void pub_rec_claiming(shmbus_pub *p)
{
    atomic_store_explicit(&p->rec->claim, SB_CLAIM_CLAIMING | p->next_min, memory_order_relaxed);
}

static void pub_rec_claimed(shmbus_pub *p, uint64_t s)
{
    atomic_store_explicit(&p->rec->claim, s, memory_order_release);
    p->next_min = s + 1;
}

static void pub_rec_idle(shmbus_pub *p)
{
    if (!p->exclusive)
        atomic_store_explicit(&p->rec->claim, SB_CLAIM_IDLE, memory_order_release);
}

/* Take the cell of our claim @p s: every writer marks the cell BUSY,
 * which keeps writers apart (one that lapped while nobody gated, or gave
 * up waiting, can always tell a writer is at work) and lets lossy readers
 * detect an overwrite. @return 0, or as cell_take() (nothing counted). */
static inline int pub_take(shmbus_pub *p, uint64_t s, int64_t timeout_ns)
{
    struct sb_segment *seg = &p->topic->seg;
    int rc;

    if (p->exclusive) {
        /* We wrote the cell's previous message and nobody else writes: a
         * plain mark suffices. relaxed + release fence: BUSY before our
         * payload, for lossy readers' check (read.c cell_unchanged()). */
        atomic_store_explicit(&sb_cell(seg, s)->stamp, SB_STAMP(s, SB_ST_BUSY),
                              memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        SB_FAULT_POINT("publish-claimed");
        return 0;
    }
    /* Tests stop the process here: claimed, neither recorded nor marked. */
    SB_FAULT_POINT("publish-unrecorded");
    pub_rec_claimed(p, s);
    rc = cell_take(seg, s, timeout_ns);
    if (rc != 0)
        return rc;
    /* Tests stop the process here to kill it between claim and commit. */
    SB_FAULT_POINT("publish-claimed");
    return 0;
}

/* A take of seq @p s failed with @p rc: count what is ours to count.
 * @return SHMBUS_ERR_OVERRUN. */
static int pub_take_failed(shmbus_pub *p, int rc)
{
    struct sb_shm_header *h = p->topic->seg.hdr;

    /* relaxed, both: statistics only; the daemon counted a seq it ended. */
    atomic_fetch_add_explicit(&h->overruns, 1, memory_order_relaxed);
    if (rc != PUB_TAKE_ENDED)
        atomic_fetch_add_explicit(&h->skipped, 1, memory_order_relaxed);
    return SHMBUS_ERR_OVERRUN;
}

/* Claim up to *@p k seqs (pub_claim_seq()) and record them. */
static inline int pub_claim(shmbus_pub *p, uint64_t *seq, uint32_t *k, int64_t timeout_ns)
{
    int rc;

    if (sb_topic_gone(&p->topic->seg, memory_order_relaxed))
        return SHMBUS_ERR_TOPIC_GONE;
    if (!p->exclusive)
        pub_rec_claiming(p);
    rc = pub_claim_seq(p, seq, k, timeout_ns);
    if (rc < 0) {
        pub_rec_idle(p);
        return rc;
    }
    /* release: see pub_rec_claiming(); before the seq (pub_take()). */
    if (!p->exclusive && *k > 1)
        atomic_store_explicit(&p->rec->claim_end, *seq + *k, memory_order_release);
    return 0;
}

/* Claim a seq and take its cell. On OVERRUN nothing is open. */
static int pub_begin(shmbus_pub *p, uint64_t *seq, int64_t timeout_ns)
{
    struct sb_segment *seg = &p->topic->seg;
    uint32_t k = 1;
    int rc = pub_claim(p, seq, &k, timeout_ns);

    if (rc < 0)
        return rc;
    rc = pub_take(p, *seq, timeout_ns);
    if (rc == 0)
        return 0;
    pub_take_failed(p, rc);
    sb_wake_readers(seg->hdr, p->quiet);
    pub_rec_idle(p);
    /* Given up on a cell because the topic was removed meanwhile. */
    return sb_topic_gone(seg, memory_order_relaxed) ? SHMBUS_ERR_TOPIC_GONE : SHMBUS_ERR_OVERRUN;
}

/* The header of a message: every publish writes every field, origin
 * included (0 for a message published here), so that a reused cell never
 * shows what its last message carried. */
static void cell_write_header(struct sb_shm_cell *c, uint64_t ts, uint32_t len, uint32_t pid,
                              uint64_t origin)
{
    c->timestamp_ns = ts;
    c->len = len;
    c->writer_pid = pid;
    c->origin = origin;
}

/* Write the message into the cell of our claim @p s and commit it, the
 * header saying @p ts, @p pid and @p origin, waking nobody; the exclusive
 * commit is a store of @p excl_order (cell_settle()). @return 0 or
 * SHMBUS_ERR_OVERRUN. */
static inline int pub_fill(shmbus_pub *pub, uint64_t s, const void *data, size_t len, uint64_t ts,
                           uint32_t pid, uint64_t origin, memory_order excl_order)
{
    struct sb_segment *seg = &pub->topic->seg;
    struct sb_shm_cell *c = sb_cell(seg, s);

    if (len > 0)
        memcpy(c + 1, data, len);
    if (pub_claim_lost(pub, c, s))
        return SHMBUS_ERR_OVERRUN;
    cell_write_header(c, ts, (uint32_t)len, pid, origin);
    return cell_settle(seg->hdr, c, s, SB_ST_COMMITTED, pub, excl_order);
}

/* pub_fill(), then wake sleepers and end the claim. @return as
 * shmbus_publish(). */
static inline int pub_write(shmbus_pub *pub, uint64_t s, const void *data, size_t len, uint64_t ts,
                            uint32_t pid, uint64_t origin)
{
    int rc = pub_fill(pub, s, data, len, ts, pid, origin, memory_order_seq_cst);

    sb_wake_readers(pub->topic->seg.hdr, pub->quiet);
    pub_rec_idle(pub);
    return rc;
}

/* The checks of one message, for a publisher pub_check_args() passed.
 * @return 0 or an error. */
static inline int pub_check_msg(const shmbus_pub *pub, const void *data, size_t len)
{
    if (data == NULL && len > 0)
        return SHMBUS_ERR_INVALID;
    if (len > pub->topic->seg.g.max_msg_size)
        return SHMBUS_ERR_TOO_BIG;
    return 0;
}

/* The checks every publish makes first. @return 0 or an error. */
static inline int pub_check_args(const shmbus_pub *pub, const void *data, size_t len)
{
    /* A fork child's copy: the record and the token are the parent's. */
    if (pub == NULL || pub->open || pub->gen != sb_fork_gen())
        return SHMBUS_ERR_INVALID;
    return pub_check_msg(pub, data, len);
}

int shmbus_publish(shmbus_pub *pub, const void *data, size_t len, int64_t timeout_ns)
{
    uint64_t s, ts;
    int rc = pub_check_args(pub, data, len);

    if (rc < 0)
        return rc;
    /* The clock is read before the claim: between taking the cell and
     * committing it a spinning reader may pull the cell's line away, so
     * that window holds only the copy and the header stores. */
    ts = sb_real_ns();
    rc = pub_begin(pub, &s, timeout_ns);
    if (rc < 0)
        return rc;
    return pub_write(pub, s, data, len, ts, pub->pid, 0);
}

/* The checks of shmbus_publish_vec(): the publisher's once, then each
 * message's, all before anything is published. @return 0 or an error. */
static int vec_check_args(const shmbus_pub *pub, const struct iovec *msgs, unsigned n)
{
    int rc;

    if (pub == NULL || (msgs == NULL && n > 0))
        return SHMBUS_ERR_INVALID;
    rc = pub_check_args(pub, NULL, 0);
    /* Only what one call may publish: a caller working through a long
     * array, a lap per call, must not pay for the whole array each time. */
    if (rc == 0 && n > pub->topic->seg.g.capacity)
        n = pub->topic->seg.g.capacity;
    for (unsigned i = 0; i < n && rc == 0; i++)
        rc = pub_check_msg(pub, msgs[i].iov_base, msgs[i].iov_len);
    return rc;
}

/* Write message @p m at seq @p s of our batch; an exclusive commit is a
 * release store (the caller fences before its wake-up). @return 0 or
 * SHMBUS_ERR_OVERRUN, counted. */
static int vec_write_one(shmbus_pub *pub, uint64_t s, const struct iovec *m, uint64_t ts,
                         int64_t timeout_ns)
{
    int rc = pub_take(pub, s, timeout_ns);

    if (rc != 0)
        return pub_take_failed(pub, rc);
    return pub_fill(pub, s, m->iov_base, m->iov_len, ts, pub->pid, 0, memory_order_release);
}

/* End the seqs [@p s, @p end) of our batch that a failed message before
 * them leaves unwritten, as SKIPPED, each counted once. If our claim
 * stalled, the daemon may be ending them too (admin_claim.c
 * sb_admin_pub_end_rest()): each cell goes to whichever CAS lands first,
 * and a take that finds the daemon's SKIPPED counts nothing. */
static void vec_skip_rest(shmbus_pub *pub, uint64_t s, uint64_t end)
{
    struct sb_segment *seg = &pub->topic->seg;

    for (; s < end; s++) {
        int rc = pub_take(pub, s, 0);

        if (rc == 0)
            cell_settle(seg->hdr, sb_cell(seg, s), s, SB_ST_SKIPPED, pub, memory_order_release);
        else if (rc != PUB_TAKE_ENDED)
            /* relaxed: statistics only. */
            atomic_fetch_add_explicit(&seg->hdr->skipped, 1, memory_order_relaxed);
    }
}

/* One claim of k = min(n, room, capacity) seqs, one publish time, each
 * message taken, written and committed in turn, then one wake-up. A
 * message that fails ends the batch: the seqs after it are skipped. */
int shmbus_publish_vec(shmbus_pub *pub, const struct iovec *msgs, unsigned n, int64_t timeout_ns)
{
    uint64_t s, ts;
    uint32_t k, i;
    int rc = vec_check_args(pub, msgs, n);

    if (rc < 0 || n == 0)
        return rc;
    k = n < pub->topic->seg.g.capacity ? n : pub->topic->seg.g.capacity;
    ts = sb_real_ns(); /* before the claim, as in shmbus_publish() */
    rc = pub_claim(pub, &s, &k, timeout_ns);
    if (rc < 0)
        return rc;
    for (i = 0; i < k; i++) {
        /* Tests stop the process here: a message committed, more claimed. */
        if (i == 1)
            SB_FAULT_POINT("publish-vec-next");
        /* Only the first waits: a later cell's wait means a lapped writer
         * still in it, and the batch ends there instead. */
        rc = vec_write_one(pub, s + i, &msgs[i], ts, i == 0 ? timeout_ns : 0);
        if (rc < 0)
            break;
    }
    if (i < k)
        vec_skip_rest(pub, s + i + 1, s + k);
    /* seq_cst fence: orders the exclusive publisher's release commits
     * before the waiter load, the Dekker pair in sb_wake_readers() (a
     * sleeper's re-check that missed a commit precedes the fence in the
     * seq_cst order, so the load sees its count); the others' commits
     * are seq_cst CASes already. */
    if (pub->exclusive)
        atomic_thread_fence(memory_order_seq_cst);
    sb_wake_readers(pub->topic->seg.hdr, pub->quiet);
    pub_rec_idle(pub);
    if (i > 0)
        return (int)i;
    /* Given up on a cell because the topic was removed meanwhile. */
    return sb_topic_gone(&pub->topic->seg, memory_order_relaxed) ? SHMBUS_ERR_TOPIC_GONE : rc;
}

int sb_pub_publish_as(shmbus_pub *pub, const void *data, size_t len, int64_t timeout_ns,
                      uint64_t ts, uint32_t pid, uint64_t origin_seq)
{
    uint64_t s;
    int rc;

    /* 1 + seq must not wrap to 0, which means "published here". */
    if (origin_seq == UINT64_MAX)
        return SHMBUS_ERR_INVALID;
    rc = pub_check_args(pub, data, len);
    if (rc < 0)
        return rc;
    rc = pub_begin(pub, &s, timeout_ns);
    if (rc < 0)
        return rc;
    return pub_write(pub, s, data, len, ts, pid, origin_seq + 1);
}

int shmbus_pub_claim(shmbus_pub *pub, shmbus_claim *claim, int64_t timeout_ns)
{
    struct sb_segment *seg;
    uint64_t s;
    int rc;

    if (pub == NULL || claim == NULL || pub->open || pub->gen != sb_fork_gen())
        return SHMBUS_ERR_INVALID;
    seg = &pub->topic->seg;
    rc = pub_begin(pub, &s, timeout_ns);
    if (rc < 0)
        return rc;
    claim->data = sb_cell(seg, s) + 1;
    claim->capacity = seg->g.max_msg_size;
    claim->seq = s;
    pub->open = 1;
    pub->open_seq = s;
    return 0;
}

int shmbus_pub_commit(shmbus_pub *pub, shmbus_claim *claim, size_t len)
{
    struct sb_segment *seg;
    struct sb_shm_cell *c;
    int rc;

    if (pub == NULL || claim == NULL || !pub->open || claim->seq != pub->open_seq ||
        pub->gen != sb_fork_gen())
        return SHMBUS_ERR_INVALID;
    seg = &pub->topic->seg;
    /* Too long: the claim stays open so the caller can fix or abort it. */
    if (len > seg->g.max_msg_size)
        return SHMBUS_ERR_TOO_BIG;
    c = sb_cell(seg, claim->seq);
    pub->open = 0;
    if (pub_claim_lost(pub, c, claim->seq)) {
        rc = SHMBUS_ERR_OVERRUN;
    } else {
        cell_write_header(c, sb_real_ns(), (uint32_t)len, pub->pid, 0);
        rc = cell_finish(seg->hdr, c, claim->seq, SB_ST_COMMITTED, pub);
    }
    pub_rec_idle(pub);
    return rc;
}

int shmbus_pub_abort(shmbus_pub *pub, shmbus_claim *claim)
{
    struct sb_segment *seg;
    int rc;

    if (pub == NULL || claim == NULL || !pub->open || claim->seq != pub->open_seq ||
        pub->gen != sb_fork_gen())
        return SHMBUS_ERR_INVALID;
    seg = &pub->topic->seg;
    pub->open = 0;
    rc = cell_finish(seg->hdr, sb_cell(seg, claim->seq), claim->seq, SB_ST_SKIPPED, pub);
    pub_rec_idle(pub);
    /* Overtaken or not, the claim is gone and readers skip it. */
    return rc == SHMBUS_ERR_OVERRUN ? 0 : rc;
}

void sb_pub_quiet(shmbus_pub *pub, uint32_t weight)
{
    pub->quiet = weight;
}
