/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal's on-disk format (docs/journal.md says it byte by byte):
 * a segment file is a file header then records; beside it an index file
 * is an index header then entries. Every integer is little-endian on disk;
 * the structs are written as they lie in memory, so this header refuses
 * to build on a big-endian host rather than write another format.
 * Fixed-width fields only, naturally aligned, sizes and offsets asserted.
 */
#ifndef SHMBUS_JOURNAL_FORMAT_H
#define SHMBUS_JOURNAL_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "shmbus/journal.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the journal's structs are its little-endian disk format");

#define SB_JR_VERSION      1u
#define SB_JR_FILE_MAGIC   0x314c4e524a424d53ull /* "SMBJRNL1" */
#define SB_JR_INDEX_MAGIC  0x3158444952424d53ull /* "SMBRIDX1" */
#define SB_JR_REC_MARK     0x4a52u               /* "RJ": high half of rec.mark */
#define SB_JR_PAYLOAD_MAX  (256u << 20)          /* a record's payload, at most */
#define SB_JR_NAME_DIGITS  20                    /* a segment file's name: its first seq */
#define SB_JR_INDEX_SUFFIX ".idx"
#define SB_JR_LOCK_NAME    "lock"
#define SB_JR_INDEX_EVERY  4096u /* bytes of records between entries */

/* Header of a segment file, at offset 0; records start at header_len. */
struct sb_jr_file_hdr {
    uint64_t magic;       /* SB_JR_FILE_MAGIC */
    uint32_t version;     /* SB_JR_VERSION */
    uint32_t header_len;  /* sizeof(struct sb_jr_file_hdr) */
    uint64_t first_seq;   /* seq of its first record; its name, in decimal */
    uint64_t created_ns;  /* CLOCK_REALTIME when the writer started it */
    uint32_t topic_len;   /* bytes of topic, 1..SHMBUS_TOPIC_NAME_MAX */
    uint32_t crc;         /* CRC32C of the header with this field 0 */
    uint64_t reserved[3]; /* 0 */
    char topic[192];      /* the topic's name, NUL-padded */
};
static_assert(sizeof(struct sb_jr_file_hdr) == 256, "file header size");
static_assert(offsetof(struct sb_jr_file_hdr, magic) == 0, "magic");
static_assert(offsetof(struct sb_jr_file_hdr, version) == 8, "version");
static_assert(offsetof(struct sb_jr_file_hdr, header_len) == 12, "header_len");
static_assert(offsetof(struct sb_jr_file_hdr, first_seq) == 16, "first_seq");
static_assert(offsetof(struct sb_jr_file_hdr, created_ns) == 24, "created_ns");
static_assert(offsetof(struct sb_jr_file_hdr, topic_len) == 32, "topic_len");
static_assert(offsetof(struct sb_jr_file_hdr, crc) == 36, "crc");
static_assert(offsetof(struct sb_jr_file_hdr, reserved) == 40, "reserved");
static_assert(offsetof(struct sb_jr_file_hdr, topic) == 64, "topic");
static_assert(SHMBUS_TOPIC_NAME_MAX < 192, "a topic name fits the header");

/* Header of a record, at an 8-aligned offset; len payload bytes follow,
 * then zeros to the next multiple of 8. */
struct sb_jr_rec {
    uint32_t mark;     /* SB_JR_REC_MARK << 16 | (offset / 8) & 0xffff */
    uint32_t crc;      /* CRC32C of bytes 8..47 of this header, then the payload */
    uint32_t len;      /* payload bytes, 0..SB_JR_PAYLOAD_MAX (0 for a gap) */
    uint32_t flags;    /* enum shmbus_journal_record_flags */
    uint64_t seq;      /* the message's seq (a gap: its first) */
    uint64_t time_ns;  /* publish time (a gap: when it was noticed) */
    uint64_t count;    /* 1, or the gap's length (>= 1) */
    uint32_t pid;      /* publisher's pid (0 for a gap) */
    uint32_t reserved; /* 0 */
};
static_assert(sizeof(struct sb_jr_rec) == 48, "record header size");
static_assert(offsetof(struct sb_jr_rec, mark) == 0, "mark");
static_assert(offsetof(struct sb_jr_rec, crc) == 4, "crc");
static_assert(offsetof(struct sb_jr_rec, len) == 8, "len");
static_assert(offsetof(struct sb_jr_rec, flags) == 12, "flags");
static_assert(offsetof(struct sb_jr_rec, seq) == 16, "seq");
static_assert(offsetof(struct sb_jr_rec, time_ns) == 24, "time_ns");
static_assert(offsetof(struct sb_jr_rec, count) == 32, "count");
static_assert(offsetof(struct sb_jr_rec, pid) == 40, "pid");
static_assert(offsetof(struct sb_jr_rec, reserved) == 44, "reserved");

