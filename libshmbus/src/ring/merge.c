/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay-merge: a subscriber that starts at a seq or a time older than
 * the ring holds reads the topic's journal, then joins the ring where the
 * journal leaves off. The journal is read with the slot INIT, gating
 * nothing. Once the reader reaches the journal's end (what the recorder
 * has flushed), a copy reader (lossy topic, observer) moves to the ring
 * if the ring holds its next seq; a gating reader seats by the join
 * protocol with its next seq as the floor, and if the seat is above it
 * reads the rest from the journal while seated: the recorder has read
 * those messages (its slot is a settled gate at or above the seat) and
 * writes them at the end of its batch. A seat the journal does not reach
 * within MERGE_SEAT_MAX_NS (under half the topic's stall timeout) is given
 * up, and not taken again for as long, so that a recorder that died holds
 * publishers back half the time at most, never to an eviction, and the
 * reader reports no loss the journal does not record. A lossy ring that
 * laps the reader sends it back to the journal. docs/design.md "Starting
 * at a seq or a time" argues the order.
 */
#include "ring/merge.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "shmbus/journal.h"
#include "util/clock.h"

/* How soon a reader at the journal's end looks again: a journal has no
 * futex, and a recorder writes at the end of each batch. While nothing
 * comes the wait doubles, up to MERGE_POLL_MAX_NS: a reader kept waiting
 * (a recorder that stopped) costs next to nothing. */
#define MERGE_POLL_NS     1000000ull
#define MERGE_POLL_MAX_NS 16000000ull
/* Longest a gating reader stays seated waiting for the journal to reach
 * its seat; then it unseats and tries again later (merge_seat_max()). */
#define MERGE_SEAT_MAX_NS 200000000ull
/* At most this many damaged records skipped looking for a time's first. */
#define MERGE_FIRST_TRIES 64

enum merge_state {
    MERGE_JOURNAL, /* reading the journal, the slot INIT (copy readers: any) */
    MERGE_SEATED,  /* gating at seat; reading the journal up to it */
    MERGE_RING     /* reading the ring */
};

struct sb_merge {
    shmbus_journal_reader *r;
    shmbus_journal_record rec; /* read, not yet consumed (have) */
    uint64_t seat;             /* MERGE_SEATED: where the slot gates */
    uint64_t seated_at;        /* MERGE_SEATED: when (monotonic) */
    uint64_t retry_at;         /* at_end: when to read again (monotonic) */
    uint64_t poll_ns;          /* at_end: the wait before it (0: none yet) */
    uint64_t seat_after;       /* a gating reader seats again no sooner (monotonic) */
    enum merge_state state;
    int have;   /* rec holds a record not yet consumed */
    int at_end; /* the last read found the journal's end */
    int reseek; /* reposition the reader at sub->pos before reading */
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    char dir[PATH_MAX];
};

int sb_merge_reading(const struct sb_merge *m)
{
    return m->state != MERGE_RING;
}

int sb_merge_ready(const struct sb_merge *m)
{
    return !m->at_end || sb_mono_ns() >= m->retry_at;
}

uint64_t sb_merge_wake_at(const shmbus_sub *sub)
{
    const struct sb_merge *m = sub->merge;

    if (m == NULL || m->state == MERGE_RING || !m->at_end)
        return UINT64_MAX;
    return m->retry_at;
}

void sb_merge_free(shmbus_sub *sub)
{
    if (sub->merge == NULL)
        return;
    shmbus_journal_reader_close(sub->merge->r);
    free(sub->merge);
    sub->merge = NULL;
}

/* The oldest seq ring @p seg can still hold, given tail @p t. */
static uint64_t ring_low(const struct sb_segment *seg, uint64_t t)
{
    return t > seg->g.capacity ? t - seg->g.capacity : 0;
}

/* Nothing more in the journal now: note when to look again, no later
 * than @p until (monotonic; UINT64_MAX: any time). */
static int merge_wait(struct sb_merge *m, uint64_t until)
{
    m->poll_ns = m->poll_ns == 0 ? MERGE_POLL_NS : m->poll_ns * 2;
    if (m->poll_ns > MERGE_POLL_MAX_NS)
        m->poll_ns = MERGE_POLL_MAX_NS;
    m->at_end = 1;
    m->retry_at = sb_mono_ns() + m->poll_ns;
    if (m->retry_at > until)
        m->retry_at = until;
    return SB_STEP_NONE;
}

/* Move @p sub from the journal to the ring at sub->pos. */
static int merge_to_ring(shmbus_sub *sub)
{
    struct sb_merge *m = sub->merge;

    m->state = MERGE_RING;
    m->have = 0;
    m->at_end = 0;
    m->poll_ns = 0;
    return SB_STEP_MOVED;
}

/* At the journal's end, unseated: a copy reader moves to the ring if it
 * holds sub->pos (a lap on the way sends it back); a gating one seats
 * with sub->pos as the floor. */
static int merge_join(shmbus_sub *sub)
{
    struct sb_merge *m = sub->merge;
    const struct sb_segment *seg = &sub->topic->seg;
    uint64_t next = sub->pos, t;

    if (sub->copy_read) {
        /* relaxed: a hint; the cells' stamps decide what is read. */
        t = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
        if (next < ring_low(seg, t))
            return merge_wait(m, UINT64_MAX); /* the recorder has yet to write (or a gap) */
        sb_sub_join_at(sub, next);
        return merge_to_ring(sub);
    }
    if (sb_mono_ns() < m->seat_after)
        return merge_wait(m, m->seat_after); /* a seat given up a moment ago */
    sb_sub_join_at(sub, next);
    if (sub->pos == next)
        return merge_to_ring(sub);
    /* Seated above: the journal is to deliver next .. seat - 1. */
    m->seat = sub->pos;
    m->seated_at = sb_mono_ns();
    m->state = MERGE_SEATED;
    sub->pos = next;
    return SB_STEP_MOVED;
}

/* How long a seat may wait for the journal: MERGE_SEAT_MAX_NS, and under
 * half the topic's stall timeout, so that the seat is given up before the
 * daemon evicts it for holding publishers back (its scan's tick comes on
 * top of the timeout; merge_wait() wakes us at this one). */
static uint64_t merge_seat_max(const shmbus_sub *sub)
{
    uint64_t stall = (uint64_t)sub->topic->seg.g.stall_timeout_ms * 1000000ull / 2;

    return stall != 0 && stall < MERGE_SEAT_MAX_NS ? stall : MERGE_SEAT_MAX_NS;
}

/* At the journal's end, seated: wait for the recorder's flush, for at
 * most merge_seat_max(); then stop gating and read on unseated. */
static int merge_seated_end(shmbus_sub *sub)
{
    struct sb_merge *m = sub->merge;
    uint64_t max = merge_seat_max(sub);
    int rc;

    if (sb_mono_ns() - m->seated_at < max)
        return merge_wait(m, m->seated_at + max);
    rc = sb_sub_unseat(sub);
    if (rc < 0)
        return rc;
    m->state = MERGE_JOURNAL;
    m->seat_after = sb_mono_ns() + max;
    return merge_wait(m, m->seat_after);
}

/* Reposition the reader at sub->pos after a lap. A seek that finds no
 * record there (SHMBUS_ERR_RANGE: beyond the journal's end, the recorder
 * has yet to write it; or before its first record, retention deleted it)
 * leaves the reader at or before every record from sub->pos on, as any
 * read does: it reads on from there, skipping what lies below sub->pos
 * and counting a jump past it as lost (merge_record()), and waits at the
 * end as at any end, without seeking again. @return SB_STEP_MOVED or an
 * error. */
static int merge_reseek(shmbus_sub *sub)
{
    struct sb_merge *m = sub->merge;
    int rc = shmbus_journal_seek_seq(m->r, sub->pos);

    if (rc < 0 && rc != SHMBUS_ERR_RANGE)
        return rc;
    m->reseek = 0;
    m->have = 0;
    return SB_STEP_MOVED;
}

/* Deliver the message record m->rec at sub->pos. */
static int merge_deliver(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap)
{
    struct sb_merge *m = sub->merge;
    const shmbus_journal_record *r = &m->rec;
    shmbus_msg msg = {0};
    int rc;

    if (r->len > cap) {
        sub->want_len = r->len;
        return -EMSGSIZE; /* kept (have) for a bigger buffer */
    }
    msg.data = r->data;
    msg.len = r->len;
    msg.publisher_pid = r->publisher_pid;
    msg.timestamp_ns = r->timestamp_ns;
    msg.seq = r->seq;
    msg.lost = sub->pending_lost;
    msg.flags = (r->flags & SHMBUS_JOURNAL_IMPORTED) ? SHMBUS_MSG_IMPORTED : 0;
    sub->pos = r->seq + 1;
    rc = sb_sub_delivered(sub, fn(&msg, arg));
    m->have = 0; /* r->data stays valid until the next read: after fn */
    if (m->state == MERGE_SEATED && sub->pos == m->seat)
        merge_to_ring(sub);
    return rc;
}

/* Consume record m->rec: skip what was delivered, count a jump or a gap
 * as lost, stop at the seat, deliver a message. */
static int merge_record(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap)
{
    struct sb_merge *m = sub->merge;
    const shmbus_journal_record *r = &m->rec;
    uint64_t limit = m->state == MERGE_SEATED ? m->seat : UINT64_MAX;
    uint64_t n = r->count != 0 ? r->count : 1;
    uint64_t end = r->seq + n < r->seq ? UINT64_MAX : r->seq + n;

    if (end <= sub->pos || (r->seq < sub->pos && !(r->flags & SHMBUS_JOURNAL_GAP))) {
        m->have = 0;
        return SB_STEP_MOVED; /* delivered already */
    }
    if (r->seq > sub->pos) {
        /* Missing from the journal (a damaged record skipped, or a file
         * retention deleted meanwhile): lost, up to the seat. */
        uint64_t to = r->seq < limit ? r->seq : limit;
        sb_sub_count_lost(sub, to - sub->pos);
        sub->pos = to;
    }
    if (sub->pos == limit)
        return merge_to_ring(sub);
    if (!(r->flags & SHMBUS_JOURNAL_GAP))
        return merge_deliver(sub, fn, arg, cap);
    end = end < limit ? end : limit;
    sb_sub_count_lost(sub, end - sub->pos);
    sub->pos = end;
    m->have = 0;
    return sub->pos == limit ? merge_to_ring(sub) : SB_STEP_MOVED;
}

int sb_merge_step(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap)
{
    struct sb_merge *m = sub->merge;
    int rc;

    if (m->reseek && (rc = merge_reseek(sub)) != SB_STEP_MOVED)
        return rc;
    if (!m->have) {
        rc = shmbus_journal_next(m->r, &m->rec);
        /* A damaged record is skipped: the seq of the next one counts it. */
        if (rc == SHMBUS_ERR_CORRUPT)
            return SB_STEP_MOVED;
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (m->state == MERGE_SEATED)
                return merge_seated_end(sub);
            return merge_join(sub);
        }
        m->have = 1;
        m->poll_ns = 0; /* the journal moves: look again soon at its end */
    }
    m->at_end = 0;
    return merge_record(sub, fn, arg, cap);
}

