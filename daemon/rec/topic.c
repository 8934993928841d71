/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One topic's recording (state.h sbr_topic): its subscriber, seated from
 * the oldest message the ring holds so that the journal's writer, which
 * skips what it has, continues a journal with nothing missed; each round's
 * poll into a batch, appended once the poll says its reads stand, then
 * flushed; on a reliable topic the release of what the sync policy made
 * durable (the ring keeps the rest); a rejoin after an eviction; the stop
 * on an error (a full disk), which destroys the subscriber at once so that
 * it never gates, and its retries with back-off.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "log.h"
#include "rec/state.h"
#include "util/clock.h"

#define MS 1000000ull

/* The most a batch's buffer needs for @p t: a poll stops once it holds
 * SBR_BATCH_BYTES, and the message that crosses it may be the largest. */
static size_t batch_need(const struct sbd_topic *t)
{
    return (size_t)SBR_BATCH_BYTES + t->info.max_msg_size;
}

int sbr_topic_seat(struct sbr_topic *rt)
{
    shmbus_sub_opts o = {.start = SHMBUS_START_OLDEST};
    int rc = shmbus_sub_create(rt->t->t, &o, &rt->sub);

    if (rc < 0) {
        rt->sub = NULL;
        return rc;
    }
    if (rt->reliable && (rc = sb_relay_sub_hold(rt->sub)) < 0) {
        shmbus_sub_destroy(rt->sub);
        rt->sub = NULL;
        return rc;
    }
    /* relaxed: a monitoring count (shmbus stat's SUBS), as the control
     * thread's. */
    atomic_fetch_add_explicit(&rt->t->subscribers, 1, memory_order_relaxed);
    rt->next = rt->released = sb_relay_sub_held(rt->sub); /* its start: nothing read yet */
    return 0;
}

/* Give back @p rt's subscriber: its slot stops gating at once. */
static void topic_sub_drop(struct sbr_topic *rt)
{
    if (rt->sub == NULL)
        return;
    shmbus_sub_destroy(rt->sub);
    rt->sub = NULL;
    atomic_fetch_sub_explicit(&rt->t->subscribers, 1, memory_order_relaxed);
}

/* Open @p rt's journal, and seat its subscriber if it has none.
 * @return 0 or a negative error (rt->j NULL). */
static int topic_open(struct sbr_topic *rt)
{
    const struct sbd_rec *r = rt->rec;
    shmbus_journal_stats st;
    int rc;

    if (rt->sub == NULL && (rc = sbr_topic_seat(rt)) < 0)
        return rc;
    rc = shmbus_journal_open(r->cfg->journal_dir, rt->t->name, &r->jopts, &rt->j);
    if (rc < 0) {
        rt->j = NULL;
        return rc;
    }
    shmbus_journal_stats_get(rt->j, &st);
    /* Opened before by this daemon: the journal is this topic's. Else
     * compare with the tail when the record was made, not the tail now:
     * by a retry's time the new topic may have published past the old
     * journal's end, and its first messages would be taken for the old
     * ones the journal has. */
    if (rt->opened || st.last_seq == UINT64_MAX || st.last_seq < rt->seat_tail) {
        rt->opened = 1;
        return 0;
    }
    rc = sbr_aside_make(rt, st.last_seq, rt->seat_tail);
    if (rc < 0)
        rt->j = NULL;
    else
        rt->opened = 1;
    return rc;
}

/* Stop recording @p rt after error @p rc (@p what failed): the subscriber
 * goes first, so that it never holds a publisher back; the journal is
 * closed (what was appended before is kept); a retry is due after the
 * back-off. The first failure after recording is announced (log line,
 * counter, journal_stopped event); a failed retry only logged. */
