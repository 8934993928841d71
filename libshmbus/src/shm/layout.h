/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared-memory layout of a topic segment. Every struct that lives in shared
 * memory is defined here, with fixed-width fields only, explicit padding and
 * static_asserts on its size and every offset. Nothing in shared memory is a
 * pointer: regions are found by offsets from the mapping base.
 *
 *   [ header 640 B | slots: max_subs x 128 B | groups: max_groups x 128 B |
 *     publisher records: max_pubs x 128 B |
 *     pending tables: max_groups x (192 B + ack_entries x 32 B), reliable |
 *     cells: capacity x cell_size ]
 *
 * Fields written by different parties sit on separate 128-byte blocks so
 * that neither a line nor its adjacent-line prefetch pair is shared.
 */
#ifndef SHMBUS_SHM_LAYOUT_H
#define SHMBUS_SHM_LAYOUT_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
              "shm atomics must be lock-free");
static_assert(sizeof(_Atomic uint64_t) == 8 && sizeof(_Atomic uint32_t) == 4,
              "atomics must have the size of their plain types");

#define SB_SHM_MAGIC      0x3130535542484d53ull /* "SHMBUS01", little-endian */
#define SB_LAYOUT_MAJOR   7u /* 7: wake-pending word; batch claims (pubrec claim_end) */
#define SB_LAYOUT_MINOR   0u
#define SB_LAYOUT_VERSION ((SB_LAYOUT_MAJOR << 16) | SB_LAYOUT_MINOR)
#define SB_LINE           64u
#define SB_BLOCK          128u /* a line and its prefetch pair */

/* Bounds on every length an attacher accepts. */
#define SB_CAPACITY_MIN 2u
#define SB_CAPACITY_MAX (1u << 24)
#define SB_MAX_MSG_MAX  (16u << 20)
#define SB_SUBS_MAX     1024u
#define SB_GROUPS_MAX   256u
#define SB_PUBS_MAX     1024u

/* The segment header. The creator fills in everything, then stores version
 * last with release; an attacher load-acquires version first. */
