/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The index of a segment file, read side: its valid prefix of entries,
 * and the summary of one segment file from its verified entries plus a
 * scan of the tail past the last (file.h). The writer appends entries
 * (writer.c) and rebuilds them at open from the summary computed here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/crc32c.h"
#include "journal/file.h"
#include "util/vec.h"

/* Entries read of one index, at most: 1.2 GB, the entries of 64 GiB of
 * records. A larger segment (up to 1 TiB) is indexed in its first 64 GiB
 * only; seeks past that scan. */
#define INDEX_MAX_ENTRIES (1u << 24)

/* Read index file @p ifd's header for segment @p first_seq: 1 if it is
 * that segment's index, 0 if not (foreign, torn, another version). */
static int index_hdr_ok(int ifd, uint64_t first_seq)
{
    struct sb_jr_index_hdr h;
    uint32_t crc;

    if (pread(ifd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
        return 0;
    crc = h.crc;
    h.crc = 0;
    return h.magic == SB_JR_INDEX_MAGIC && h.version == SB_JR_VERSION &&
           h.header_len == sizeof(h) && h.entry_len == sizeof(struct sb_jr_index_entry) &&
           h.first_seq == first_seq && sb_jr_crc32c(0, &h, sizeof(h)) == crc;
}

/* 1 if @p e may follow @p prev (NULL: first) in a file of @p size bytes. */
static int entry_ok(const struct sb_jr_index_entry *e, const struct sb_jr_index_entry *prev,
                    uint64_t first_seq, uint64_t size)
{
    if (sb_jr_crc32c(0, e, offsetof(struct sb_jr_index_entry, crc)) != e->crc)
        return 0;
    if (e->offset < sizeof(struct sb_jr_file_hdr) || e->offset >= size || (e->offset & 7) != 0 ||
        e->seq < first_seq)
        return 0;
    return prev == NULL || (e->offset > prev->offset && e->seq > prev->seq);
}

int sb_jr_index_load(int dfd, uint64_t first_seq, uint64_t size, struct sb_jr_index_entry **ents,
                     size_t *n)
{
    struct sb_jr_index_entry *v = NULL, e;
    size_t cnt = 0, cap = 0;
    char name[32];
    off_t off = sizeof(struct sb_jr_index_hdr);
    int ifd;

    *ents = NULL;
    *n = 0;
    sb_jr_file_name(name, first_seq, 1);
    ifd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (ifd < 0)
        return errno == ENOENT ? 0 : -errno; /* no index: a scan finds the records */
    if (!index_hdr_ok(ifd, first_seq)) {
        close(ifd);
        return 0;
    }
    while (cnt < INDEX_MAX_ENTRIES && pread(ifd, &e, sizeof(e), off) == (ssize_t)sizeof(e)) {
        if (!entry_ok(&e, cnt ? &v[cnt - 1] : NULL, first_seq, size))
            break;
        if (SB_VEC_RESERVE(v, cap, cnt, 1, 64) != 0) {
            free(v);
            close(ifd);
            return -ENOMEM;
        }
        v[cnt++] = e;
        off += (off_t)sizeof(e);
    }
    close(ifd);
    *ents = v;
    *n = cnt;
    return 0;
}

int sb_jr_entry_verify(struct sb_jr_scan *s, const struct sb_jr_index_entry *e)
{
    struct sb_jr_rec rec;
    const void *payload;
    const char *what;
    uint64_t save = s->pos;
    int rc;

    s->pos = e->offset;
    rc = sb_jr_scan_rec(s, &rec, &payload, &what);
    s->pos = save;
    return rc == SB_JR_SCAN_OK && rec.seq == e->seq && rec.time_ns == e->time_ns;
}

/* Fold record @p rec into @p f. */
static void fsum_add(struct sb_jr_fsum *f, const struct sb_jr_rec *rec)
{
    if (rec->flags & SHMBUS_JOURNAL_GAP) {
        f->gaps++;
        f->gap_messages += rec->count;
    } else {
        f->records++;
        if (f->first_msg_seq == UINT64_MAX) {
            f->first_msg_seq = rec->seq;
            f->first_msg_time = rec->time_ns;
        }
        f->last_msg_seq = rec->seq;
        f->last_msg_time = rec->time_ns;
    }
    f->end_seq = rec->seq + rec->count;
    f->last_time = rec->time_ns;
}

/* An entry for the record at @p off, from what @p f counted before it. */
static int fsum_entry(struct sb_jr_fsum *f, size_t *cap, const struct sb_jr_rec *rec, uint64_t off)
{
    struct sb_jr_index_entry e = {
        .seq = rec->seq,
        .time_ns = rec->time_ns,
        .offset = off,
        .records = f->records,
        .gaps = f->gaps,
        .gap_messages = f->gap_messages,
        .prev_seq = f->last_msg_seq,
        .prev_time_ns = f->last_msg_time,
    };

    if (SB_VEC_RESERVE(f->ents, *cap, f->nents, 1, 64) != 0)
        return -ENOMEM;
    sb_jr_entry_seal(&e);
    f->ents[f->nents++] = e;
    f->since_entry = 0;
    return 0;
}

/* Scan @p s from its pos to the end of the valid records into @p f. */
static int fsum_scan(struct sb_jr_fsum *f, struct sb_jr_scan *s, int keep_ents, size_t *cap)
{
    struct sb_jr_rec rec;
    const void *payload;
    const char *what;

    for (;;) {
        uint64_t at = s->pos;
        int rc = sb_jr_scan_rec(s, &rec, &payload, &what);

        if (rc == SB_JR_SCAN_DAMAGE || (rc == SB_JR_SCAN_SHORT && at < s->size)) {
            /* Go on at the next good record: damage in the middle is
             * not the tail; good_end stays at the last good record. A
             * record passing the end is a torn tail only if no good
             * record follows: a damaged length is damage in the middle. */
            int64_t next = sb_jr_scan_resync(s);
            if (next < 0)
                return (int)next;
            if ((uint64_t)next >= s->size)
                return 0;
            s->pos = (uint64_t)next;
            continue;
        }
        if (rc == SB_JR_SCAN_SHORT)
            return 0;
        if (rc < 0)
            return rc;
        if (keep_ents && f->since_entry >= SB_JR_INDEX_EVERY && fsum_entry(f, cap, &rec, at) != 0)
            return -ENOMEM;
        fsum_add(f, &rec);
        f->since_entry += s->pos - at;
        f->good_end = s->pos;
    }
}

/* Start @p f from the last of @p f->ents that verifies (dropping the
 * rest); the scan then reads that entry's record again, which is why
 * since_entry stays 0 for it. */
static void fsum_from_index(struct sb_jr_fsum *f, struct sb_jr_scan *s)
{
    while (f->nents > 0 && !sb_jr_entry_verify(s, &f->ents[f->nents - 1]))
        f->nents--;
    if (f->nents == 0)
        return;
    const struct sb_jr_index_entry *e = &f->ents[f->nents - 1];
    f->records = e->records;
    f->gaps = e->gaps;
    f->gap_messages = e->gap_messages;
    f->last_msg_seq = e->prev_seq;
    f->last_msg_time = e->prev_time_ns;
    f->end_seq = e->seq;
    s->pos = e->offset;
    f->good_end = e->offset;
}

int sb_jr_first_msg(struct sb_jr_scan *s, uint64_t *seq, uint64_t *time_ns)
{
    struct sb_jr_rec rec;
    const void *payload;
    const char *what;
    int rc;

    s->pos = sizeof(struct sb_jr_file_hdr);
    for (;;) {
        rc = sb_jr_scan_rec(s, &rec, &payload, &what);
        if (rc == SB_JR_SCAN_OK) {
            if ((rec.flags & SHMBUS_JOURNAL_GAP) == 0) {
                *seq = rec.seq;
                *time_ns = rec.time_ns;
                return 1;
            }
            continue;
        }
        if (rc < SB_JR_SCAN_DAMAGE)
            return rc;
        if (rc == SB_JR_SCAN_SHORT && s->pos >= s->size)
            return 0;
        /* Damage before the first message: it is the first good one
         * after (as a reader finds it), not none. */
        int64_t next = sb_jr_scan_resync(s);
        if (next < 0)
            return (int)next;
        if ((uint64_t)next >= s->size)
            return 0;
        s->pos = (uint64_t)next;
    }
}

int sb_jr_fsum_get(int dfd, int fd, uint64_t first_seq, int keep_ents, struct sb_jr_fsum *out)
{
    struct sb_jr_scan s;
    struct stat st;
    size_t cap;
    int rc, before;

    memset(out, 0, sizeof(*out));
    out->first_msg_seq = out->last_msg_seq = UINT64_MAX;
    out->end_seq = first_seq;
    out->good_end = sizeof(struct sb_jr_file_hdr);
    rc = sb_jr_hdr_read(fd, first_seq, NULL);
    if (rc != 0)
        return rc;
    if (fstat(fd, &st) != 0)
        return -errno;
    out->size = (uint64_t)st.st_size;
    rc = sb_jr_index_load(dfd, first_seq, out->size, &out->ents, &out->nents);
    if (rc != 0)
        return rc;
    cap = out->nents;
    sb_jr_scan_init(&s, fd, sizeof(struct sb_jr_file_hdr), out->size);
    fsum_from_index(out, &s);
    /* Messages before the entry the scan starts at: the first is found
     * by a scan from the file's start, which stops at it. */
    before = out->records > 0;
    rc = fsum_scan(out, &s, keep_ents, &cap);
    if (rc == 0 && before) {
        rc = sb_jr_first_msg(&s, &out->first_msg_seq, &out->first_msg_time);
        rc = rc < 0 ? rc : 0;
    }
    sb_jr_scan_fini(&s);
    if (!keep_ents || rc != 0) {
        free(out->ents);
        out->ents = NULL;
        out->nents = 0;
    }
    return rc;
}