static void topic_stop(struct sbr_topic *rt, int rc, uint64_t now, const char *what)
{
    shmbus_journal_stats st = {.last_seq = UINT64_MAX};
    char last[24] = "none";

    if (rt->j != NULL)
        shmbus_journal_stats_get(rt->j, &st);
    topic_sub_drop(rt);
    shmbus_journal_close(rt->j);
    rt->j = NULL;
    rt->state = SBR_WAITING;
    rt->err = rc;
    rt->backoff_ms = rt->backoff_ms == 0 ? SBR_RETRY_MIN_MS : rt->backoff_ms * 2;
    if (rt->backoff_ms > SBR_RETRY_MAX_MS)
        rt->backoff_ms = SBR_RETRY_MAX_MS;
    rt->retry_ns = now + rt->backoff_ms * MS;
    if (rt->announced) {
        sbd_log(SBD_WARN, "journal: topic %s: still not recorded: %s: %s (next try in %u s)",
                rt->t->name, what, shmbus_strerror(rc), rt->backoff_ms / 1000);
        return;
    }
    rt->announced = 1;
    sbr_count(&rt->count.stops, 1);
    if (st.last_seq != UINT64_MAX)
        snprintf(last, sizeof(last), "%llu", (unsigned long long)st.last_seq);
    sbd_log(SBD_ERROR,
            "journal: topic %s: %s: %s: recording stopped, the journal ends at seq %s; its "
            "subscriber is gone, so it holds no publisher back; next try in %u s",
            rt->t->name, what, shmbus_strerror(rc), last, rt->backoff_ms / 1000);
    struct sbd_ev_field f[] = {
        SBD_EV_S("topic", rt->t->name), SBD_EV_S("error", shmbus_strerror(rc)),
        SBD_EV_U("last_seq", st.last_seq), SBD_EV_U("retry_ms", rt->backoff_ms)};
    /* No last_seq field for an empty journal. */
    if (st.last_seq == UINT64_MAX)
        f[2] = f[3];
    sbd_event("journal_stopped", f, st.last_seq == UINT64_MAX ? 3 : 4);
}

/* (Re)open a waiting recording. @return 1 if it records now. */
static int topic_start(struct sbr_topic *rt, uint64_t now)
{
    shmbus_journal_stats st;
    uint64_t start, gap;
    int rc = topic_open(rt);

    if (rc < 0) {
        topic_stop(rt, rc, now,
                   rc == -ELOOP ? "cannot open its journal (a symbolic link in its place or in "
                                  "it, never followed: whoever may write in --journal-dir "
                                  "could point it anywhere)"
                                : "cannot open its journal");
        return 0;
    }
    shmbus_journal_stats_get(rt->j, &st);
    rt->floor = st.last_seq;
    start = rt->next;
    /* What lies between the journal's end and where the subscriber starts
     * is missing: the writer records it as a gap with the first message. */
    gap = st.last_seq == UINT64_MAX ? start : start > st.last_seq + 1 ? start - st.last_seq - 1 : 0;
    rt->state = SBR_RECORDING;
    rt->err = 0;
    if (!rt->announced) {
        sbd_log(SBD_INFO, "journal: recording topic %s (%s) into %s/%s from seq %llu", rt->t->name,
                rt->reliable ? "reliable, held until durable" : "lossy", rt->rec->cfg->journal_dir,
                rt->t->name, (unsigned long long)start);
        return 1;
    }
    rt->announced = 0;
    sbr_count(&rt->count.resumes, 1);
    sbd_log(SBD_WARN,
            "journal: topic %s: recording again from seq %llu; %llu messages before it are "
            "missing from the journal (a gap record)",
            rt->t->name, (unsigned long long)start, (unsigned long long)gap);
    sbd_event("journal_resumed",
              (struct sbd_ev_field[]){SBD_EV_S("topic", rt->t->name), SBD_EV_U("gap", gap),
                                      SBD_EV_U("seq", start)},
              3);
    return 1;
}

/* shmbus_poll() callback: copy one message into the batch. Stops the poll
 * when the batch is full, by count or by bytes. */