struct sb_shm_header {
    /* block 0: identity and geometry, written once before version */
    uint64_t magic;
    _Atomic uint32_t version;
    uint32_t header_len;
    uint64_t total_len;
    uint32_t capacity;  /* cells, power of two */
    uint32_t cell_size; /* bytes, multiple of SB_LINE */
    uint32_t max_msg_size;
    uint32_t mode;
    uint32_t max_subs;
    uint32_t max_groups;
    uint64_t slots_off;
    uint64_t groups_off;
    uint64_t cells_off;
    uint64_t create_time_ns;
    uint32_t creator_pid;
    uint32_t flags; /* SHMBUS_TOPIC_* */
    uint32_t max_pubs;
    uint32_t pad0;
    uint64_t pubs_off;
    uint32_t stall_timeout_ms; /* reliable: evict what stalls publishers this long; 0 never */
    /* 1 once the daemon removed the topic for good: its handles fail with
     * SHMBUS_ERR_TOPIC_GONE. Written once; read on every publish and poll. */
    _Atomic uint32_t gone;
    uint64_t acks_off;    /* the groups' pending tables (struct sb_shm_acktab), in order */
    uint32_t ack_entries; /* pending entries per group: SB_ACK_ENTRIES reliable, 0 lossy */
    uint32_t pad1;
    /* block 1: next sequence number to claim; written by publishers only */
    _Atomic uint64_t tail;
    uint8_t pad2[SB_BLOCK - 8];
    /* block 2: subscribers' sleep: futex word bumped on wake, sleeper count,
     * the futex value the woken delegate last broadcast, and 1 while a
     * publisher's wake-up is under way that no sleeper has run since (a
     * publisher wakes only if it moves it from 0 to 1; ring.h) */
    _Atomic uint32_t data_futex;
    _Atomic uint32_t data_waiters;
    _Atomic uint32_t data_bcast;
    _Atomic uint32_t data_pending;
    uint8_t pad3[SB_BLOCK - 16];
    /* block 3: reliable publishers' sleep when the ring is full */
    _Atomic uint32_t space_futex;
    _Atomic uint32_t space_waiters;
    uint8_t pad4[SB_BLOCK - 8];
    /* block 4: rarely written counters */
    _Atomic uint64_t overruns;   /* lossy claims overtaken by a newer message */
    _Atomic uint64_t skipped;    /* claims aborted, overtaken, or unblocked */
    _Atomic uint32_t excl_owner; /* exclusive topics: pid of the one publisher, or 0 */
    uint32_t pad5;
    _Atomic uint64_t unblocked; /* claims the daemon ended: dead publishers', or held past
                                   the stall timeout */
    _Atomic uint64_t reaped;    /* slots and records of dead processes freed */
    _Atomic uint64_t evicted;   /* subscribers evicted for stalling publishers */
    _Atomic uint64_t abandoned; /* group messages taken by members that died or were
                                   evicted holding them */
    /* Readers seated (plain joiners, groups seated anew): bumped before
     * each seat's scan, so that a publisher whose own gate scan saw it
     * move scans again (ring/gate.c). */
    _Atomic uint64_t joins;
    uint8_t pad6[SB_BLOCK - 64];
};
static_assert(sizeof(struct sb_shm_header) == 5 * SB_BLOCK, "header size");
static_assert(offsetof(struct sb_shm_header, magic) == 0, "magic");
static_assert(offsetof(struct sb_shm_header, version) == 8, "version");
static_assert(offsetof(struct sb_shm_header, header_len) == 12, "header_len");
static_assert(offsetof(struct sb_shm_header, total_len) == 16, "total_len");
static_assert(offsetof(struct sb_shm_header, capacity) == 24, "capacity");
static_assert(offsetof(struct sb_shm_header, cell_size) == 28, "cell_size");
static_assert(offsetof(struct sb_shm_header, max_msg_size) == 32, "max_msg_size");
static_assert(offsetof(struct sb_shm_header, mode) == 36, "mode");
static_assert(offsetof(struct sb_shm_header, max_subs) == 40, "max_subs");
static_assert(offsetof(struct sb_shm_header, max_groups) == 44, "max_groups");
static_assert(offsetof(struct sb_shm_header, slots_off) == 48, "slots_off");
static_assert(offsetof(struct sb_shm_header, groups_off) == 56, "groups_off");
static_assert(offsetof(struct sb_shm_header, cells_off) == 64, "cells_off");
static_assert(offsetof(struct sb_shm_header, create_time_ns) == 72, "create_time_ns");
static_assert(offsetof(struct sb_shm_header, creator_pid) == 80, "creator_pid");
static_assert(offsetof(struct sb_shm_header, flags) == 84, "flags");
static_assert(offsetof(struct sb_shm_header, max_pubs) == 88, "max_pubs");
static_assert(offsetof(struct sb_shm_header, pubs_off) == 96, "pubs_off");
static_assert(offsetof(struct sb_shm_header, stall_timeout_ms) == 104, "stall_timeout_ms");
static_assert(offsetof(struct sb_shm_header, gone) == 108, "gone");
static_assert(offsetof(struct sb_shm_header, acks_off) == 112, "acks_off");
static_assert(offsetof(struct sb_shm_header, ack_entries) == 120, "ack_entries");
static_assert(offsetof(struct sb_shm_header, tail) == 1 * SB_BLOCK, "tail");
static_assert(offsetof(struct sb_shm_header, data_futex) == 2 * SB_BLOCK, "data_futex");
static_assert(offsetof(struct sb_shm_header, data_waiters) == 2 * SB_BLOCK + 4, "data_waiters");
static_assert(offsetof(struct sb_shm_header, data_bcast) == 2 * SB_BLOCK + 8, "data_bcast");
static_assert(offsetof(struct sb_shm_header, data_pending) == 2 * SB_BLOCK + 12, "data_pending");
static_assert(offsetof(struct sb_shm_header, space_futex) == 3 * SB_BLOCK, "space_futex");
static_assert(offsetof(struct sb_shm_header, space_waiters) == 3 * SB_BLOCK + 4, "space_waiters");
static_assert(offsetof(struct sb_shm_header, overruns) == 4 * SB_BLOCK, "overruns");
static_assert(offsetof(struct sb_shm_header, skipped) == 4 * SB_BLOCK + 8, "skipped");
static_assert(offsetof(struct sb_shm_header, excl_owner) == 4 * SB_BLOCK + 16, "excl_owner");
static_assert(offsetof(struct sb_shm_header, unblocked) == 4 * SB_BLOCK + 24, "unblocked");
static_assert(offsetof(struct sb_shm_header, reaped) == 4 * SB_BLOCK + 32, "reaped");
static_assert(offsetof(struct sb_shm_header, evicted) == 4 * SB_BLOCK + 40, "evicted");
static_assert(offsetof(struct sb_shm_header, abandoned) == 4 * SB_BLOCK + 48, "abandoned");
static_assert(offsetof(struct sb_shm_header, joins) == 4 * SB_BLOCK + 56, "joins");

