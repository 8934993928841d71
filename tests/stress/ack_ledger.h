/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ledger of an acknowledging consumer group (SHMBUS_SUB_ACK), kept by
 * the stress tests that SIGKILL its members (stress_ack.c, chaos): per
 * seq, what the members and the dead-letter reader reported through a
 * shared mapping; the seq a member was acknowledging when it was killed
 * (its ack may or may not have happened); and the group's pending table,
 * read from the segment. The accounting at the end puts every message in
 * exactly one place: acknowledged, dead-lettered or still pending, and
 * explains every redelivery of a message that was never nacked by a kill.
 */
#ifndef SHMBUS_TESTS_ACK_LEDGER_H
#define SHMBUS_TESTS_ACK_LEDGER_H

#include "testutil.h"

#include <stdatomic.h>
#include <sys/mman.h>

#include "segfile.h"
#include "shm/segment.h"

/* Deliveries the ledger tells apart (bits of ak_seq.seen): the tests'
 * groups allow at most this many. */
#define AK_DELIVERIES_MAX 8u

/* ak_seq.info */
#define AK_POISON    1u                   /* poison: members nack it every time */
#define AK_NACKED    2u                   /* a member nacked it (poison, or put aside) */
#define AK_REASON(i) ((uint32_t)(i) >> 4) /* its dead letter's reason */

/* One seq. Written by members and the dead-letter reader (RMWs: several
 * processes may report the same seq), read by the parent once they are
 * gone or quiet. */
struct ak_seq {
    _Atomic uint8_t acks; /* shmbus_ack() returned 0 for it */
    _Atomic uint8_t dead; /* read back from the dead-letter topic */
    _Atomic uint8_t seen; /* bit d - 1: a member got it as its d-th delivery */
    _Atomic uint8_t info; /* AK_POISON | AK_NACKED | dead-letter reason << 4 */
};

/* A member's hand, in the shared mapping: the seq it is acknowledging. */
struct ak_hand {
    _Atomic uint64_t acking; /* seq + 1 from just before shmbus_ack() to after it; else 0 */
};

/* Is payload @p index of publisher @p publisher a poison message (one
 * in @p one_in, spread by a hash)? Members nack it every time. */
static inline int ak_is_poison(uint32_t publisher, uint64_t index, unsigned one_in)
{
    uint64_t h = (index + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)publisher * 0xbf58476d1ce4e5b9ull;

    return (h >> 40) % one_in == 0;
}