static int topic_copy(const shmbus_msg *msg, void *arg)
{
    struct sbr_batch *b = arg;

    b->msgs[b->n] = *msg;
    b->offs[b->n] = b->used;
    memcpy(b->buf + b->used, msg->data, msg->len);
    b->used += msg->len;
    b->n++;
    return b->n == SBR_BATCH || b->used >= SBR_BATCH_BYTES;
}

/* The recorder was evicted (it held publishers back past the topic's
 * stall timeout): what it appended stands (flushed), a new subscriber goes
 * on from the next message and the writer records what lies between as a
 * gap. Rejoining from the oldest would hold the topic again at once. */
static int topic_rejoin(struct sbr_topic *rt, uint64_t now)
{
    shmbus_sub_opts o = {.start = SHMBUS_START_NEXT};
    shmbus_sub *sub;
    uint64_t to;
    int rc = shmbus_journal_flush(rt->j);

    if (rc < 0) {
        topic_stop(rt, rc, now, "cannot write its journal");
        return 0;
    }
    rc = shmbus_sub_create(rt->t->t, &o, &sub);
    if (rc == 0 && rt->reliable && (rc = sb_relay_sub_hold(sub)) < 0)
        shmbus_sub_destroy(sub);
    if (rc < 0) {
        topic_stop(rt, rc, now, "cannot subscribe again after its eviction");
        return 0;
    }
    shmbus_sub_destroy(rt->sub); /* the slot count is unchanged: one for one */
    rt->sub = sub;
    to = sb_relay_sub_held(sub);
    sbr_count(&rt->count.evictions, 1);
    sbd_log(SBD_WARN,
            "journal: topic %s: recorder evicted for holding publishers back past the topic's "
            "stall timeout: it goes on from seq %llu; the %llu messages from seq %llu are "
            "missing from the journal (a gap record)",
            rt->t->name, (unsigned long long)to,
            (unsigned long long)(to > rt->next ? to - rt->next : 0), (unsigned long long)rt->next);
    rt->next = rt->released = to;
    return 1;
}

/* Append the batch. @return 0, or the error that failed the writer. */
static int topic_append(struct sbr_topic *rt, struct sbr_batch *b)
{
    for (unsigned i = 0; i < b->n; i++) {
        int rc;

        b->msgs[i].data = b->buf + b->offs[i];
        rc = shmbus_journal_append(rt->j, &b->msgs[i]);
        /* Over the format's record limit: the writer records it as part of
         * the gap before the next message. */
        if (rc == SHMBUS_ERR_TOO_BIG) {
            sbr_count(&rt->count.too_big, 1);
            sbd_log(SBD_WARN,
                    "journal: topic %s: message seq %llu of %u bytes is over the journal's "
                    "record limit: recorded as a gap",
                    rt->t->name, (unsigned long long)b->msgs[i].seq, b->msgs[i].len);
            continue;
        }
        if (rc < 0)
            return rc;
        sbr_count(&rt->count.records, (uint64_t)rc);
    }
    return 0;
}

/* The last seq the sync policy made durable (with none, the last
 * written), or UINT64_MAX. What the journal held when it was opened
 * counts: a crash of the machine, the only thing that could still take
 * it, takes the ring too. */
static uint64_t topic_durable(const struct sbr_topic *rt, const shmbus_journal_stats *st)
{
    uint64_t d = rt->rec->jopts.sync == SHMBUS_JOURNAL_SYNC_NONE ? st->last_seq : st->synced_seq;

    if (rt->floor != UINT64_MAX && (d == UINT64_MAX || d < rt->floor))
        d = rt->floor;
    return d;
}

/* Held: let publishers reuse what the sync policy made durable, never
 * past what was read. */