/* Subscriber slot states. */
#define SB_SLOT_FREE    0u
#define SB_SLOT_INIT    1u /* taken, being set up; not gating */
#define SB_SLOT_JOINING 2u /* gating at a provisional position while it seats */
#define SB_SLOT_ACTIVE  3u
/* The daemon took the slot from an owner that stalled publishers past
 * the topic's stall timeout: it gates nothing; the owner's next call says
 * so. */
#define SB_SLOT_EVICTED   4u
#define SB_SLOT_OBSERVING 5u /* an observer: reads, never gates */
/* A group member on its way out: no longer evictable, still counted
 * among its group's members until its leave lands (sub.c). */
#define SB_SLOT_LEAVING 6u

/* A group member's pos when it holds no message of its group. */
#define SB_POS_IDLE UINT64_MAX

/* A group member's pos while it seats its group's cursor (group.c): a
 * member that dies so is known as the seater. */
#define SB_POS_SEATING (UINT64_MAX - 1)

/*
 * A slot's kept word. A held plain subscriber of a reliable topic (a
 * daemon's exporter to JetStream, registry/relay.h) marks its slot KEPT
 * so that the slot outlives its owner: when the owner dies, the reaper
 * asks the daemon's keeps hook before freeing it and, told to, leaves it
 * gating where the owner left it, for the next daemon to adopt
 * (sb_relay_sub_adopt()) and resend from. An adopter takes the slot over
 * by a CAS from KEPT to ADOPTING | its pid (of two adopters one wins),
 * checks that the owner it judged dead is still the slot's (another may
 * have adopted it and stored KEPT back meanwhile), writes itself in as
 * the owner and stores KEPT again; a slot left ADOPTING by an adopter
 * that died is taken the same way from it. Reset to NONE whenever the
 * slot is taken or freed.
 */
#define SB_KEEP_NONE     0u
#define SB_KEEP_KEPT     1u
#define SB_KEEP_ADOPTING (1u << 31)
#define SB_KEEP_PID(k)   ((k) & ~SB_KEEP_ADOPTING)

/* One subscriber. Written by its owner; read by publishers (pos, for
 * reliable gating), by the daemon (pid and start: is the owner alive?) and
 * by monitoring tools. */
struct sb_shm_slot {
    _Atomic uint32_t state;
    _Atomic uint32_t pid;
    _Atomic uint32_t group; /* 0 = none, else 1-based group index */
    /* SB_KEEP_NONE, SB_KEEP_KEPT or SB_KEEP_ADOPTING | pid (below). */
    _Atomic uint32_t kept;
    _Atomic uint64_t pos;      /* next seq to read; member: seq in hand or IDLE */
    _Atomic uint64_t received; /* statistics mirror */
    _Atomic uint64_t lost;
    _Atomic uint64_t start; /* owner's start time (util/proc.h): pid + start = one process */
    /* The weight the owner counts in data_waiters while it sleeps, else 0:
     * what the daemon takes back out of the count if the owner dies asleep. */
    _Atomic uint32_t sleep;
    /* A member's 1 once its own +1 is in its group's count (group.c), so
     * that the daemon, evicting or reaping it, takes exactly that out. */
    _Atomic uint32_t counted;
    uint8_t pad2[SB_BLOCK - 56];
};
static_assert(sizeof(struct sb_shm_slot) == SB_BLOCK, "slot size");
static_assert(offsetof(struct sb_shm_slot, state) == 0, "slot state");
static_assert(offsetof(struct sb_shm_slot, pid) == 4, "slot pid");
static_assert(offsetof(struct sb_shm_slot, group) == 8, "slot group");
static_assert(offsetof(struct sb_shm_slot, kept) == 12, "slot kept");
static_assert(offsetof(struct sb_shm_slot, pos) == 16, "slot pos");
static_assert(offsetof(struct sb_shm_slot, received) == 24, "slot received");
static_assert(offsetof(struct sb_shm_slot, lost) == 32, "slot lost");
static_assert(offsetof(struct sb_shm_slot, start) == 40, "slot start");
static_assert(offsetof(struct sb_shm_slot, sleep) == 48, "slot sleep");
static_assert(offsetof(struct sb_shm_slot, counted) == 52, "slot counted");

