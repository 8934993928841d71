/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the journal's writer, reader and summary share: a topic's
 * directory and the list of its segment files, their names, the check of
 * a file header, a bounded scanner of records, the index's valid prefix,
 * and the summary of one file (index plus a scan of its tail). Trusts no
 * byte of a file: every length and offset is checked before use, and no
 * allocation is sized by the file beyond SB_JR_PAYLOAD_MAX and an index's
 * entries (at most 2^24, index.c). Not
 * thread-safe: each scanner belongs to one caller.
 */
#ifndef SHMBUS_JOURNAL_FILE_H
#define SHMBUS_JOURNAL_FILE_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "journal/format.h"
#include "shmbus/journal.h"

/* Offsets in files of up to 1 TiB go through off_t (pread, ftruncate): a
 * 32-bit off_t (a 32-bit build without _FILE_OFFSET_BITS=64) would wrap
 * them past 2 GiB. */
static_assert(sizeof(off_t) == 8, "the journal's file offsets need a 64-bit off_t");

/* Open directory @p name of directory @p dfd, never through a symbolic
 * link (O_NOFOLLOW: whoever may write in @p dfd could point one anywhere).
 * Every file in a topic's directory is opened relative to it, with
 * O_NOFOLLOW too. @return the descriptor; -ELOOP (a link); -ENOENT;
 * -ENOTDIR; -EACCES; -errno. */
int sb_jr_dir_openat(int dfd, const char *name);

/* Open DIR/TOPIC as a directory into *@p fd (sb_jr_dir_openat(): DIR may
 * be a link, the operator's; DIR/TOPIC may not).
 * @return 0; SHMBUS_ERR_BAD_NAME; -ENOENT; -ENOTDIR; -ELOOP; -EACCES;
 *         -errno. */
int sb_jr_topic_dir_open(const char *dir, const char *topic, int *fd);

/* Name of the segment file (@p index 0) or index file (1) of @p seq. */
void sb_jr_file_name(char out[32], uint64_t seq, int index);

/* First seqs of the segment files in directory @p dfd, sorted, into a
 * malloc'd *@p seqs of *@p n (the caller frees). Names that are not
 * exactly 20 digits (the lock, index files, others) are not segments.
 * @return 0, -ENOMEM, -errno. */
int sb_jr_segs_list(int dfd, uint64_t **seqs, size_t *n);

/* Fill @p h as the header of the file of @p first_seq of @p topic. */
void sb_jr_hdr_fill(struct sb_jr_file_hdr *h, const char *topic, uint64_t first_seq);

/* Read and check the header of segment file @p fd, named @p first_seq,
 * of topic @p topic (NULL: any). @return 0; SHMBUS_ERR_TRUNCATED (shorter
 * than a header); SHMBUS_ERR_BAD_MAGIC (not a journal file, another
 * topic's, or a header that contradicts its name); SHMBUS_ERR_VERSION;
 * SHMBUS_ERR_CORRUPT (bad CRC); -errno. */
int sb_jr_hdr_read(int fd, uint64_t first_seq, const char *topic);

/* A bounded window on one file for reading records in order. */
struct sb_jr_scan {
    int fd;
    uint64_t pos;  /* offset of the next record */
    uint64_t size; /* the file's size, as last looked at */
    unsigned char *buf;
    size_t cap;
    uint64_t buf_off; /* file offset of buf[0] */
    size_t buf_len;   /* valid bytes in buf */
};

/* What sb_jr_scan_rec() found at the scanner's pos. */
enum sb_jr_scan_rc {
    SB_JR_SCAN_DAMAGE = -1, /* not a valid record (what says why) */
    SB_JR_SCAN_SHORT = 0,   /* fewer bytes than the record needs before size */
    SB_JR_SCAN_OK = 1       /* a valid record: *rec, *payload; pos moved past it */
};

void sb_jr_scan_init(struct sb_jr_scan *s, int fd, uint64_t pos, uint64_t size);
void sb_jr_scan_fini(struct sb_jr_scan *s);
/* Forget the buffered bytes (the file may have changed under them). */
void sb_jr_scan_drop(struct sb_jr_scan *s);

/* The record at s->pos, checked (mark, length, CRC) against s->size.
 * @p rec and @p payload point into the scanner's buffer until its next call.
 * @return enum sb_jr_scan_rc, or -errno (< -1) from reading or memory. */
int sb_jr_scan_rec(struct sb_jr_scan *s, struct sb_jr_rec *rec, const void **payload,
                   const char **what);

/* Offset of the next valid record after the damaged one at s->pos, or
 * s->size if there is none; s->pos is left as it was. @return the offset,
 * or -errno. */
int64_t sb_jr_scan_resync(struct sb_jr_scan *s);

/* Valid index entries of segment @p first_seq of @p size bytes, read from
 * its index file: those before the first with a bad CRC, an offset outside
 * the records, or an offset or seq not after the previous one. Into a
 * malloc'd *@p ents of *@p n (the caller frees; none: NULL, 0).
 * @return 0 (a missing or foreign index file is just no entries), -ENOMEM,
 * -errno. */
int sb_jr_index_load(int dfd, uint64_t first_seq, uint64_t size, struct sb_jr_index_entry **ents,
                     size_t *n);

/* One segment file summed up: its index's verified entries and a scan of
 * the tail past the last, and a scan of its head for its first message. */
struct sb_jr_fsum {
    uint64_t size;     /* bytes of the file */
    uint64_t good_end; /* end of the last good record (header_len if none) */
    uint64_t records, gaps, gap_messages;
    uint64_t first_msg_seq, first_msg_time; /* UINT64_MAX, 0: no message */
    uint64_t last_msg_seq, last_msg_time;   /* UINT64_MAX, 0: no message */
    uint64_t end_seq;               /* 1 + the last seq a record covers (first_seq if none) */
    uint64_t last_time;             /* time of the last record (0: none) */
    struct sb_jr_index_entry *ents; /* sb_jr_fsum_get(keep_ents): the verified entries */
    size_t nents;
    /* entries the tail scan would add (at SB_JR_INDEX_EVERY): with keep_ents */
    uint64_t since_entry; /* bytes of records since the last entry at good_end */
};

/* Sum up segment @p first_seq of directory @p dfd (fd: its open file).
 * With @p keep_ents, out->ents holds the verified index entries and those
 * the tail scan adds (the caller frees); else NULL.
 * @return 0; the errors of sb_jr_hdr_read(); -ENOMEM; -errno. */
int sb_jr_fsum_get(int dfd, int fd, uint64_t first_seq, int keep_ents, struct sb_jr_fsum *out);

/* The first good message of the file of @p s (its pos moves; damage before
 * it is passed over), into *@p seq and *@p time_ns.
 * @return 1 found; 0 none; -errno. */
int sb_jr_first_msg(struct sb_jr_scan *s, uint64_t *seq, uint64_t *time_ns);

/* 1 if the record at entry @p e's offset in the file of @p s is the record
 * it names (its seq and time), else 0 (s->pos is left as it was). */
int sb_jr_entry_verify(struct sb_jr_scan *s, const struct sb_jr_index_entry *e);

/* Fill @p e's crc. */
void sb_jr_entry_seal(struct sb_jr_index_entry *e);

#endif
