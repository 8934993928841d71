/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal reader's state, shared by reader.c (reading in order,
 * following a writer) and seek.c (seeks by seq and by time). Not
 * thread-safe: one thread drives a reader.
 */
#ifndef SHMBUS_JOURNAL_READER_H
#define SHMBUS_JOURNAL_READER_H

#include <stdint.h>

#include "journal/file.h"
#include "shmbus/journal.h"

#define SB_JR_LIST_EVERY_NS 50000000ull /* an idle follower lists the directory this often */

struct shmbus_journal_reader {
    int dfd;             /* the topic's directory */
    int fd;              /* the segment file read (-1: none) */
    int have_file;       /* file_seq names a file read (else: start at the first) */
    int file_gone;       /* the file read was deleted under us */
    uint64_t file_seq;   /* its first seq */
    struct sb_jr_scan s; /* its records */
    uint64_t good_end;   /* end of the last good record read in it */
    uint64_t good_seq;   /* last seq of the last good record (UINT64_MAX: none) */
    uint64_t next_seq;   /* seq after the last record (UINT64_MAX: none yet) */
    uint64_t listed_ns;  /* CLOCK_MONOTONIC of the last listing while idle */
    uint64_t probe_pos;  /* an incomplete record found with no good one after it */
    uint64_t probe_size; /* ... when the file had this size (0: none yet) */
    int pend;            /* pend_rec is the next record returned */
    int pend_corrupt;    /* ... after SHMBUS_ERR_CORRUPT for damage a seek skipped */
    shmbus_journal_record pend_rec;
    int have_dmg;
    shmbus_journal_damage dmg;
    uint64_t damaged;
};

/* Read the next record, ignoring pend. @return as shmbus_journal_next(). */
int sb_jr_r_read(shmbus_journal_reader *r, shmbus_journal_record *rec);

/* Open segment @p seq (@p newest: no file after it) as the one read, at
 * its first record. @return 1; 0 its header is not written yet (newest);
 * SHMBUS_ERR_CORRUPT (its header is damaged: reported, the reader stands
 * at its end); -ENOENT (gone); -errno. */
int sb_jr_r_file_open(shmbus_journal_reader *r, uint64_t seq, int newest);

/* Close the file read (it stays "read": the next is the one after). */
void sb_jr_r_file_close(shmbus_journal_reader *r);

#endif
