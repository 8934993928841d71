/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal.h - the journal of libshmbus: topics recorded to files, read
 * back in order, sought by sequence or by time. `shmbus record` and
 * shmbusd --record write journals through this API; `shmbus journal`,
 * `shmbus replay` and a subscriber that starts before the ring
 * (SHMBUS_START_SEQ, SHMBUS_START_TIME) read them. The format is
 * docs/journal.md: append-only files of CRC32C-checked records, one
 * directory per topic, and an index per file for seeks.
 *
 * Publishing never touches a journal: a recorder is a subscriber. The
 * conventions of shmbus.h hold here too.
 */
#ifndef SHMBUS_JOURNAL_H
#define SHMBUS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "shmbus/shmbus.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shmbus_journal shmbus_journal;
typedef struct shmbus_journal_reader shmbus_journal_reader;

/** When a writer makes what it wrote durable (shmbus_journal_opts.sync).
 * Every policy writes each batch to the file at shmbus_journal_flush(): a
 * crash of the writing process loses nothing flushed. They differ in what a
 * crash of the machine (or of the kernel, or power) may lose. */
enum shmbus_journal_sync {
    /** Never fdatasync: the kernel writes back when it likes (typically
     *  within 30 s); a machine crash may lose that much. */
    SHMBUS_JOURNAL_SYNC_NONE = 0,
    /** fdatasync at a flush when sync_interval_ms passed since the last: a
     *  machine crash loses at most that interval plus one batch, if
     *  shmbus_journal_flush() is called at least that often, even with
     *  nothing appended (the last batch is synced by a later flush). */
    SHMBUS_JOURNAL_SYNC_INTERVAL = 1,
    /** fdatasync at every flush: a machine crash loses nothing flushed. */
    SHMBUS_JOURNAL_SYNC_BATCH = 2
};

/** Writer options. Zero fields take the documented default. */
typedef struct shmbus_journal_opts {
    uint64_t segment_size;     /**< start a new file once one holds this many
                                    bytes, 64 KiB..1 TiB (0: 64 MiB) */
    uint64_t retain_bytes;     /**< delete the oldest files while the topic's files
                                    hold more (0: no limit); never the file written */
    uint64_t retain_ns;        /**< delete files whose newest record is older than
                                    this (CLOCK_REALTIME; 0: no limit) */
    uint32_t sync;             /**< enum shmbus_journal_sync */
    uint32_t sync_interval_ms; /**< SHMBUS_JOURNAL_SYNC_INTERVAL: 1..3600000 (0: 1000);
                                    else must be 0 */
    uint32_t perm;             /**< file mode of the files, at most 0666 (0: 0600); the
                                    topic's directory gets x where it gets r */
    uint32_t reserved0;        /**< 0 */
    uint64_t reserved[4];      /**< 0 (non-zero is SHMBUS_ERR_INVALID) */
} shmbus_journal_opts;

/** Flags of a record (shmbus_journal_record.flags). */
enum shmbus_journal_record_flags {
    /** Not a message: the messages seq .. seq + count - 1 are missing from
     *  the journal (the ring overtook the recorder on a lossy topic, or no
     *  recorder ran). No data; timestamp_ns is when it was noticed. */
    SHMBUS_JOURNAL_GAP = 1,
    /** The message came from another bus (SHMBUS_MSG_IMPORTED). */
    SHMBUS_JOURNAL_IMPORTED = 2
};

/** One record, as shmbus_journal_next() returns it. */
typedef struct shmbus_journal_record {
    const void *data;       /**< payload; valid until the next call on the reader */
    uint32_t len;           /**< payload bytes (0 for a gap) */
    uint32_t publisher_pid; /**< 0 for a gap */
    uint64_t seq;           /**< the message's seq in its topic (a gap: its first) */
    uint64_t timestamp_ns;  /**< publish time, CLOCK_REALTIME */
    uint64_t count;         /**< messages it stands for: 1, or a gap's length */
    uint32_t flags;         /**< enum shmbus_journal_record_flags */
    uint32_t reserved0;     /**< 0 */
} shmbus_journal_record;

