/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JetStream importer's order per origin (order.c): pure bookkeeping,
 * no I/O. For each (origin, epoch) of one topic it remembers the seqs it
 * delivered into the local ring since it began tracking, and judges each
 * message JetStream hands over from its Shmbus-Seq and Shmbus-Prev: the
 * next in its origin's order is delivered; one already delivered is a
 * duplicate; one whose predecessor has not come yet waits (the importer
 * naks it with a delay), for at most the tracker's wait, after which it is
 * delivered and the missing predecessor counted as a gap. A seq older than
 * anything tracked (the daemon restarted, or the key was evicted) cannot
 * be judged from memory: the importer asks the ring (sb_relay_imported_held).
 * Bounded: SBF_ORDER_KEYS keys a topic, the least recently used evicted.
 * One thread owns a tracker (the importer's); nothing here is shared.
 */
#ifndef SHMBUSD_FED_ORDER_H
#define SHMBUSD_FED_ORDER_H

#include <stddef.h>
#include <stdint.h>

/* (origin, epoch) pairs tracked per topic: the buses that export it,
 * times the generations of the topic still in flight. */
#define SBF_ORDER_KEYS 32u
/* Longest origin name (shmbusd --nats-origin). */
#define SBF_ORDER_ORIGIN_MAX 63u

/* What to do with a message (sbf_order_judge()). */
enum sbf_order_verdict {
    SBF_ORDER_DELIVER, /* write it into the ring, then sbf_order_delivered() */
    SBF_ORDER_DUP,     /* delivered already, or passed by after its wait: ack, drop */
    SBF_ORDER_WAIT,    /* its predecessor has not come: nak with a delay */
    SBF_ORDER_UNKNOWN, /* older than anything tracked: the ring decides */
    SBF_ORDER_BAD      /* Shmbus-Prev not below Shmbus-Seq: refuse it */
};

/* One message's place in its origin's order, from its headers. */
struct sbf_order_msg {
    const char *origin; /* Shmbus-Origin, not NUL-terminated */
    size_t origin_len;  /* 1..SBF_ORDER_ORIGIN_MAX */
    uint64_t epoch;     /* Shmbus-Epoch */
    uint64_t seq;       /* Shmbus-Seq */
    int has_prev;       /* Shmbus-Prev present */
    uint64_t prev;      /* Shmbus-Prev */
    /* The importer cannot have delivered this message's predecessor
     * before it started (its consumer is new), or the predecessor may be
     * among messages delivered to a dead daemon that come again only after
     * the consumer's ack wait. Set, a message with a predecessor whose key
     * has nothing delivered waits for it (for the tracker's wait at most)
     * instead of going first. */
    int hold_fresh;
    /* Delivered to an earlier daemon and delivered again now: where it
     * stands against what the earlier daemon delivered after it is not
     * known, so a key whose last it is waits on it only while the
     * importer holds (hold_fresh), never the tracker's whole wait. */
    int stale;
};

/* One key's memory. */
struct sbf_order_key {
    char origin[SBF_ORDER_ORIGIN_MAX + 1];
    size_t origin_len; /* 0: the entry is free */
    uint64_t epoch;
    uint64_t first;      /* the lowest seq delivered since tracked */
    uint64_t last;       /* the highest seq delivered */
    int empty;           /* nothing delivered yet: made to time a first's wait */
    int unsure;          /* last is a stale message's (sbf_order_msg.stale) */
    uint64_t wait_since; /* when a successor began to wait for a predecessor */
    int waiting;         /* wait_since is set */
    /* The lowest seq told to wait since the key's last passed it: when a
     * wait ends, that message goes first and a higher one that would go
     * past its own missing predecessor waits for it (the tracker's wait at
     * most, from defer_since), so the end of a wait never lets a later
     * message overtake an earlier one still in its nak delay (which would
     * then be judged a duplicate and lost). */
    uint64_t low;
    int has_low;
    uint64_t defer_since;
    int deferring; /* defer_since is set */
    uint64_t used; /* the tracker's tick when last judged or delivered */
};

/* One topic's tracker. Zero it, then set wait_ns. */
struct sbf_order {
    struct sbf_order_key key[SBF_ORDER_KEYS];
    uint64_t tick;    /* counts uses, for the least recently used */
    uint64_t wait_ns; /* how long a successor waits for its predecessor */
    uint64_t evicted; /* keys evicted for room */
};

/* Judge @p m at monotonic time @p now_ns (any clock that does not go back).
 * A SBF_ORDER_WAIT starts the key's wait if none runs; a SBF_ORDER_DELIVER
 * after the wait ran out sets *@p gap to 1 (the predecessor: how many
 * messages it stood for cannot be known), else 0. Does not record the
 * delivery: call sbf_order_delivered() once the ring has the message. */
enum sbf_order_verdict sbf_order_judge(struct sbf_order *o, const struct sbf_order_msg *m,
                                       uint64_t now_ns, uint64_t *gap);

/* Record that @p m is in the ring: the key is created if new (evicting the
 * least recently used when all SBF_ORDER_KEYS are taken) and its wait ends.
 * A message delivered below the key's last (a SBF_ORDER_UNKNOWN the ring
 * did not hold) leaves the key's range as it was. */
void sbf_order_delivered(struct sbf_order *o, const struct sbf_order_msg *m);

#endif
