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
 * last seq would stall readers forever. We hold the token now, so nobody
 * else writes: end that seq as SKIPPED unless it was committed. */
static void pub_settle_dead_holder(const struct sb_segment *seg)
{
    /* relaxed, both: the holder's process has exited (the kernel dropped
     * its lock before ours was granted, a full barrier on both sides). */
    uint64_t t = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed), v;
    struct sb_shm_cell *c;

    if (t == 0)
        return;
    c = sb_cell(seg, t - 1);
    v = atomic_load_explicit(&c->stamp, memory_order_relaxed);
    if (SB_STAMP_SEQ(v) != t - 1 || SB_STAMP_ST(v) == SB_ST_BUSY || SB_STAMP_ST(v) == SB_ST_EMPTY) {
        /* seq_cst: a state readers wait for; before the waiter load. */
        atomic_store_explicit(&c->stamp, SB_STAMP(t - 1, SB_ST_SKIPPED), memory_order_seq_cst);
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

static int pub_claim_reliable(shmbus_pub *p, uint64_t *seq, int64_t timeout_ns)
{
    _Atomic uint64_t *tail = &p->topic->seg.hdr->tail;
    uint64_t deadline = 0;
    /* seq_cst: as in sb_pub_wait_space(); then a guess for the CAS below. */
    uint64_t s = atomic_load_explicit(tail, memory_order_seq_cst);

    for (;;) {
        if (s >= p->limit && s >= sb_pub_refresh_limit(p, s)) {
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
        /* seq_cst: ordered after the seq_cst gate loads of the last refresh,
         * which a joining subscriber's seq_cst tail read is ordered against
         * (gate.c sb_seat()); on failure s is reloaded (seq_cst, as above). */
        if (atomic_compare_exchange_weak_explicit(tail, &s, s + 1, memory_order_seq_cst,
                                                  memory_order_seq_cst)) {
            *seq = s;
            return 0;
        }
    }
}

/* The exclusive publisher is the tail's only writer: no RMW. */
static int pub_claim_exclusive(shmbus_pub *p, uint64_t *seq, int64_t timeout_ns)
{
    _Atomic uint64_t *tail = &p->topic->seg.hdr->tail;
    /* relaxed: our own last store. */
    uint64_t s = atomic_load_explicit(tail, memory_order_relaxed), deadline = 0;

    if (p->topic->seg.g.mode == SHMBUS_RELIABLE) {
        while (s >= p->limit && s >= sb_pub_refresh_limit(p, s)) {
            int rc = sb_pub_wait_space(p, &s, timeout_ns, &deadline);
            if (rc < 0)
                return rc;
        }
        /* seq_cst: ordered after the gate loads of the last refresh, as
         * the CAS in pub_claim_reliable() (gate.c sb_seat()). */
        atomic_store_explicit(tail, s + 1, memory_order_seq_cst);
    } else {
        /* relaxed: as the lossy fetch_add in pub_claim_seq(). */
        atomic_store_explicit(tail, s + 1, memory_order_relaxed);
    }
    *seq = s;
    return 0;
}

static int pub_claim_seq(shmbus_pub *p, uint64_t *seq, int64_t timeout_ns)
{
    if (p->exclusive)
        return pub_claim_exclusive(p, seq, timeout_ns);
    if (p->topic->seg.g.mode == SHMBUS_RELIABLE)
        return pub_claim_reliable(p, seq, timeout_ns);
    /* release: the RMW alone makes every seq unique, and what a reader
     * may see of the cell is ordered by the cell's stamp; release orders
     * our record's CLAIMING before it for the daemon, which reads the tail
     * (acquire) before the records (pub_rec_claiming()). */
    *seq = atomic_fetch_add_explicit(&p->topic->seg.hdr->tail, 1, memory_order_release);
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

/* Take the cell for seq @p s: 0 if we own it (stamp BUSY(s)), or
 * SHMBUS_ERR_OVERRUN if we may not write it: a newer seq owns it; or an
 * older writer still does, and our seq is left in the stamp (BUSY) for it
 * to turn into SKIPPED. A reliable publisher first waits for the previous
 * writer, which may be writing without a mark, up to its timeout; if it
 * gives up on a cell nobody owns, it skips its seq itself. A stamp that
 * cannot be there is overwritten rather than waited for. */
static int cell_take(const struct sb_segment *seg, uint64_t s, int64_t timeout_ns)
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
            return SHMBUS_ERR_OVERRUN;
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

/* Did the daemon end our claim on @p s (stall timeout, admin.c
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

/* End our ownership of the cell for seq @p s with state @p st. If the
 * stamp is no longer our BUSY(s), a newer claim found us writing and left
 * its seq (our message is dropped and the cell handed on), or the daemon
 * ended our claim (stall timeout; dropped, and the cell is not ours). */
static int cell_finish(struct sb_shm_header *h, struct sb_shm_cell *c, uint64_t s, uint32_t st,
                       const shmbus_pub *p)
{
    uint64_t expect = SB_STAMP(s, SB_ST_BUSY);
    int rc = 0;

    if (p->exclusive) {
        /* seq_cst: as the CAS below, with nobody to race with. */
        atomic_store_explicit(&c->stamp, SB_STAMP(s, st), memory_order_seq_cst);
        if (st == SB_ST_SKIPPED)
            atomic_fetch_add_explicit(&h->skipped, 1, memory_order_relaxed);
        sb_wake_readers(h, p->quiet);
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
    sb_wake_readers(h, p->quiet);
    return rc;
}

/*
 * The publisher record's claim word (layout.h), for the daemon to end the
 * claim of a publisher that dies between claim and commit. Exclusive
 * publishers skip it (the daemon settles their topic through the token).
 * Each store is relaxed and ordered by the release operation after it:
 * CLAIMING by the tail RMW, the seq by the cell's seq_cst CAS, IDLE by
 * itself (release, after the commit CAS). A dead process's stores are all
 * visible to the daemon anyway; the orders matter for live publishers,
 * whose records the daemon reads to know that a claim is not theirs.
 */
static void pub_rec_claiming(shmbus_pub *p)
{
    atomic_store_explicit(&p->rec->claim, SB_CLAIM_CLAIMING | p->next_min, memory_order_relaxed);
}

static void pub_rec_claimed(shmbus_pub *p, uint64_t s)
{
    atomic_store_explicit(&p->rec->claim, s, memory_order_relaxed);
    p->next_min = s + 1;
}

static void pub_rec_idle(shmbus_pub *p)
{
    if (!p->exclusive)
        atomic_store_explicit(&p->rec->claim, SB_CLAIM_IDLE, memory_order_release);
}

/* Claim a seq and take its cell: every writer marks the cell BUSY, which
 * keeps writers apart (one that lapped while nobody gated, or gave up
 * waiting, can always tell a writer is at work) and lets lossy readers
 * detect an overwrite. On OVERRUN nothing is open. */
static int pub_begin(shmbus_pub *p, uint64_t *seq, int64_t timeout_ns)
{
    struct sb_segment *seg = &p->topic->seg;
    int rc;

    if (sb_topic_gone(seg, memory_order_relaxed))
        return SHMBUS_ERR_TOPIC_GONE;
    if (!p->exclusive)
        pub_rec_claiming(p);
    rc = pub_claim_seq(p, seq, timeout_ns);
    if (rc < 0) {
        pub_rec_idle(p);
        return rc;
    }
    if (p->exclusive) {
        /* We wrote the cell's previous message and nobody else writes: a
         * plain mark suffices. relaxed + release fence: BUSY before our
         * payload, for lossy readers' check (read.c cell_unchanged()). */
        atomic_store_explicit(&sb_cell(seg, *seq)->stamp, SB_STAMP(*seq, SB_ST_BUSY),
                              memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        SB_FAULT_POINT("publish-claimed");
        return 0;
    }
    /* Tests stop the process here: claimed, neither recorded nor marked. */
    SB_FAULT_POINT("publish-unrecorded");
    pub_rec_claimed(p, *seq);
    rc = cell_take(seg, *seq, timeout_ns);
    if (rc < 0) {
        /* relaxed, both: statistics only. */
        atomic_fetch_add_explicit(&seg->hdr->overruns, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&seg->hdr->skipped, 1, memory_order_relaxed);
        sb_wake_readers(seg->hdr, p->quiet);
        pub_rec_idle(p);
        /* Given up on a cell because the topic was removed meanwhile. */
        return sb_topic_gone(seg, memory_order_relaxed) ? SHMBUS_ERR_TOPIC_GONE : rc;
    }
    /* Tests stop the process here to kill it between claim and commit. */
    SB_FAULT_POINT("publish-claimed");
    return 0;
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
 * header saying @p ts, @p pid and @p origin. @return as shmbus_publish(). */
static inline int pub_write(shmbus_pub *pub, uint64_t s, const void *data, size_t len, uint64_t ts,
                            uint32_t pid, uint64_t origin)
{
    struct sb_segment *seg = &pub->topic->seg;
    struct sb_shm_cell *c = sb_cell(seg, s);
    int rc;

    if (len > 0)
        memcpy(c + 1, data, len);
    if (pub_claim_lost(pub, c, s)) {
        rc = SHMBUS_ERR_OVERRUN;
    } else {
        cell_write_header(c, ts, (uint32_t)len, pid, origin);
        rc = cell_finish(seg->hdr, c, s, SB_ST_COMMITTED, pub);
    }
    pub_rec_idle(pub);
    return rc;
}

/* The checks every publish makes first. @return 0 or an error. */
static inline int pub_check_args(const shmbus_pub *pub, const void *data, size_t len)
{
    /* A fork child's copy: the record and the token are the parent's. */
    if (pub == NULL || (data == NULL && len > 0) || pub->open || pub->gen != sb_fork_gen())
        return SHMBUS_ERR_INVALID;
    if (len > pub->topic->seg.g.max_msg_size)
        return SHMBUS_ERR_TOO_BIG;
    return 0;
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

int shmbus_publish_vec(shmbus_pub *pub, const struct iovec *msgs, unsigned n, int64_t timeout_ns)
{
    unsigned k;
    int rc = 0;

    if (pub == NULL || (msgs == NULL && n > 0))
        return SHMBUS_ERR_INVALID;
    for (k = 0; k < n; k++)
        if (msgs[k].iov_len > pub->topic->seg.g.max_msg_size)
            return SHMBUS_ERR_TOO_BIG;
    for (k = 0; k < n; k++) {
        rc = shmbus_publish(pub, msgs[k].iov_base, msgs[k].iov_len, k == 0 ? timeout_ns : 0);
        if (rc < 0)
            break;
    }
    return k > 0 ? (int)k : rc;
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