static int topic_release(struct sbr_topic *rt, const shmbus_journal_stats *st, uint64_t now)
{
    uint64_t durable = topic_durable(rt, st);
    uint64_t rel;
    int rc;

    if (!rt->reliable || durable == UINT64_MAX)
        return 0;
    rel = durable + 1 < rt->next ? durable + 1 : rt->next;
    if (rel <= rt->released)
        return 0;
    rc = sb_relay_sub_release(rt->sub, rel);
    if (rc == SHMBUS_ERR_EVICTED)
        return topic_rejoin(rt, now);
    if (rc == 0)
        rt->released = rel;
    return 0;
}

/* Held: report a recorder that keeps the ring full (publishers wait) for
 * over SBR_HOLD_REPORT_MS: counted once per episode, logged at most every
 * SBR_HOLD_LOG_MS. */
static void topic_hold_check(struct sbr_topic *rt, uint64_t now)
{
    shmbus_sub_stats s;

    if (!rt->reliable || rt->sub == NULL || shmbus_sub_stats_get(rt->sub, &s) < 0)
        return;
    /* lag counts from the held position: a full ring's worth holds them. */
    if (s.lag < rt->t->info.capacity) {
        rt->full_since_ns = 0;
        rt->full_counted = 0;
        return;
    }
    if (rt->full_since_ns == 0)
        rt->full_since_ns = now;
    if (now - rt->full_since_ns < SBR_HOLD_REPORT_MS * MS)
        return;
    if (!rt->full_counted) {
        rt->full_counted = 1;
        sbr_count(&rt->count.holds, 1);
    }
    if (rt->full_logged_ns != 0 && now - rt->full_logged_ns < SBR_HOLD_LOG_MS * MS)
        return;
    rt->full_logged_ns = now;
    sbd_log(SBD_WARN,
            "journal: topic %s: the recorder has held its publishers back for %llu ms: the "
            "ring is full of messages the journal has not made durable yet (a slow disk, or "
            "--journal-sync); %s",
            rt->t->name, (unsigned long long)((now - rt->full_since_ns) / MS),
            rt->t->info.stall_timeout_ms == 0
                ? "the topic has no stall timeout, so they wait for the journal"
                : "past the topic's stall timeout the recorder is evicted (a gap)");
}

/* Record what is ready on @p rt. @return above 0 if it took messages. */
static int topic_record(struct sbr_topic *rt, uint64_t now, uint64_t *wake, struct sbr_batch *b)
{
    shmbus_journal_stats st;
    int n, rc;

    b->n = 0;
    b->used = 0;
    n = shmbus_poll(rt->sub, topic_copy, b, SBR_BATCH);
    /* Read in place, a subscriber evicted during the poll may have read
     * cells a publisher was overwriting: then none of its copies count. */
    if (n == SHMBUS_ERR_EVICTED)
        return topic_rejoin(rt, now);
    if (n == SHMBUS_ERR_CORRUPT) {
        shmbus_sub_stats s;

        sbr_count(&rt->count.damaged, 1);
        sbd_log(SBD_WARN, "journal: topic %s: a damaged cell skipped (a gap record)", rt->t->name);
        /* Read past it: the position says where (held: the read one). */
        if (shmbus_sub_stats_get(rt->sub, &s) == 0 && s.position > rt->next)
            rt->next = s.position;
    } else if (n < 0) {
        topic_stop(rt, n, now, "cannot read the topic");
        return 0;
    }
    if (b->n > 0 && b->msgs[b->n - 1].seq + 1 > rt->next)
        rt->next = b->msgs[b->n - 1].seq + 1;
    rc = topic_append(rt, b);
    shmbus_journal_stats_get(rt->j, &st);
    /* Flush what came, and, with an interval, what waits to be synced;
     * with a retention age, a quiet journal now and then for it. */
    if (rc == 0 &&
        (b->n > 0 || topic_durable(rt, &st) != st.last_seq ||
         (rt->rec->jopts.retain_ns != 0 && now - rt->flushed_ns >= SBR_RETAIN_MS * MS))) {
        rc = shmbus_journal_flush(rt->j);
        rt->flushed_ns = now;
    }
    if (rc < 0) {
        topic_stop(rt, rc, now, "cannot write its journal");
        return 0;
    }
    shmbus_journal_stats_get(rt->j, &st);
    if (b->n > 0)
        rt->backoff_ms = 0; /* it works again: the next stop retries soon */
    if (rt->rec->jopts.sync == SHMBUS_JOURNAL_SYNC_INTERVAL &&
        topic_durable(rt, &st) != st.last_seq && now + rt->rec->jopts.sync_interval_ms * MS < *wake)
        *wake = now + rt->rec->jopts.sync_interval_ms * MS;
    if (topic_release(rt, &st, now) > 0)
        return 1;
    topic_hold_check(rt, now);
    return b->n > 0 || n != 0;
}