/*
 * A group's cursor word packs, so that one CAS changes them together:
 *   seq << 12        next seq to hand out
 *   SB_GRP_SEATING   the first member is placing the cursor; nobody takes
 *   members          bits 0..10
 * A group without members holds nothing back; its last seq is kept so that
 * a group that empties and refills never hands out a message twice.
 */
#define SB_GRP_MEMBERS        0x7ffull
#define SB_GRP_SEATING        (1ull << 11)
#define SB_GRP_SEQ_SHIFT      12
#define SB_GRP_LOW            ((1ull << SB_GRP_SEQ_SHIFT) - 1) /* members and flags */
#define SB_GRP_SEQ(w)         ((w) >> SB_GRP_SEQ_SHIFT)
#define SB_GRP_WORD(seq, low) (((uint64_t)(seq) << SB_GRP_SEQ_SHIFT) | (low))
static_assert(SB_SUBS_MAX <= SB_GRP_MEMBERS, "member count must fit the cursor word");

/* One consumer group: members take messages from a shared cursor. The
 * name is written by shmbusd (which numbers named groups) before it hands
 * the number out, and never changes after; "" for unnamed groups. It sits
 * on the block's second line, away from the cursor. */
#define SB_GROUP_NAME_LEN 64u
struct sb_shm_group {
    _Atomic uint64_t cursor; /* packed, see above */
    _Atomic uint64_t lost;   /* messages the group lost (lossy laps) */
    /* An acknowledged group's (SHMBUS_SUB_ACK) deliveries before a message
     * is dead-lettered; 0 for a group without acknowledgements. Written by
     * shmbusd before it hands out the group's number to its first member,
     * never changed after (for a reused number: only while the group has
     * no member and no pending entry). */
    _Atomic uint32_t max_deliveries;
    /* RETURNED entries in the pending table, as a hint that members need
     * to look there (ring/ack.c): raised before an entry turns RETURNED,
     * lowered after it stops being so, so never below the truth (a process
     * that dies in between leaves it above: members then look in vain).
     * On the cursor's line, which a member loads for every take anyway. */
    _Atomic uint32_t returned;
    /* Statistics (relaxed): messages taken again from the pending table
     * (nacked, or returned by the daemon); messages the daemon moved to
     * the dead-letter topic; its attempts that failed (the dead-letter
     * topic full, too small, or not to be opened): the message stayed
     * pending. */
    _Atomic uint64_t redelivered;
    _Atomic uint64_t dead_lettered;
    _Atomic uint64_t dead_letter_failed;
    uint8_t pad1[SB_LINE - 48];
    char name[SB_GROUP_NAME_LEN];
};
static_assert(sizeof(struct sb_shm_group) == SB_BLOCK, "group size");
static_assert(offsetof(struct sb_shm_group, cursor) == 0, "group cursor");
static_assert(offsetof(struct sb_shm_group, lost) == 8, "group lost");
static_assert(offsetof(struct sb_shm_group, max_deliveries) == 16, "group max_deliveries");
static_assert(offsetof(struct sb_shm_group, returned) == 20, "group returned");
static_assert(offsetof(struct sb_shm_group, redelivered) == 24, "group redelivered");
static_assert(offsetof(struct sb_shm_group, dead_lettered) == 32, "group dead_lettered");
static_assert(offsetof(struct sb_shm_group, dead_letter_failed) == 40, "group dead_letter_failed");
static_assert(offsetof(struct sb_shm_group, name) == SB_LINE, "group name");

/*
 * An acknowledged group's pending table: ack_entries entries per group
 * (header), each one message delivered to a member and not yet
 * acknowledged, or a free entry. While an entry is HELD, RETURNED or DEAD
 * its seq gates reliable publishers (ring/gate.c scans the tables after
 * the cursors and the slots), whether or not the group has members: a
 * pending message outlives its member and waits for the next.
 *
 * The word packs, so that one CAS moves an entry between owners:
 *   bits 0..2    state (SB_PEND_*)
 *   bit 3        SB_PEND_COPY: the daemon returned the entry from a
 *                RESERVED one (a take it could not confirm); kept
 *                until the entry is FREE or RESERVED again. Its message
 *                may be a copy of one another member took, acked, and
 *                whose cell a publisher reuses, so it is read by a
 *                checked copy, never in place (ring/ack.c)
 *   bits 4..15   owner: 1 + the owning member's slot index (RESERVED,
 *                HELD); for RETURNED and DEAD the reason it came back
 *                (enum shmbus_dead_letter_reason), in the same CAS as the
 *                state, so that the daemon returning an entry and its
 *                member nacking it never mix their reasons; FREE: 0
 *   bits 16..31  deliveries so far (1 after the first)
 *   bits 32..63  generation, +1 on every change: a CAS from a stale word
 *                fails (an evicted member's late ack)
 * seq is written by the member holding the entry RESERVED, before its
 * take (ring/ack.c), and by nobody else; not_before by the member nacking
 * it, before the CAS to RETURNED (it counts only with reason NACKED);
 * reason by the daemon once the entry is DEAD (a copy of the word's, for
 * monitors). Read after loading the word (acquire). See ring/ack.c.
 */
