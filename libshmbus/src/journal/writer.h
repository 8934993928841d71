/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal writer's state, shared by its two files: writer.c (open,
 * recovery, append, flush, close) and write_io.c (buffered writes, the
 * index, new files, syncs and retention). Not thread-safe: one thread
 * drives a writer.
 */
#ifndef SHMBUS_JOURNAL_WRITER_H
#define SHMBUS_JOURNAL_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "journal/format.h"
#include "shmbus/journal.h"

#define SB_JR_BUF_SIZE (1u << 20)  /* bytes buffered before a write(), at most */
#define SB_JR_BUF_MIN  (16u << 10) /* the buffer's first size */

struct shmbus_journal {
    int dfd;                                    /* the topic's directory */
    int lock_fd;                                /* its lock file, flock'ed */
    int fd;                                     /* the segment file written (-1: none yet) */
    int ifd;                                    /* its index file (-1: none) */
    uint64_t file_seq;                          /* the segment's first seq */
    uint64_t file_size;                         /* bytes of whole records written to it */
    uint64_t index_size;                        /* bytes written to its index */
    uint64_t since_entry;                       /* bytes of records since its last index entry */
    uint64_t f_records, f_gaps, f_gap_messages; /* in the segment so far */
    uint64_t f_last_msg_seq, f_last_msg_time;   /* its last message (UINT64_MAX, 0) */
    unsigned char *buf;                         /* records not yet written */
    size_t buf_len, buf_cap;
    struct sb_jr_index_entry *ents; /* index entries not yet written */
    size_t nents, ents_cap;
    uint64_t last_sync_ns;      /* CLOCK_MONOTONIC of the last fdatasync */
    uint64_t last_retain_ns;    /* of the last retention pass at a flush */
    uint64_t age_seq, age_time; /* the oldest file's newest record time, cached */
    uint64_t dirty_seq;         /* last seq written, not yet synced (UINT64_MAX: none) */
    int failed;                 /* the error that failed the writer, or 0 */
    uint32_t dir_mode, file_mode;
    shmbus_journal_opts opts;
    shmbus_journal_stats st;
    char topic[SHMBUS_TOPIC_NAME_MAX + 1];
};

/* Write the buffered records, then their index entries. On an error the
 * segment is cut back to its last whole record and the writer failed.
 * @return 0 or the error. */
int sb_jr_w_out(shmbus_journal *w);

/* Write one record whose bytes do not fit the buffer straight to the file
 * (the buffer is empty). @return 0 or the error (the writer failed). */
int sb_jr_w_direct(shmbus_journal *w, const struct sb_jr_rec *h, const void *data);

/* Create (or empty) the index of segment @p seq, with its header, as the
 * one written. @return 0 or -errno. */
int sb_jr_w_index_open(shmbus_journal *w, uint64_t seq);

/* Start segment file @p seq (with its index) as the one written.
 * @return 0 or the error (the writer failed). */
int sb_jr_w_file_new(shmbus_journal *w, uint64_t seq);

/* Finish the segment written: write out, sync unless the policy is NONE,
 * and close it. @return 0 or the error. */
int sb_jr_w_roll(shmbus_journal *w);

/* fdatasync the segment written; @p force: whatever the policy says.
 * @return 0 or the error (the writer failed). */
int sb_jr_w_sync(shmbus_journal *w, int force);

/* Delete the oldest files past retain_bytes or retain_ns, never the one
 * written. @return 0 or -errno (the writer goes on: retention retries). */
int sb_jr_w_retain(shmbus_journal *w);

/* Fail @p w with @p err (the first error sticks). @return the error. */
int sb_jr_w_fail(shmbus_journal *w, int err);

#endif