int sb_merge_lapped(shmbus_sub *sub)
{
    struct sb_merge *m = sub->merge;

    m->state = MERGE_JOURNAL;
    m->reseek = 1;
    m->have = 0;
    m->at_end = 0;
    return SB_STEP_MOVED;
}

/* ------------------------------------------------------------ the start */

/* Where the first message at or after a time lies in the ring. */
enum time_found {
    TIME_IN_RING,   /* at *seq */
    TIME_BEFORE,    /* older than the ring's oldest, which is newer */
    TIME_AFTER_ALL, /* no message that new */
    TIME_RACE       /* the cell found changed under the search: search again */
};
/* Searches tried before a ring that keeps moving under them is given up. */
#define MERGE_TIME_TRIES 4

/* What a cell says of a time (cell_time()). */
enum cell_time {
    CELL_OLDER, /* a message before the time, or none any more (lapped,
                 * overwritten while read): the ring moved past it */
    CELL_NEWER, /* a message at or after the time, or one to come */
    CELL_NONE   /* no message and no time (skipped, damaged) */
};

/* Is cell @p seq's message at or after @p time_ns? Reads as a lossy
 * reader does: acquire stamp, one read of the time, the stamp again. */
static enum cell_time cell_time(const struct sb_segment *seg, uint64_t seq, uint64_t time_ns)
{
    const struct sb_shm_cell *c = sb_cell(seg, seq);
    /* acquire: pairs with the commit CAS (pub.c); the header is complete. */
    uint64_t v = atomic_load_explicit(&c->stamp, memory_order_acquire);
    uint64_t ts;

