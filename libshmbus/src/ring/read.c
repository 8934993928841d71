/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading cells. Load the stamp with acquire; COMMITTED(expected seq) means
 * the header and payload are complete. In a reliable topic nobody may
 * overwrite the cell before the reader moves past it, so the callback gets
 * a pointer into the ring. In a lossy topic a newer publisher may overwrite
 * it at any time, so it is copied out and the stamp checked again afterwards
 * (a seqlock read); a changed stamp means the reader was lapped and the copy
 * is discarded. An observer of a reliable topic gates nothing, so it reads
 * the same way.
 */
#include "ring/read.h"

#include <errno.h>
#include <string.h>

enum sb_cell_state sb_cell_classify(uint64_t v, uint64_t seq, uint32_t mask)
{
    uint64_t vs = SB_STAMP_SEQ(v);
    uint32_t st = SB_STAMP_ST(v);

    if (st == SB_ST_EMPTY)
        return v == 0 ? SB_CELL_NOT_YET : SB_CELL_CORRUPT;
    /* A seq that maps to another cell cannot be in this one. */
    if ((vs ^ seq) & mask)
        return SB_CELL_CORRUPT;
    if (vs < seq)
        return SB_CELL_NOT_YET; /* still the previous lap's message */
    if (vs > seq)
        return SB_CELL_LAPPED;
    if (st == SB_ST_BUSY)
        return SB_CELL_NOT_YET;
    return st == SB_ST_COMMITTED ? SB_CELL_READY : SB_CELL_SKIPPED;
}

uint64_t sb_start_pos(uint32_t start, uint64_t tail, uint32_t capacity)
{
    if (start == SHMBUS_START_OLDEST)
        return tail > capacity ? tail - capacity : 0;
    return tail;
}

uint64_t sb_lap_target(const struct sb_segment *seg, uint64_t from)
{
    /* relaxed: any recent tail will do; what we then read is checked by
     * the cells' stamps. */
    uint64_t t = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
    uint64_t n = t > seg->g.capacity ? t - seg->g.capacity : 0;

    /* A tail that does not explain the lap is garbage: step over one cell. */
    return n > from ? n : from + 1;
}

/* Read a cell's header fields once each. In a lossy topic a writer may be
 * changing them; volatile forbids the compiler from reading a field twice
 * (a re-read length could differ from the checked one). */
static void cell_meta_read(const struct sb_shm_cell *c, struct sb_cell_meta *m)
{
    m->timestamp_ns = *(const volatile uint64_t *)&c->timestamp_ns;
    m->len = *(const volatile uint32_t *)&c->len;
    m->pid = *(const volatile uint32_t *)&c->writer_pid;
    m->origin = *(const volatile uint64_t *)&c->origin;
}

int sb_word_unchanged(const _Atomic uint64_t *word, uint64_t v)
{
    /* acquire fence: orders the plain reads before it ahead of the re-load;
     * for a cell's stamp it pairs with the release fence after a writer's
     * BUSY mark (pub.c): if we read any byte a newer writer stored, we see
     * its stamp. There is no atomic access to hang this order on: the reads
     * are of plain memory. */
    atomic_thread_fence(memory_order_acquire);
    /* relaxed: ordered by the fence above. */
    return atomic_load_explicit(word, memory_order_relaxed) == v;
}

/* Is the lossy cell's stamp still @p v after the plain reads before? */
static int cell_unchanged(const struct sb_shm_cell *c, uint64_t v)
{
    return sb_word_unchanged(&c->stamp, v);
}

int sb_cell_fits(shmbus_sub *sub, const struct sb_shm_cell *c, uint64_t v, size_t cap, int copy)
{
    const struct sb_geom *g = &sub->topic->seg.g;
    uint32_t len = *(const volatile uint32_t *)&c->len;

    if (len <= g->max_msg_size && len <= cap)
        return 0;
    /* A lossy writer (or, for an observer or a copy, any writer) may be
     * rewriting the length: believe it only if the stamp did not change
     * around it. */
    if (copy && !cell_unchanged(c, v))
        return 1;
    if (len > g->max_msg_size)
        return SHMBUS_ERR_CORRUPT;
    sub->want_len = len;
    return -EMSGSIZE;
}

/*
 * The copy races with a lapping writer by design; the stamp check decides.
 * TSan is told so in tests/tsan.supp.
 */
int sb_cell_copy(const struct sb_shm_cell *c, uint64_t v, uint32_t max, uint8_t *dst,
                 struct sb_cell_meta *m)
{
    cell_meta_read(c, m);
    if (m->len <= max)
        memcpy(dst, c + 1, m->len);
    if (!cell_unchanged(c, v))
        return 1;
    return m->len <= max ? 0 : SHMBUS_ERR_CORRUPT;
}

/* Fill @p msg from the header @p m of the message of seq @p seq, whose
 * payload is at @p data. */
static void cell_msg_fill(const shmbus_sub *sub, const struct sb_cell_meta *m, uint64_t seq,
                          const void *data, shmbus_msg *msg)
{
    msg->data = data;
    msg->len = m->len;
    msg->publisher_pid = m->pid;
    msg->timestamp_ns = m->timestamp_ns;
    msg->seq = seq;
    msg->lost = sub->pending_lost;
    msg->flags = m->origin != 0 ? SHMBUS_MSG_IMPORTED : 0;
    msg->deliveries = 0;
    msg->origin_seq = m->origin != 0 ? m->origin - 1 : 0;
    msg->reserved[0] = 0;
    msg->reserved[1] = 0;
}

int sb_cell_read_to(shmbus_sub *sub, const struct sb_shm_cell *c, uint64_t v, uint64_t seq,
                    shmbus_msg *msg, uint8_t *dst, uint32_t max)
{
    struct sb_cell_meta m;
    int rc = sb_cell_copy(c, v, max, dst, &m);

    if (rc != 0)
        return rc;
    cell_msg_fill(sub, &m, seq, dst, msg);
    return 0;
}

int sb_cell_read(shmbus_sub *sub, const struct sb_shm_cell *c, uint64_t v, uint64_t seq,
                 shmbus_msg *msg, int copy)
{
    const struct sb_geom *g = &sub->topic->seg.g;
    struct sb_cell_meta m;

    if (copy)
        return sb_cell_read_to(sub, c, v, seq, msg, sub->scratch, g->max_msg_size);
    /* No writer can touch the cell until our position passes it. */
    cell_meta_read(c, &m);
    if (m.len > g->max_msg_size)
        return SHMBUS_ERR_CORRUPT;
    cell_msg_fill(sub, &m, seq, c + 1, msg);
    return 0;
}