/* A shared ledger for @p nseqs seqs (pages are touched on use). */
static inline struct ak_seq *ak_ledger_map(uint64_t nseqs)
{
    void *p = mmap(NULL, nseqs * sizeof(struct ak_seq), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    assert_true(p != MAP_FAILED);
    return p;
}

static inline void ak_ledger_unmap(struct ak_seq *l, uint64_t nseqs)
{
    munmap(l, nseqs * sizeof(struct ak_seq));
}

/* A member got @p seq as its @p deliveries-th delivery. @return 0, or 1 if
 * that delivery of that seq was seen before (delivered twice as the same
 * delivery). The caller checked @p deliveries against the group's limit. */
static inline int ak_took(struct ak_seq *e, uint32_t deliveries)
{
    uint8_t bit = (uint8_t)(1u << (deliveries - 1));

    /* relaxed: the RMW alone decides who saw it first; the parent reads
     * the ledger after reaping or quieting every writer. */
    return (atomic_fetch_or_explicit(&e->seen, bit, memory_order_relaxed) & bit) != 0;
}

/* Before shmbus_ack(@p seq): a kill from here on leaves the question open. */
static inline void ak_hand_acking(struct ak_hand *h, uint64_t seq)
{
    /* relaxed: the parent reads it after it reaped the member it killed. */
    atomic_store_explicit(&h->acking, seq + 1, memory_order_relaxed);
}

/* shmbus_ack() returned 0 for the seq in hand: record it, close the hand.
 * @return the seq's acknowledgements before this one (0 for a first). */
static inline unsigned ak_hand_acked(struct ak_hand *h, struct ak_seq *e)
{
    /* relaxed, both: see ak_took() and ak_hand_acking(). */
    unsigned before = atomic_fetch_add_explicit(&e->acks, 1, memory_order_relaxed);

    atomic_store_explicit(&h->acking, 0, memory_order_relaxed);
    return before;
}

/* The parent, after reaping a member it killed: the seq it was
 * acknowledging, + 1 (0: none); the hand is emptied for the next member. */
static inline uint64_t ak_hand_take(struct ak_hand *h)
{
    /* relaxed: the member was reaped (waitpid orders its stores). */
    return atomic_exchange_explicit(&h->acking, 0, memory_order_relaxed);
}

/* A member is about to nack @p e, poison or not. */
static inline void ak_mark_nacked(struct ak_seq *e, int poison)
{
    /* relaxed: see ak_took(). */
    atomic_fetch_or_explicit(&e->info, (uint8_t)(AK_NACKED | (poison ? AK_POISON : 0)),
                             memory_order_relaxed);
}

/* Was @p e nacked? A member marks it before its nack, which comes before
 * the daemon's dead letter: the reader of that dead letter sees the mark. */
static inline int ak_was_nacked(const struct ak_seq *e)
{
    /* relaxed: ordered by the nack's CAS, the daemon's publish (release)
     * and the reader's receive (acquire). */
    return (atomic_load_explicit(&e->info, memory_order_relaxed) & AK_NACKED) != 0;
}

/* The dead-letter reader read @p e with @p reason. @return the dead
 * letters of that seq before this one (0 for a first). */
static inline unsigned ak_dead(struct ak_seq *e, uint32_t reason)
{
    /* relaxed, both: see ak_took(). */
    atomic_fetch_or_explicit(&e->info, (uint8_t)((reason & 15u) << 4), memory_order_relaxed);
    return atomic_fetch_add_explicit(&e->dead, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ the segment */

/* A pending entry, as read from the segment. */
struct ak_pend {
    uint64_t seq;
    uint32_t state; /* SB_PEND_HELD, _RETURNED or _DEAD */
    uint32_t deliveries;
};

/* A group's pending table and counters, read from the segment. */
struct ak_table {
    uint32_t max_deliveries;
    uint32_t n; /* entries HELD, RETURNED or DEAD */
    uint32_t held, returned, dead;
    uint32_t ripe;   /* RETURNED with deliveries >= max_deliveries: the daemon's to move */
    uint64_t cursor; /* the next seq the group hands out (UINT64_MAX: being seated) */
    uint64_t lost, redelivered, dead_lettered, dead_letter_failed;
    struct ak_pend e[SB_ACK_ENTRIES];
};

/* A group's counters and position into @p out. */
static inline void ak_table_group(const struct sb_shm_group *g, struct ak_table *out)
{
    /* relaxed, all: a snapshot; the callers wait for it to be stable. */
    uint64_t w = atomic_load_explicit(&g->cursor, memory_order_relaxed);

    out->cursor = (w & SB_GRP_SEATING) ? UINT64_MAX : SB_GRP_SEQ(w);
    out->max_deliveries = atomic_load_explicit(&g->max_deliveries, memory_order_relaxed);
    out->lost = atomic_load_explicit(&g->lost, memory_order_relaxed);
    out->redelivered = atomic_load_explicit(&g->redelivered, memory_order_relaxed);
    out->dead_lettered = atomic_load_explicit(&g->dead_lettered, memory_order_relaxed);
    out->dead_letter_failed = atomic_load_explicit(&g->dead_letter_failed, memory_order_relaxed);
}

/* Pending entry @p pe into @p out, if it holds a message. */
static inline void ak_table_entry(const struct sb_shm_pending *pe, struct ak_table *out)
{
    /* acquire: the word as the last CAS left it, then its seq (stored
     * before the CAS that published the word). */
    uint64_t w = atomic_load_explicit(&pe->word, memory_order_acquire);
    uint32_t st = SB_PEND_ST(w);
    struct ak_pend *p = &out->e[out->n];

    if (st != SB_PEND_HELD && st != SB_PEND_RETURNED && st != SB_PEND_DEAD)
        return;
    /* relaxed: ordered by the acquire load of the word. */
    p->seq = atomic_load_explicit(&pe->seq, memory_order_relaxed);
    p->state = st;
    p->deliveries = SB_PEND_DELIVERIES(w);
    out->n++;
    out->held += st == SB_PEND_HELD;
    out->returned += st == SB_PEND_RETURNED;
    out->dead += st == SB_PEND_DEAD;
    out->ripe += st == SB_PEND_RETURNED && p->deliveries >= out->max_deliveries;
}

/* Read group @p group of topic @p topic of bus @p bus from its segment
 * (generation 0: the tests' names are never squatted), mapped and checked
 * as any attacher does (sb_segment_attach()), into @p out. Safe in a
 * child (no cmocka assertion: a child's failed assertion would run the
 * parent's teardown). @return 0; the attach's error; or
 * -ENOENT if the topic has no such group with a table. */
static inline int ak_table_try(const char *bus, const char *topic, const char *group,
                               struct ak_table *out)
{
    char name[SHMBUS_NAME_MAX + 1];
    struct sb_segment seg;
    const struct sb_shm_group *g = NULL;
    uint32_t gi;
    int rc;

    sbd_seg_name(name, sizeof(name), bus, topic, 0);
    rc = sb_segment_attach(name, &seg);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof(*out));
    for (gi = 0; gi < seg.g.max_groups; gi++) {
        g = &seg.groups[gi];
        if (strncmp(g->name, group, SB_GROUP_NAME_LEN) == 0)
            break;
    }
    if (gi == seg.g.max_groups || seg.g.ack_entries != SB_ACK_ENTRIES) {
        sb_segment_unmap(&seg);
        return -ENOENT;
    }
    ak_table_group(g, out);
    for (uint32_t i = 0; i < SB_ACK_ENTRIES; i++)
        ak_table_entry(sb_pending(&seg, gi, i), out);
    sb_segment_unmap(&seg);
    return 0;
}

/* As ak_table_try(), in the test's own process: fails the test on an error. */
static inline void ak_table_read(const char *bus, const char *topic, const char *group,
                                 struct ak_table *out)
{
    int rc = ak_table_try(bus, topic, group, out);

    if (rc < 0)
        fail_msg("%s, group %s: reading its pending table: %s", topic, group, shmbus_strerror(rc));
}

/* Is the table at rest with no member left: nothing held (the daemon
 * returned the dead members' messages), nothing for the daemon to move to
 * the dead-letter topic? */
static inline int ak_table_at_rest(const struct ak_table *t)
{
    return t->held == 0 && t->dead == 0 && t->ripe == 0;
}

/* --------------------------------------------------------- the accounting */

/* What the accounting found. */
struct ak_sums {
    uint64_t messages;          /* seqs that are messages */
    uint64_t acked;             /* acknowledged (by a killed member: in hand at its kill) */
    uint64_t dead;              /* dead-lettered */
    uint64_t pending;           /* still in the table */
    uint64_t poison;            /* of all, poison (nacked every time) */
    uint64_t poison_dead;       /* of them, dead-lettered */
    uint64_t twice;             /* acknowledged in hand by a killed member, and again by another */
    uint64_t returns;           /* deliveries after the first of messages never nacked (kills) */
    uint64_t seen_redeliveries; /* deliveries after the first that members saw */
    uint64_t dead_unnacked;     /* dead-lettered though never nacked: died in hand */
    uint64_t dead_twice;        /* dead-lettered twice (the daemon killed in between) */
};

/* Is seq @p seq a message (not a claim the daemon ended)? */
typedef int (*ak_is_msg_fn)(uint64_t seq, void *arg);

/* The inputs of the accounting. */
struct ak_books {
    const struct ak_seq *l;
    uint64_t published; /* seqs [0, published) */
    ak_is_msg_fn is_msg;
    void *arg;
    const uint64_t *in_hand; /* seqs killed members were acknowledging (sorted) */
    size_t n_in_hand;
    /* Seqs that may be dead-lettered twice: a daemon killed (SIGKILL)
     * between publishing a dead letter and freeing its entry publishes it
     * again when the next one adopts the topic. */
    uint64_t dead_twice_max;
    const struct ak_table *tab;
};

static inline int ak_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static inline int ak_in_hand(const struct ak_books *b, uint64_t seq)
{
    return b->n_in_hand > 0 &&
           bsearch(&seq, b->in_hand, b->n_in_hand, sizeof(seq), ak_u64_cmp) != NULL;
}

static inline int ak_pending_has(const struct ak_table *t, uint64_t seq)
{
    int n = 0;

    for (uint32_t i = 0; i < t->n; i++)
        n += t->e[i].seq == seq;
    return n;
}

/* Highest delivery seen of a seen-mask. */
static inline uint32_t ak_top(uint8_t seen)
{
    return seen == 0 ? 0 : 32u - (uint32_t)__builtin_clz((uint32_t)seen);
}

/* One seq into @p s. @return 0, or -1 with @p why filled. */
static inline int ak_account_one(const struct ak_books *b, uint64_t seq, struct ak_sums *s,
                                 char *why, size_t cap)
{
    const struct ak_seq *e = &b->l[seq];
    /* relaxed, all: every writer is gone or quiet (see ak_took()). */
    unsigned acks = atomic_load_explicit(&e->acks, memory_order_relaxed);
    unsigned dead = atomic_load_explicit(&e->dead, memory_order_relaxed);
    uint8_t seen = atomic_load_explicit(&e->seen, memory_order_relaxed);
    unsigned info = atomic_load_explicit(&e->info, memory_order_relaxed);
    int pend = ak_pending_has(b->tab, seq), hand = ak_in_hand(b, seq);
    int places = (acks > 0) + (dead > 0) + (pend > 0);

    if (!b->is_msg(seq, b->arg)) {
        if (acks || dead || seen || pend || hand)
            goto bad;
        return 0;
    }
    s->messages++;
    if (acks > 1 || dead > 2 || pend > 1 || places > 1 || (places == 0 && !hand))
        goto bad;
    s->dead_twice += dead > 1;
    s->acked += acks > 0 || places == 0;
    s->dead += dead > 0;
    s->pending += pend > 0;
    s->twice += hand && acks > 0;
    s->poison += (info & AK_POISON) != 0;
    s->poison_dead += (info & AK_POISON) && dead;
    s->seen_redeliveries += (uint64_t)__builtin_popcount(seen & ~1u);
    if (!(info & AK_NACKED)) {
        /* Never nacked: each delivery after the first followed a kill (a
         * dead-lettered one: its last delivery died too). */
        s->returns += dead ? b->tab->max_deliveries : (ak_top(seen) ? ak_top(seen) - 1 : 0);
        s->dead_unnacked += dead > 0;
    }
    return 0;
bad:
    snprintf(why, cap,
             "seq %llu (%s): acknowledged %u times%s, dead-lettered %u times, %d times in the "
             "pending table, deliveries seen 0x%x%s%s",
             (unsigned long long)seq, b->is_msg(seq, b->arg) ? "a message" : "no message", acks,
             hand ? " (+ in hand at a kill)" : "", dead, pend, seen,
             info & AK_POISON ? ", poison" : "", info & AK_NACKED ? ", nacked" : "");
    return -1;
}

/* Account for every seq of @p b: each message acknowledged (by a member
 * whose ack returned 0, or by a member killed with it in hand and nowhere
 * else since), dead-lettered or pending, exactly one of them; no seq
 * acknowledged or dead-lettered twice; nothing for what is no message.
 * @return 0, or -1 with @p why filled. */
static inline int ak_account(const struct ak_books *b, struct ak_sums *s, char *why, size_t cap)
{
    memset(s, 0, sizeof(*s));
    for (uint32_t i = 0; i < b->tab->n; i++) {
        if (b->tab->e[i].seq >= b->published) {
            snprintf(why, cap, "pending seq %llu beyond the %llu published",
                     (unsigned long long)b->tab->e[i].seq, (unsigned long long)b->published);
            return -1;
        }
    }
    for (uint64_t seq = 0; seq < b->published; seq++)
        if (ak_account_one(b, seq, s, why, cap) < 0)
            return -1;
    if (s->dead_twice > b->dead_twice_max) {
        snprintf(why, cap, "%llu seqs dead-lettered twice, at most %llu allowed",
                 (unsigned long long)s->dead_twice, (unsigned long long)b->dead_twice_max);
        return -1;
    }
    if (s->acked + s->dead + s->pending != s->messages) {
        snprintf(why, cap, "acknowledged %llu + dead-lettered %llu + pending %llu != %llu",
                 (unsigned long long)s->acked, (unsigned long long)s->dead,
                 (unsigned long long)s->pending, (unsigned long long)s->messages);
        return -1;
    }
    return 0;
}

#endif