    switch (sb_cell_classify(v, seq, seg->g.mask)) {
    case SB_CELL_NOT_YET:
        return CELL_NEWER;
    case SB_CELL_READY:
        break;
    case SB_CELL_LAPPED:
        return CELL_OLDER;
    default:
        return CELL_NONE;
    }
    ts = *(const volatile uint64_t *)&c->timestamp_ns;
    if (!sb_word_unchanged(&c->stamp, v))
        return CELL_OLDER; /* overwritten: the ring moved past it */
    return ts >= time_ns ? CELL_NEWER : CELL_OLDER;
}

/* Is the first message at or after @p time_ns at or below @p seq (< @p
 * hi)? A cell with no time answers as the first one after it that has one
 * (none up to @p hi: yes, @p hi's answer). *@p next: the cell that
 * answered, so that a "no" moves the search past it. */
static int at_or_below(const struct sb_segment *seg, uint64_t seq, uint64_t hi, uint64_t time_ns,
                       uint64_t *next)
{
    for (*next = seq; *next < hi; (*next)++) {
        enum cell_time ct = cell_time(seg, *next, time_ns);
        if (ct != CELL_NONE)
            return ct == CELL_NEWER;
    }
    return 1;
}

/* Binary search of the ring's cells for the first message published at
 * or after @p time_ns (publish times rise with seqs, give or take the
 * race between publishers' clocks and claims). */