/* Header of an index file, at offset 0; entries follow, in file order. */
struct sb_jr_index_hdr {
    uint64_t magic;      /* SB_JR_INDEX_MAGIC */
    uint32_t version;    /* SB_JR_VERSION */
    uint32_t header_len; /* sizeof(struct sb_jr_index_hdr) */
    uint64_t first_seq;  /* its segment file's first_seq */
    uint32_t entry_len;  /* sizeof(struct sb_jr_index_entry) */
    uint32_t crc;        /* CRC32C of the header with this field 0 */
};
static_assert(sizeof(struct sb_jr_index_hdr) == 32, "index header size");
static_assert(offsetof(struct sb_jr_index_hdr, magic) == 0, "magic");
static_assert(offsetof(struct sb_jr_index_hdr, version) == 8, "version");
static_assert(offsetof(struct sb_jr_index_hdr, header_len) == 12, "header_len");
static_assert(offsetof(struct sb_jr_index_hdr, first_seq) == 16, "first_seq");
static_assert(offsetof(struct sb_jr_index_hdr, entry_len) == 24, "entry_len");
static_assert(offsetof(struct sb_jr_index_hdr, crc) == 28, "crc");

/* One index entry: where a record starts, and what came before it in its
 * file. The writer adds one at the first record at or past each
 * SB_JR_INDEX_EVERY bytes of records since the last. */
struct sb_jr_index_entry {
    uint64_t seq;          /* the record's seq */
    uint64_t time_ns;      /* its time */
    uint64_t offset;       /* its offset in the segment file */
    uint64_t records;      /* messages before it in the file */
    uint64_t gaps;         /* gap records before it in the file */
    uint64_t gap_messages; /* messages those gaps stand for */
    uint64_t prev_seq;     /* seq of the last message before it in the file (UINT64_MAX: none) */
    uint64_t prev_time_ns; /* its time (0: none) */
    uint32_t crc;          /* CRC32C of the entry's first 64 bytes */
    uint32_t reserved;     /* 0 */
};
static_assert(sizeof(struct sb_jr_index_entry) == 72, "index entry size");
static_assert(offsetof(struct sb_jr_index_entry, seq) == 0, "seq");
static_assert(offsetof(struct sb_jr_index_entry, time_ns) == 8, "time_ns");
static_assert(offsetof(struct sb_jr_index_entry, offset) == 16, "offset");
static_assert(offsetof(struct sb_jr_index_entry, records) == 24, "records");
static_assert(offsetof(struct sb_jr_index_entry, gaps) == 32, "gaps");
static_assert(offsetof(struct sb_jr_index_entry, gap_messages) == 40, "gap_messages");
static_assert(offsetof(struct sb_jr_index_entry, prev_seq) == 48, "prev_seq");
static_assert(offsetof(struct sb_jr_index_entry, prev_time_ns) == 56, "prev_time_ns");
static_assert(offsetof(struct sb_jr_index_entry, crc) == 64, "crc");
static_assert(offsetof(struct sb_jr_index_entry, reserved) == 68, "reserved");

/* Bytes of a record of @p len payload bytes on disk. */
static inline uint64_t sb_jr_rec_size(uint64_t len)
{
    return sizeof(struct sb_jr_rec) + ((len + 7) & ~(uint64_t)7);
}

/* The mark of a record at @p offset. */
static inline uint32_t sb_jr_rec_mark(uint64_t offset)
{
    return (SB_JR_REC_MARK << 16) | (uint32_t)((offset >> 3) & 0xffff);
}

#endif
