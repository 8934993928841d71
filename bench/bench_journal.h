/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_journal.h - what the files of `shmbus-bench journal` share: its
 * options, the private journal directories a run records into, and the
 * recorder (a subscriber whose every message goes to
 * shmbus_journal_append(), flushed at the end of each poll batch, as
 * `shmbus record` and shmbusd --record do). The recorder without a journal
 * is the unrecorded subscriber the recorded runs are compared with: the
 * same loop, only reading.
 */
#ifndef SHMBUS_BENCH_JOURNAL_H
#define SHMBUS_BENCH_JOURNAL_H

#include "bench.h"
#include "shmbus/journal.h"

/* Messages one poll (one recorder batch) hands over at most: the whole
 * ring, as a recorder that fell behind would take. */
#define JB_BATCH BENCH_CAPACITY
/* Rounds at most. */
#define JB_ROUNDS_MAX 20u
/* A journal directory's path, at most. */
#define JB_PATH_MAX 4096u

enum jb_part { JB_PART_RECORD, JB_PART_REPLAY, JB_PART_LATENCY };

/* Where a run records: not at all, or into a private directory on tmpfs
 * or on the disk. */
enum jb_where { JB_NONE, JB_TMPFS, JB_DISK, JB_WHERE };

extern const char *const jb_where_name[JB_WHERE];

struct jb_opts {
    enum jb_part part;
    uint64_t size;
    uint64_t rounds;
    double seconds;             /* record: each run */
    uint64_t count;             /* replay: messages in the journal; latency: publishes */
    uint64_t interval_us;       /* latency: the publisher's pace */
    uint32_t mode;              /* SHMBUS_LOSSY or SHMBUS_RELIABLE */
    shmbus_journal_opts jo;     /* the writer's options (--sync) */
    const char *sync_name;      /* --sync as given */
    const char *base[JB_WHERE]; /* parent directories for tmpfs and disk */
    int json;
    int want_pin;
    int pin;
};

/* The counters a recorder child hands to the parent. */
struct jb_jstats {
    _Alignas(BENCH_BLOCK) _Atomic uint64_t records;
    _Atomic uint64_t gaps;
    _Atomic uint64_t bytes;
    _Atomic uint64_t batches; /* polls that returned messages (each flushed) */
};

/* A recorder: counts every message; with a journal, appends it too. */
struct jb_rec {
    shmbus_journal *j; /* NULL: the unrecorded subscriber */
    uint64_t delivered;
    uint64_t lost;
    uint64_t sum;
    uint64_t batches; /* polls that returned messages */
    int err;          /* the first failed append */
};

/**
 * Make a fresh directory for one run under the parent of @p w
 * ("jbench.XXXXXX"), into @p dir (JB_PATH_MAX bytes).
 * @return 0, or -1 (message printed).
 */
int jb_dir_make(const struct jb_opts *o, enum jb_where w, char *dir);

/** Remove @p dir and everything in it. @return 0, or -1 (message printed). */
int jb_dir_remove(const char *dir);

/**
 * A run's journal directory: for @p w other than JB_NONE, make one
 * (jb_dir_make) into @p dir and point @p *used at it; for JB_NONE, leave
 * @p *used NULL. @return 0, or -1 (message printed).
 */
int jb_run_dir(const struct jb_opts *o, enum jb_where w, char *dir, const char **used);

/**
 * Run one consumer and one producer child on @p arg, the consumer first,
 * close @p ready (the consumer's readiness pipe) in the parent and reap
 * both. @return 0 when both started and exited 0, else -1.
 */
int jb_spawn_pair(struct bench_pipe *ready, int (*consume)(void *), int (*produce)(void *),
                  void *arg);

/* A producer child's publishing loop, on @p buf (--size bytes of 0x5a). */
typedef int (*jb_publish_fn)(void *arg, shmbus_pub *pub, uint8_t *buf);

/**
 * The body of a producer child: pinned to the first CPU, a publisher on
 * topic @p name, waiting on @p ready for the consumer, then @p fn on
 * @p arg. @return what @p fn returns, or -1 (message printed).
 */
int jb_produce(const struct jb_opts *o, const char *name, struct bench_pipe *ready,
               jb_publish_fn fn, void *arg);

/**
 * Start recorder @p r: with @p dir, open the journal of @p topic in it
 * with @p o's options; with NULL, the unrecorded subscriber.
 * @return 0, or -1 (message printed).
 */
int jb_rec_open(struct jb_rec *r, const struct jb_opts *o, const char *dir, const char *topic);

/**
 * One batch: poll up to JB_BATCH messages of @p sub into @p r and flush
 * the journal when any came. @return messages, or -1 (message printed).
 */
int jb_rec_poll(struct jb_rec *r, shmbus_sub *sub);

/**
 * Close @p r's journal (if any) and store its counters into @p out (when
 * not NULL). @return 0, or -1 (message printed).
 */
int jb_rec_close(struct jb_rec *r, struct jb_jstats *out);

/**
 * The body of a draining consumer child: pinned to the second CPU, a
 * recorder (jb_rec_open(), into @p dir, or unrecorded with NULL) on topic
 * @p name, ready posted on @p ready, then polling until the producer
 * raised done in @p sh and nothing is left; reports to @p sh, and the
 * recorder's counters (jb_rec_close()) to @p js when not NULL.
 * @return 0, or -1 (message printed).
 */
int jb_consume(const struct jb_opts *o, const char *name, const char *dir, struct bench_pipe *ready,
               struct bench_tp_shared *sh, struct jb_jstats *js);

/** The replay part (bench_journal_replay.c). @return 0, or -1. */
int jb_replay(const struct jb_opts *o);

/** The latency part (bench_journal_lat.c). @return 0, or -1. */
int jb_latency(const struct jb_opts *o);

#endif /* SHMBUS_BENCH_JOURNAL_H */