/** A writer's counters (shmbus_journal_stats_get()). */
typedef struct shmbus_journal_stats {
    uint64_t records;       /**< messages appended by this writer */
    uint64_t gaps;          /**< gap records appended by this writer */
    uint64_t gap_messages;  /**< messages those gaps stand for */
    uint64_t bytes;         /**< bytes written by this writer */
    uint64_t duplicates;    /**< appends skipped: seq at or below the last one */
    uint64_t last_seq;      /**< last seq the journal covers: its last message, or the
                                 end of a gap record that ends it (UINT64_MAX: none) */
    uint64_t synced_seq;    /**< last seq made durable by fdatasync (UINT64_MAX: none) */
    uint64_t cut_bytes;     /**< torn tail cut when the writer opened */
    uint64_t files_removed; /**< files deleted by retention */
    uint64_t reserved[3];
} shmbus_journal_stats;

/** What a reader or the summary found of one topic's journal. */
typedef struct shmbus_journal_summary {
    uint64_t first_seq, last_seq;         /**< of the messages (not gaps) it holds */
    uint64_t first_time_ns, last_time_ns; /**< their publish times */
    uint64_t records;                     /**< messages */
    uint64_t gaps;                        /**< gap records */
    uint64_t gap_messages;                /**< messages the gaps stand for */
    uint64_t bytes;                       /**< bytes of its files */
    uint32_t files;                       /**< files */
    uint32_t reserved0;
    uint64_t reserved[3];
} shmbus_journal_summary;

/** Where a reader found a damaged record (shmbus_journal_reader_damage()). */
typedef struct shmbus_journal_damage {
    char file[64];    /**< file name within the topic's directory */
    uint64_t offset;  /**< byte offset of the damaged record in it */
    uint64_t skipped; /**< bytes skipped to the next good record */
    uint64_t seq;     /**< seq of the last good record before it (UINT64_MAX: none) */
    char what[64];    /**< what is wrong: "bad CRC", "impossible length", ... */
} shmbus_journal_damage;

/* ------------------------------------------------------------------ writer */

/**
 * Open the journal of topic @p topic in directory @p dir for writing,
 * creating DIR/TOPIC if missing (DIR itself must exist). Takes the topic's
 * lock: one writer per topic's journal. Recovers what a crashed writer
 * left: a torn or damaged tail of the last file is cut at its last good
 * record (shmbus_journal_stats.cut_bytes), and the index is rebuilt where
 * it lags the file.
 * @return 0; SHMBUS_ERR_BAD_NAME; SHMBUS_ERR_INVALID (an option); -ENOENT
 *         (no @p dir); -ENOTDIR; -ELOOP (a symbolic link at DIR/TOPIC or at
 *         a file in it: never followed); -EACCES; -EROFS; -ENOSPC; -EBUSY (another
 *         writer holds the lock); SHMBUS_ERR_BAD_MAGIC (a file there is not
 *         a journal file); SHMBUS_ERR_VERSION (a journal of another format
 *         version); SHMBUS_ERR_CORRUPT (the last file's header is damaged:
 *         left for an operator, docs/journal.md); -errno.
 */
SHMBUS_API int shmbus_journal_open(const char *dir, const char *topic,
                                   const shmbus_journal_opts *opts, shmbus_journal **out);

/**
 * Append message @p msg (as shmbus_poll() or shmbus_recv() gave it). A
 * message whose seq is at or below the journal's last is skipped (counted
 * as a duplicate), so a restarted recorder may read again what it wrote.
 * One whose seq jumps past the last + 1 is preceded by a gap record for
 * the messages between. Buffered: written by shmbus_journal_flush(), or
 * when the buffer fills.
 * @return 1 appended; 0 skipped; SHMBUS_ERR_TOO_BIG (longer than the
 *         format allows, 256 MiB); -ENOSPC, -EIO, -errno from writing: the
 *         writer is then failed and every call returns that error until it
 *         is closed; the file is cut back to its last whole record, nothing
 *         flushed before is lost, and stats.last_seq of a writer opened
 *         next says where to go on.
 */
SHMBUS_API int shmbus_journal_append(shmbus_journal *j, const shmbus_msg *msg);