#define SB_ACK_ENTRIES   128u /* per group, reliable topics */
#define SB_PEND_FREE     0u   /* nobody's */
#define SB_PEND_RESERVED 1u   /* a member's, ready for its next take; gates nothing */
#define SB_PEND_HELD     2u   /* delivered to the owner, awaiting its ack or nack */
#define SB_PEND_RETURNED                                                                           \
    3u                           /* back with the group: redelivered once not_before passed,       \
                                    or dead-lettered by the daemon at max_deliveries */
#define SB_PEND_DEAD          4u /* the daemon is moving it to the dead-letter topic */
#define SB_PEND_COPY          8u /* bit 3: read by a checked copy (above) */
#define SB_PEND_ST(w)         ((uint32_t)((w)&7u))
#define SB_PEND_OWNER(w)      ((uint32_t)(((w) >> 4) & 0xfffu))
#define SB_PEND_DELIVERIES(w) ((uint32_t)(((w) >> 16) & 0xffffu))
#define SB_PEND_GEN(w)        ((uint32_t)((w) >> 32))
#define SB_PEND_REASON(w)     SB_PEND_OWNER(w) /* RETURNED, DEAD */
#define SB_PEND_WORD(gen, deliveries, owner, st)                                                   \
    (((uint64_t)(gen) << 32) | ((uint64_t)(deliveries) << 16) | ((uint64_t)(owner) << 4) | (st))
static_assert(SB_SUBS_MAX + 1 <= 0xfffu, "owner must fit the pending word");

/* Head of a group's pending table. dead_letter: the group's dead-letter
 * topic, NUL-terminated, written by shmbusd with max_deliveries (before
 * it hands the group's number out), so that a restarted daemon that
 * adopts the segment knows it; checked as any name from shared memory. */
#define SB_DEAD_LETTER_LEN 192u
struct sb_shm_acktab {
    char dead_letter[SB_DEAD_LETTER_LEN];
    /* ack_entries struct sb_shm_pending follow */
};
static_assert(sizeof(struct sb_shm_acktab) == 3 * SB_LINE, "acktab head size");

struct sb_shm_pending {
    _Atomic uint64_t word;       /* packed, above */
    _Atomic uint64_t seq;        /* the message's seq (RESERVED: the one being taken,
                                    or the last one acked) */
    _Atomic uint64_t not_before; /* RETURNED by a nack: CLOCK_MONOTONIC ns before which
                                    nobody takes it */
    _Atomic uint32_t reason;     /* DEAD: why (the word's reason), for monitors */
    uint32_t pad0;
};
static_assert(sizeof(struct sb_shm_pending) == 32, "pending size");
static_assert(offsetof(struct sb_shm_pending, word) == 0, "pending word");
static_assert(offsetof(struct sb_shm_pending, seq) == 8, "pending seq");
static_assert(offsetof(struct sb_shm_pending, not_before) == 16, "pending not_before");
static_assert(offsetof(struct sb_shm_pending, reason) == 24, "pending reason");

/*
 * A publisher record: one per publisher, taken at creation. Its claim word
 * says what the publisher may be holding, so that the daemon can end the
 * claim of a publisher that died between claim and commit:
 *   SB_CLAIM_IDLE             holds nothing
 *   SB_CLAIM_CLAIMING | x     about to claim a seq, which will be >= x
 *   s (< 2^62)                claimed seq s and may hold its cell; with
 *                             claim_end e, s < e <= s + capacity, also
 *                             every seq of (s, e), claimed, cells untouched
 * A batch (shmbus_publish_vec()) claims [s, e) at once and moves the word
 * up through it as it writes; claim_end is stored (release) before the
 * word names s. A claim_end outside (s, s + capacity] is left from an
 * older claim (or scribbled): the claim is s alone. Only the owner writes
 * both (see pub.c for the orders). Exclusive publishers do not update
 * them: their token tells the daemon everything (pub.c).
 */