static enum time_found ring_find_time(const struct sb_segment *seg, uint64_t time_ns, uint64_t *seq)
{
    /* acquire: any recent tail will do; the stamps decide each cell. */
    uint64_t t = atomic_load_explicit(&seg->hdr->tail, memory_order_acquire);
    uint64_t lo = ring_low(seg, t), hi = t, low = lo, next;

    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (at_or_below(seg, mid, hi, time_ns, &next))
            hi = mid;
        else
            lo = next + 1;
    }
    if (lo == t)
        return TIME_AFTER_ALL; /* none that new */
    /* A cell below the tail not yet written (a claim still open) is a
     * message to come, newer as the search counts it: the start is there,
     * and readers wait at it as at any open claim; one with no time (a
     * skipped seq) is counted lost on the way to the next. */
    if (cell_time(seg, lo, time_ns) == CELL_OLDER)
        return TIME_RACE;
    *seq = lo;
    /* The oldest cell qualifies: older ones, gone, may have too (none
     * gone before seq 0). */
    return lo == low && low > 0 ? TIME_BEFORE : TIME_IN_RING;
}

/* Read to the first record after a seek by time, to learn its seq. */
static int merge_first(shmbus_sub *sub)
{
    struct sb_merge *m = sub->merge;

    for (int i = 0; i < MERGE_FIRST_TRIES; i++) {
        int rc = shmbus_journal_next(m->r, &m->rec);
        if (rc == SHMBUS_ERR_CORRUPT)
            continue;
        if (rc < 0)
            return rc;
        if (rc == 0)
            return SHMBUS_ERR_RANGE; /* cut by retention since the seek */
        m->have = 1;
        sub->pos = m->rec.seq;
        return 0;
    }
    return SHMBUS_ERR_CORRUPT;
}