/**
 * Write what is buffered, make it durable as the sync policy says, and
 * apply retention (at most once a second here; at every new file too). A
 * file that holds segment_size bytes is followed by a new one at the next
 * append. Call at the end of each batch of appends.
 * @return 0, or the error that failed the writer (as shmbus_journal_append()).
 */
SHMBUS_API int shmbus_journal_flush(shmbus_journal *j);

/** Copy @p j's counters into @p out. @return 0. */
SHMBUS_API int shmbus_journal_stats_get(const shmbus_journal *j, shmbus_journal_stats *out);

/** Flush (a sync policy other than NONE also syncs), release the lock and
 * free @p j. Accepts NULL. @return the flush's result. */
SHMBUS_API int shmbus_journal_close(shmbus_journal *j);

/* ------------------------------------------------------------------ reader */

/**
 * Open the journal of topic @p topic in @p dir for reading, positioned at
 * its first record. A reader may follow a writer that is writing: records
 * appear as they are flushed, files as they are started, and a file that
 * retention deletes under the reader ends at what was read of it.
 * Trusts nothing in the files: every length and offset is checked.
 * @return 0; SHMBUS_ERR_BAD_NAME; -ENOENT (no journal of that topic);
 *         -ELOOP (a symbolic link at DIR/TOPIC: never followed, nor one at
 *         a file in it, which shmbus_journal_next() returns); -EACCES;
 *         -ENOMEM; -errno.
 */
SHMBUS_API int shmbus_journal_reader_open(const char *dir, const char *topic,
                                          shmbus_journal_reader **out);

/**
 * Position @p r at the record holding @p seq (a message, or the gap that
 * covers it), or else at the first record after it, using the index.
 * @return 0; SHMBUS_ERR_RANGE when @p seq is beyond the last record + 1 or
 *         before the first one the journal still holds; -errno.
 */
SHMBUS_API int shmbus_journal_seek_seq(shmbus_journal_reader *r, uint64_t seq);

/**
 * Position @p r at the first message published at or after @p time_ns
 * (CLOCK_REALTIME), using the index. Exact when publish times never go
 * back along seqs; with several publishers they may, by a little, and
 * the seek may then stop after an earlier seq whose time is at or after
 * @p time_ns (docs/journal.md, "Seeks").
 * @return 0; SHMBUS_ERR_RANGE when it is after the last message or before
 *         the first one the journal still holds; -errno.
 */
SHMBUS_API int shmbus_journal_seek_time(shmbus_journal_reader *r, uint64_t time_ns);

/**
 * Read the next record into @p rec.
 * @return 1 a record; 0 none yet (the end of what is written now: call
 *         again to follow a writer); SHMBUS_ERR_CORRUPT: a damaged record
 *         was skipped, never delivered (shmbus_journal_reader_damage() says
 *         where and what; the next call goes on after it); -errno.
 */
SHMBUS_API int shmbus_journal_next(shmbus_journal_reader *r, shmbus_journal_record *rec);

/** Where the last SHMBUS_ERR_CORRUPT of @p r was found. @return 0, or
 * -ENOENT if @p r found none. */
SHMBUS_API int shmbus_journal_reader_damage(const shmbus_journal_reader *r,
                                            shmbus_journal_damage *out);

/** Damaged records @p r skipped so far. */
SHMBUS_API uint64_t shmbus_journal_reader_damaged(const shmbus_journal_reader *r);

/** Free @p r. Accepts NULL. */
SHMBUS_API void shmbus_journal_reader_close(shmbus_journal_reader *r);

/* ----------------------------------------------------------------- listing */

/**
 * Names of the topics with a journal in @p dir, sorted, into @p names
 * (room for @p cap).
 * @return how many there are (may exceed @p cap: call again with more
 *         room); -ENOENT; -ENOTDIR; -EACCES; -errno.
 */
SHMBUS_API int shmbus_journal_list(const char *dir, char (*names)[SHMBUS_TOPIC_NAME_MAX + 1],
                                   unsigned cap);

