/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The structs recording's files share: rec.c (start and stop, the
 * pattern table, the registry listener that seats recorders, the records'
 * table, the recorder threads' loop) and topic.c (one topic's recording:
 * its subscriber and journal writer, each round's poll, append and flush,
 * the release of a held reliable topic, a stop on a write error and its
 * retries) and aside.c (set-aside journals: making one, and their
 * retention). Who may touch what is stated per field:
 *   - "mu": under sbd_rec.mu (records are appended, never removed before
 *     sbd_rec_stop(), which frees them after every thread ended);
 *   - "thread": the recorder thread that serves the topic, only, once the
 *     seat handed the record over (under sbr_thread.mu, which orders the
 *     seat's writes before the thread's reads);
 *   - counters: relaxed atomics, independent monitoring values.
 * Names: sbr_, then the file (sbr_topic_*() are topic.c's, sbr_aside_*()
 * aside.c's); the daemon's interface (rec.h) is sbd_rec_*.
 */
#ifndef SHMBUSD_REC_STATE_H
#define SHMBUSD_REC_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "rec.h"
#include "registry.h"
#include "registry/relay.h"
#include "shmbus/journal.h"

/* Topics per recorder thread: one sb_relay_wait() covers them and its bell. */
#define SBR_TOPICS SB_RELAY_TOPICS_MAX
/* Recorder threads, started as topics come: up to SBR_THREADS_MAX *
 * SBR_TOPICS topics are recorded (beyond them a topic is refused, logged). */
#define SBR_THREADS_MAX 64
/* One round of a topic takes at most this many messages, or this many
 * bytes (the message that crosses it included), before it is flushed. */
#define SBR_BATCH       4096u
#define SBR_BATCH_BYTES (1u << 20)
/* A stopped recording is retried after SBR_RETRY_MIN_MS, doubling up to
 * SBR_RETRY_MAX_MS while it keeps failing. */
#define SBR_RETRY_MIN_MS 1000u
#define SBR_RETRY_MAX_MS 60000u
/* A held reliable topic full for this long is reported (log line and
 * counter); its log lines come at most every SBR_HOLD_LOG_MS. */
#define SBR_HOLD_REPORT_MS 1000u
#define SBR_HOLD_LOG_MS    10000u
/* With an age in --journal-retain, a quiet topic's journal is flushed this
 * often all the same: retention runs at a flush (journal.h), and its files
 * age with no message to flush. */
#define SBR_RETAIN_MS 1000u
/* Longest sleep of a recorder thread before it looks at its topics again. */
#define SBR_NAP_MS 100u

/* A topic's counters: name, and what it counts. Logged when recording
 * stops (sbr_topic_finish()). */
#define SBR_COUNTERS(X)                                                                            \
    X(records, "messages appended")                                                                \
    X(stops, "recordings stopped by an error (a full disk), then retried")                         \
    X(resumes, "stopped recordings that started again")                                            \
    X(evictions, "times the stall timeout evicted the recorder")                                   \
    X(holds, "times it held the topic's publishers back for over a second")                        \
    X(damaged, "damaged cells skipped")                                                            \
    X(too_big, "messages over the journal's record limit, recorded as gaps")                       \
    X(aside_files, "files of its set-aside journals deleted by retention")
#define SBR_COUNTER_ATOMIC(field, doc) _Atomic uint64_t field;
struct sbr_counters {
    SBR_COUNTERS(SBR_COUNTER_ATOMIC)
};

/* Where a topic's recording stands (thread). */
enum sbr_state {
    SBR_WAITING,   /* no journal open: opened at retry_ns (0: at once) */
    SBR_RECORDING, /* subscriber and journal open */
    SBR_ENDED      /* its segment broke: never again */
};

/* A recorded topic: made by the registry listener for a topic a pattern
 * matches, when the topic is added (or at start, for those there). */
struct sbr_topic {
    struct sbd_rec *rec;
    struct sbd_topic *t; /* the registry's: lives until the daemon stops */
    int reliable;        /* fixed: its subscriber is held (relay.h) */
    uint64_t seat_tail;  /* fixed: the topic's tail when the record was made */
    /* thread (the seat's first, before the hand-over) */
    int state;               /* enum sbr_state */
    shmbus_sub *sub;         /* NULL while none */
    shmbus_journal *j;       /* NULL while none */
    uint64_t next;           /* the seq after the last one read */
    uint64_t released;       /* held: publishers may reuse the cells below it */
    uint64_t floor;          /* the journal's last seq when it was opened (UINT64_MAX:
                                none): as durable as the ring could make it */
    int err;                 /* the error that stopped it, 0 if none */
    int opened;              /* its journal was opened once (it is this topic's) */
    int announced;           /* a journal_stopped event went out, no resume since */
    uint32_t backoff_ms;     /* the last wait between retries, 0 if none */
    uint64_t retry_ns;       /* SBR_WAITING: CLOCK_MONOTONIC of the next try */
    uint64_t flushed_ns;     /* CLOCK_MONOTONIC of the last flush */
    uint64_t full_since_ns;  /* when the held ring was found full (0: it is not) */
    int full_counted;        /* this episode is counted in holds */
    uint64_t full_logged_ns; /* when one was last logged */
    int asides;              /* set-aside journals may be left (1 until a look finds none) */
    uint64_t aside_ns;       /* CLOCK_MONOTONIC of the last look at them */
    int aside_err;           /* the error last logged of their retention, 0 if none */
    struct sbr_counters count;
};

/* Messages copied out of one poll: appended only once the poll says its
 * reads stand (a reliable topic is read in place, and an eviction during
 * the poll lets publishers overwrite what it read). The thread's. */
struct sbr_batch {
    shmbus_msg msgs[SBR_BATCH];
    size_t offs[SBR_BATCH]; /* of each payload in buf */
    unsigned n;
    uint8_t *buf; /* grown to the largest batch: SBR_BATCH_BYTES and a message */
    size_t used, cap;
};

/* A recorder thread: serves up to SBR_TOPICS topics. */
struct sbr_thread {
    struct sbd_rec *rec;
    pthread_t th;
    unsigned idx;
    _Atomic uint32_t bell; /* futex word: a topic handed over, or stop */
    _Atomic int stop;      /* relaxed: read after the bell's acquire */
    pthread_mutex_t mu;
    struct sbr_topic *want[SBR_TOPICS]; /* mu: topics handed over */
    unsigned nwant;                     /* mu */
    /* The thread's own. */
    struct sbr_topic *have[SBR_TOPICS];
    unsigned nhave;
    struct sbr_batch batch;
};

struct sbd_rec {
    const struct sbd_config *cfg;
    struct sbd_registry *reg;
    shmbus_journal_opts jopts; /* from cfg (fixed) */
    size_t glob_len[SBD_REC_PATTERNS_MAX];
    pthread_mutex_t mu;
    struct sbr_topic **recs;                     /* mu: util/vec.h */
    size_t nrecs, recs_cap;                      /* mu */
    struct sbr_thread *threads[SBR_THREADS_MAX]; /* mu: started on demand */
    unsigned nthreads;                           /* mu */
    int stop;                                    /* mu: no record is made after it */
};

/* topic.c's, for rec.c. */

/* Seat @p rt's subscriber: from the oldest message the ring holds (a
 * reliable topic: the oldest one held for another reader, such as a dead
 * daemon's recorder; the journal's writer skips what it has), held on a
 * reliable topic. Under topic_lock (the seat) or in rt's thread.
 * @return 0 or the error of shmbus_sub_create() / sb_relay_sub_hold(). */
int sbr_topic_seat(struct sbr_topic *rt);

/* One round of @p rt at CLOCK_MONOTONIC @p now: record what is ready,
 * flush, release; or (re)open a stopped recording whose time has come.
 * Lowers *@p wake to when the topic wants looking at again. Thread.
 * @return above 0 if it took messages (look again before sleeping). */
int sbr_topic_round(struct sbr_topic *rt, uint64_t now, uint64_t *wake, struct sbr_batch *b);

/* Is a message (or an error) ready for @p rt? For sb_relay_wait(). Thread. */
int sbr_topic_ready(struct sbr_topic *rt, memory_order order);

/* aside.c's, for topic.c. */

/* The journal just opened for @p rt (its last seq @p last) is an earlier
 * topic's: close it, move it aside to DIR/NAME.old-NS (a journal of its
 * own) and open a new one. Thread. @return 0 or -errno (rt->j NULL). */
int sbr_aside_make(struct sbr_topic *rt, uint64_t last, uint64_t published);

/* With --journal-retain, apply it to @p rt's set-aside journals, at most
 * every SBR_RETAIN_MS (CLOCK_MONOTONIC @p now) while any is left. Thread. */
void sbr_aside_retain(struct sbr_topic *rt, uint64_t now);

/* Stop recording @p rt for good: flush and close its journal (logging its
 * counters) and destroy its subscriber. Thread, or once no thread runs. */
void sbr_topic_finish(struct sbr_topic *rt);

/* Add @p n to a counter (relaxed: an independent monitoring value). */
static inline void sbr_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

#endif
