/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading cells: what plain subscribers (sub.c) and group members
 * (group.c) share. A step looks at the cell of the seq a reader expects and
 * either delivers it, moves past it (skipped, lapped, overwritten), or
 * finds nothing yet.
 */
#ifndef SHMBUS_RING_READ_H
#define SHMBUS_RING_READ_H

#include <stddef.h>
#include <stdint.h>

#include "ring/ring.h"

/* Results of one step at a cursor, besides errors (< 0). */
enum sb_step {
    SB_STEP_NONE = 0,      /* nothing ready */
    SB_STEP_DELIVERED = 1, /* one message delivered, go on */
    SB_STEP_STOP = 2,      /* delivered, the callback asked to stop */
    SB_STEP_MOVED = 3      /* the cursor moved without a delivery (skip, lap, race) */
};

/* A delivery: 0 go on, non-zero stop after this message. */
typedef int (*sb_deliver_fn)(const shmbus_msg *m, void *arg);

/* What the stamp of the cell for an expected seq says. */
enum sb_cell_state {
    SB_CELL_NOT_YET,
    SB_CELL_READY,
    SB_CELL_SKIPPED,
    SB_CELL_LAPPED,
    SB_CELL_CORRUPT
};

enum sb_cell_state sb_cell_classify(uint64_t v, uint64_t seq, uint32_t mask);

/* Is @p word still @p v after the plain reads made before this call? (An
 * acquire fence, then a re-load: the second half of a seqlock read.) */
int sb_word_unchanged(const _Atomic uint64_t *word, uint64_t v);

/* Where a reader asking for @p start begins, given a tail. */
uint64_t sb_start_pos(uint32_t start, uint64_t tail, uint32_t capacity);

/* Oldest seq a lapped reader can still hope to read, past @p from. */
uint64_t sb_lap_target(const struct sb_segment *seg, uint64_t from);

/* Can the READY cell @p c (stamp @p v) be handed to a buffer of @p cap
 * bytes (SIZE_MAX: any)? @p copy: the cell is to be read by a copy (see
 * sb_cell_read()). @return 0 yes; -EMSGSIZE (sub->want_len set); 1 a
 * writer changed the cell meanwhile (copy readers; step again);
 * SHMBUS_ERR_CORRUPT a length beyond the topic's maximum. */
int sb_cell_fits(shmbus_sub *sub, const struct sb_shm_cell *c, uint64_t v, size_t cap, int copy);

/* Fill @p msg from the READY cell @p c (stamp @p v, seq @p seq): a pointer
 * into the ring (a gating reader of a reliable topic) or, if @p copy, a
 * checked private copy in sub->scratch (lossy, an observer, or a message
 * nothing may be gating: ring/ack.c). Callers pass sub->copy_read unless
 * they know better.
 * @return 0, 1 (copy readers: overwritten, discard), or SHMBUS_ERR_CORRUPT. */
int sb_cell_read(shmbus_sub *sub, const struct sb_shm_cell *c, uint64_t v, uint64_t seq,
                 shmbus_msg *msg, int copy);

/* The copy half of sb_cell_read() into @p dst, which holds @p max bytes
 * (at most the topic's max_msg_size): a reader whose own buffer can take
 * the message copies it there once, not through sub->scratch.
 * @return 0; 1 (overwritten, discard @p dst); SHMBUS_ERR_CORRUPT for a
 * length over @p max under an unchanged stamp (over the caller's buffer,
 * or corrupt: sb_cell_fits() tells which). @p dst's bytes are undefined
 * unless 0. */
int sb_cell_read_to(shmbus_sub *sub, const struct sb_shm_cell *c, uint64_t v, uint64_t seq,
                    shmbus_msg *msg, uint8_t *dst, uint32_t max);

/* A cell's header fields, as one read of each. */
struct sb_cell_meta {
    uint64_t timestamp_ns;
    uint64_t origin;
    uint32_t len;
    uint32_t pid;
};

/*
 * Seqlock read of cell @p c whose stamp was @p v (COMMITTED) when loaded
 * with acquire: copies the header into @p m and a payload of at most
 * @p max bytes into @p dst, then re-checks the stamp. Orders: every
 * writer marks the cell BUSY and then issues a release fence before its
 * header and payload stores (pub.c); the re-check is an acquire fence and
 * a relaxed re-load of the stamp (sb_word_unchanged()), so a copy that
 * read any byte of a newer writer sees a changed stamp.
 * @return 0 copy valid, 1 overwritten while copying (discard it),
 * SHMBUS_ERR_CORRUPT for a length over @p max under an unchanged stamp.
 */
int sb_cell_copy(const struct sb_shm_cell *c, uint64_t v, uint32_t max, uint8_t *dst,
                 struct sb_cell_meta *m);

static inline void sb_sub_count_lost(shmbus_sub *sub, uint64_t n)
{
    sub->lost += n;
    sub->pending_lost += n;
}

/* Account one delivery made through @p fn's result @p rc. */
static inline int sb_sub_delivered(shmbus_sub *sub, int rc)
{
    sub->pending_lost = 0;
    sub->received++;
    return rc ? SB_STEP_STOP : SB_STEP_DELIVERED;
}

#endif