/* Is the journal @p m opened this topic's? Its recorder has read every
 * seq it wrote, all below the tail; one that runs to the tail or past it
 * is an earlier topic's of the same name (the daemon sets such a journal
 * aside when its recorder opens it, rec/topic.c, but a recorder that
 * cannot open it leaves it there). @return 1, 0, or an error. */
static int merge_ours(const shmbus_sub *sub, const struct sb_merge *m)
{
    shmbus_journal_summary sum;
    uint64_t t;
    int rc = shmbus_journal_summary_get(m->dir, m->name, &sum);

    if (rc < 0)
        return rc;
    /* relaxed: loaded after the files were read (ordered by the kernel,
     * as every read of the journal); a seq the recorder wrote was below
     * the tail then, and the tail only grows. */
    t = atomic_load_explicit(&sub->topic->seg.hdr->tail, memory_order_relaxed);
    return sum.last_seq == UINT64_MAX || sum.last_seq < t;
}

/* The journal, from seq @p seq or (by_time) time @p seq. */
static int merge_open(shmbus_sub *sub, int by_time, uint64_t seq)
{
    struct sb_merge *m;
    int rc;

    /* Only the daemon knows of a journal: a topic opened by name has none. */
    if (sub->topic->reg == NULL)
        return SHMBUS_ERR_RANGE;
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return -ENOMEM;
    sub->merge = m;
    rc = sb_hook_journal_dir(sub->topic, m->dir, sizeof(m->dir), m->name);
    if (rc == 0)
        rc = shmbus_journal_reader_open(m->dir, m->name, &m->r);
    if (rc == 0)
        rc = merge_ours(sub, m);
    /* Not recorded, nothing recorded yet, or another topic's journal. */
    if (rc == -ENOENT || rc == 0)
        return SHMBUS_ERR_RANGE;
    if (rc < 0)
        return rc;
    rc = by_time ? shmbus_journal_seek_time(m->r, seq) : shmbus_journal_seek_seq(m->r, seq);
    if (rc < 0)
        return rc;
    sub->pos = seq;
    return by_time ? merge_first(sub) : 0;
}

/* Start at @p seq: the ring if it holds it, else the journal. */
static int merge_start_seq(shmbus_sub *sub, uint64_t seq)
{
    const struct sb_segment *seg = &sub->topic->seg;
    /* seq_cst: as the join's own tail load; a tail read before it. */
    uint64_t t = atomic_load_explicit(&seg->hdr->tail, memory_order_seq_cst);
    int rc;

    if (seq > t)
        return SHMBUS_ERR_RANGE; /* not published yet: NEXT says that */
    if (seq >= ring_low(seg, t)) {
        sb_sub_join_at(sub, seq);
        if (sub->pos == seq)
            return 0;
        /* Gating: the seat is above seq, whose messages may be gone. */
        if ((rc = sb_sub_unseat(sub)) < 0)
            return rc;
    }
    return merge_open(sub, 0, seq);
}

int sb_merge_start(shmbus_sub *sub, const shmbus_sub_opts *o)
{
    uint64_t seq = 0;

    if (o->start == SHMBUS_START_SEQ)
        return merge_start_seq(sub, o->start_seq);
    for (int i = 0; i < MERGE_TIME_TRIES; i++) {
        switch (ring_find_time(&sub->topic->seg, o->start_time_ns, &seq)) {
        case TIME_IN_RING:
            return merge_start_seq(sub, seq);
        case TIME_BEFORE:
            return merge_open(sub, 1, o->start_time_ns);
        case TIME_AFTER_ALL:
            return SHMBUS_ERR_RANGE;
        case TIME_RACE:
            break;
        }
    }
    /* Lapped under every search: what the time names is older than the
     * ring, where the journal has it if anything does. */
    return merge_open(sub, 1, o->start_time_ns);
}