/**
 * Summarise topic @p topic's journal in @p dir: its first and last
 * messages, records, gaps and bytes, from the files' headers and indexes
 * (reading only the tail past the last index entry). first_seq and
 * last_seq are UINT64_MAX when it holds no message.
 * @return 0; SHMBUS_ERR_BAD_NAME; -ENOENT (no journal of that topic);
 *         -ELOOP (a symbolic link at DIR/TOPIC or at a file in it);
 *         SHMBUS_ERR_BAD_MAGIC; SHMBUS_ERR_VERSION; -errno.
 */
SHMBUS_API int shmbus_journal_summary_get(const char *dir, const char *topic,
                                          shmbus_journal_summary *out);

/* --------------------------------------------------------------- retention */

/**
 * Apply retention to topic @p topic's journal in @p dir, one that no writer
 * writes any more and whose files were written as topic @p owner's: the
 * history of an earlier topic of that name, such as shmbusd's set-aside
 * journals (DIR/OWNER.old-NS, docs/journal.md). Its files go oldest first
 * (each segment before its index) while they hold more than
 * @p retain_bytes, and while the newest record of the oldest left is older
 * than @p retain_ns (CLOCK_REALTIME, as a writer's retain_ns; a file whose
 * header is damaged is judged by its mtime). Unlike a writer's retention,
 * the newest file may go too; a journal left with no file loses its lock
 * and its directory (kept if anything else is in it). Takes the journal's
 * writer lock for the while, so never beside a writer. Blocks on disk I/O.
 * @param retain_bytes the most its files may keep (UINT64_MAX: no limit;
 *        0: none)
 * @param retain_ns age limit (0: none)
 * @param kept where to store the bytes its files hold after (may be NULL)
 * @return files deleted (0 or more); SHMBUS_ERR_INVALID (NULL name);
 *         SHMBUS_ERR_BAD_NAME; -ENOENT (no such journal); -ENOTDIR; -ELOOP
 *         (a symbolic link at DIR/TOPIC or at a file in it);
 *         -EBUSY (a writer has it open); SHMBUS_ERR_BAD_MAGIC (no file
 *         names @p owner, or one names another topic: left alone); -errno
 *         (nothing was deleted, or a failed deletion stopped it first).
 */
SHMBUS_API int shmbus_journal_retain(const char *dir, const char *topic, const char *owner,
                                     uint64_t retain_bytes, uint64_t retain_ns, uint64_t *kept);

/* ---------------------------------------------------------------- set-aside */

/** What a set-aside journal's name puts between the topic's name and the
 * time: DIR/TOPIC.old-NS (shmbus_journal_set_aside()). */
#define SHMBUS_JOURNAL_ASIDE_MARK ".old-"

/**
 * Set topic @p topic's journal in @p dir aside: the journal of an earlier
 * topic of that name (one made anew from seq 0 while its journal ends at
 * a later seq), whose seqs a writer would take for ones it has. DIR/TOPIC
 * is renamed to DIR/TOPIC.old-NS, NS the CLOCK_REALTIME nanoseconds now;
 * a topic name too long for the suffix is cut to fit exactly
 * SHMBUS_TOPIC_NAME_MAX characters (still unique by NS, but it may then
 * match another long topic's: check the files' topic, as
 * shmbus_journal_retain() does). Takes the topic's writer lock for the
 * while, so never moves a journal a writer has open; renames relative to
 * a descriptor of @p dir, never through a symbolic link at DIR/TOPIC.
 * @param aside_out where to store the new name (in @p dir; may be NULL),
 *        stored before the move is tried so that an error may name it
 * @param cap its room (SHMBUS_TOPIC_NAME_MAX + 1 is enough)
 * @return 0; SHMBUS_ERR_INVALID (NULL name, or @p cap too small for the
 *         name: nothing moved); SHMBUS_ERR_BAD_NAME; -ENOENT (no such
 *         journal); -ENOTDIR; -ELOOP (a symbolic link at DIR/TOPIC); -EBUSY
 *         (a writer has it open); -ENOTEMPTY (that name is taken); -EACCES;
 *         -errno.
 */
SHMBUS_API int shmbus_journal_set_aside(const char *dir, const char *topic, char *aside_out,
                                        size_t cap);

#ifdef __cplusplus
}
#endif

#endif