#define SB_PUB_FREE       0u
#define SB_PUB_ACTIVE     1u
#define SB_PUB_INIT       2u /* taken, being set up: pid and start not yet valid */
#define SB_PUB_DEAD       3u /* owner dead, claim not yet ended by the daemon */
#define SB_CLAIM_IDLE     (1ull << 63)
#define SB_CLAIM_CLAIMING (1ull << 62)
#define SB_CLAIM_SEQ(c)   ((c) & (SB_CLAIM_CLAIMING - 1))

struct sb_shm_pubrec {
    _Atomic uint32_t state;
    _Atomic uint32_t pid;
    _Atomic uint64_t start; /* owner's start time, as in the slot */
    _Atomic uint64_t claim;
    _Atomic uint32_t sleep; /* 1 while counted in space_waiters, as a slot's sleep */
    uint32_t pad0;
    /* 1 + the last seq whose claim the daemon ended for this live
     * publisher (stall timeout; 0: none), written by the daemon before it
     * ends it: the owner's commit then knows the stamp it finds is not a
     * mark left for it. */
    _Atomic uint64_t ended;
    _Atomic uint64_t claim_end; /* end (exclusive) of a batch claim, see above */
    uint8_t pad1[SB_BLOCK - 48];
};
static_assert(sizeof(struct sb_shm_pubrec) == SB_BLOCK, "pubrec size");
static_assert(offsetof(struct sb_shm_pubrec, state) == 0, "pubrec state");
static_assert(offsetof(struct sb_shm_pubrec, pid) == 4, "pubrec pid");
static_assert(offsetof(struct sb_shm_pubrec, start) == 8, "pubrec start");
static_assert(offsetof(struct sb_shm_pubrec, claim) == 16, "pubrec claim");
static_assert(offsetof(struct sb_shm_pubrec, sleep) == 24, "pubrec sleep");
static_assert(offsetof(struct sb_shm_pubrec, ended) == 32, "pubrec ended");
static_assert(offsetof(struct sb_shm_pubrec, claim_end) == 40, "pubrec claim_end");

/*
 * A cell: one message. The stamp is the cell's state word:
 *   stamp = seq << 2 | state
 * EMPTY(0) never written; BUSY a writer owns the cell (or, if a newer claim
 * found it busy, that claim's seq, to be skipped); COMMITTED the message
 * with this seq is complete; SKIPPED this seq carries no message.
 * The other header fields and the payload are plain bytes written between
 * BUSY and COMMITTED and read under the stamp (see ring/read.c).
 */
#define SB_ST_EMPTY       0u
#define SB_ST_BUSY        1u
#define SB_ST_COMMITTED   2u
#define SB_ST_SKIPPED     3u
#define SB_STAMP(seq, st) (((uint64_t)(seq) << 2) | (st))
#define SB_STAMP_SEQ(s)   ((s) >> 2)
#define SB_STAMP_ST(s)    ((uint32_t)((s)&3u))

struct sb_shm_cell {
    _Atomic uint64_t stamp;
    uint64_t timestamp_ns;
    uint32_t len;
    uint32_t writer_pid;
    /* 0: published on this bus; else 1 + the message's seq on the bus it
     * was published on (imported through NATS, registry/relay.h
     * sb_relay_publish_imported(); timestamp_ns and writer_pid are then
     * the origin's). Written with the other header fields by every
     * publish, so that a reused cell never shows an old origin. */
    uint64_t origin;
    /* payload follows, max_msg_size bytes, cell padded to SB_LINE */
};
static_assert(sizeof(struct sb_shm_cell) == 32, "cell header size");
static_assert(offsetof(struct sb_shm_cell, stamp) == 0, "cell stamp");
static_assert(offsetof(struct sb_shm_cell, timestamp_ns) == 8, "cell timestamp");
static_assert(offsetof(struct sb_shm_cell, len) == 16, "cell len");
static_assert(offsetof(struct sb_shm_cell, writer_pid) == 20, "cell writer_pid");
static_assert(offsetof(struct sb_shm_cell, origin) == 24, "cell origin");

#endif /* SHMBUS_SHM_LAYOUT_H */