/* Make the batch's buffer big enough for @p rt. @return 0 or -ENOMEM. */
static int batch_fit(struct sbr_batch *b, const struct sbd_topic *t)
{
    size_t need = batch_need(t);
    uint8_t *p;

    if (b->cap >= need)
        return 0;
    p = realloc(b->buf, need);
    if (p == NULL)
        return -ENOMEM;
    b->buf = p;
    b->cap = need;
    return 0;
}

/* Its segment broke (a client truncated it): recording ends for good. */
static void topic_end(struct sbr_topic *rt)
{
    sbd_log(SBD_WARN, "journal: topic %s: its segment was truncated: no longer recorded",
            rt->t->name);
    sbr_topic_finish(rt);
    rt->state = SBR_ENDED;
}

int sbr_topic_round(struct sbr_topic *rt, uint64_t now, uint64_t *wake, struct sbr_batch *b)
{
    if (rt->state == SBR_ENDED)
        return 0;
    if (sbd_topic_broken(rt->t)) {
        topic_end(rt);
        return 0;
    }
    /* Before a retry too: a full disk may get its room back from them. */
    sbr_aside_retain(rt, now);
    if (rt->state == SBR_WAITING) {
        if (now >= rt->retry_ns)
            return topic_start(rt, now);
        if (rt->retry_ns < *wake)
            *wake = rt->retry_ns;
        return 0;
    }
    if (batch_fit(b, rt->t) < 0) {
        topic_stop(rt, -ENOMEM, now, "no memory for a batch");
        return 0;
    }
    return topic_record(rt, now, wake, b);
}

int sbr_topic_ready(struct sbr_topic *rt, memory_order order)
{
    if (rt->state != SBR_RECORDING || rt->sub == NULL)
        return 0;
    return sb_relay_sub_ready(rt->sub, order) != 0;
}

void sbr_topic_finish(struct sbr_topic *rt)
{
    shmbus_journal_stats st = {.last_seq = UINT64_MAX};
    char line[512];
    size_t len = 0;
    int rc;

    if (rt->j != NULL)
        shmbus_journal_stats_get(rt->j, &st);
    /* The journal first: its flush (and sync) before the slot lets go. */
    rc = shmbus_journal_close(rt->j);
    rt->j = NULL;
    if (rc < 0)
        sbd_log(SBD_ERROR, "journal: topic %s: the last flush failed: %s", rt->t->name,
                shmbus_strerror(rc));
    topic_sub_drop(rt);
#define SBR_COUNTER_TEXT(field, doc)                                                               \
    len += (size_t)snprintf(                                                                       \
        line + len, sizeof(line) - len, "%s" #field " %llu", len == 0 ? "" : ", ",                 \
        (unsigned long long)atomic_load_explicit(&rt->count.field, memory_order_relaxed));
    SBR_COUNTERS(SBR_COUNTER_TEXT)
#undef SBR_COUNTER_TEXT
    sbd_log(SBD_INFO, "journal: topic %s: recording ends at seq %lld: %s", rt->t->name,
            st.last_seq == UINT64_MAX ? -1ll : (long long)st.last_seq, line);
}
