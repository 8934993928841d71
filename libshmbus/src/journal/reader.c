/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal reader: reads a topic's segment files in seq order,
 * following a writer that is writing (an incomplete record at the end of
 * the newest file is "not yet"), reporting damage once and resyncing at
 * the next record, and reporting as a gap record the seqs of files that
 * retention deleted under it. Seeks (seek.c) position it through
 * r_pend: the record a seek stopped at is the next one returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/file.h"
#include "journal/reader.h"
#include "util/clock.h"

int shmbus_journal_reader_open(const char *dir, const char *topic, shmbus_journal_reader **out)
{
    shmbus_journal_reader *r;
    int rc;

    *out = NULL;
    if (dir == NULL)
        return SHMBUS_ERR_INVALID;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->fd = -1;
    r->next_seq = r->good_seq = UINT64_MAX;
    rc = sb_jr_topic_dir_open(dir, topic, &r->dfd);
    if (rc != 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void shmbus_journal_reader_close(shmbus_journal_reader *r)
{
    if (r == NULL)
        return;
    sb_jr_r_file_close(r);
    sb_jr_scan_fini(&r->s);
    if (r->dfd >= 0)
        close(r->dfd);
    free(r);
}

void sb_jr_r_file_close(shmbus_journal_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->s.fd = -1;
    sb_jr_scan_drop(&r->s);
}

/* Note damage at @p off of the file read, @p skipped bytes long. */
static int r_damage(shmbus_journal_reader *r, uint64_t off, uint64_t skipped, const char *what)
{
    memset(&r->dmg, 0, sizeof(r->dmg));
    sb_jr_file_name(r->dmg.file, r->file_seq, 0);
    r->dmg.offset = off;
    r->dmg.skipped = skipped;
    r->dmg.seq = r->good_seq;
    snprintf(r->dmg.what, sizeof(r->dmg.what), "%s", what);
    r->have_dmg = 1;
    r->damaged++;
    return SHMBUS_ERR_CORRUPT;
}

int sb_jr_r_file_open(shmbus_journal_reader *r, uint64_t seq, int newest)
{
    struct stat st;
    char name[32];
    int fd, rc;

    sb_jr_file_name(name, seq, 0);
    fd = openat(r->dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno; /* -ENOENT: retention took it; the caller lists again */
    rc = sb_jr_hdr_read(fd, seq, NULL);
    /* The writer is writing the header of its newest file: not yet. */
    if (rc == SHMBUS_ERR_TRUNCATED && newest) {
        close(fd);
        return 0;
    }
    sb_jr_r_file_close(r);
    r->fd = fd;
    r->file_seq = seq;
    r->have_file = 1;
    r->file_gone = 0;
    r->probe_size = 0;
    r->good_end = sizeof(struct sb_jr_file_hdr);
    if (fstat(fd, &st) != 0)
        return -errno;
    sb_jr_scan_fini(&r->s); /* the last file's buffer */
    sb_jr_scan_init(&r->s, fd, sizeof(struct sb_jr_file_hdr), (uint64_t)st.st_size);
    if (rc != 0) {
        /* The whole file is damage: reported once, then the next one. */
        r->s.pos = r->s.size;
        return r_damage(r, 0, (uint64_t)st.st_size, "bad file header");
    }
    return 1;
}

/* The first segment after the one read (any: the first), into *@p seq,
 * and whether it is the newest. @return 1 found, 0 none, -errno. */
static int r_next_file(shmbus_journal_reader *r, uint64_t *seq, int *newest)
{
    uint64_t *seqs;
    size_t n, i;
    int rc = sb_jr_segs_list(r->dfd, &seqs, &n);

    if (rc != 0)
        return rc;
    /* After a file that was deleted, a new file of the same name is
     * another file (a writer's recovery dropped a file with no record and
     * started it again): it counts as after. */
    for (i = 0;
         i < n && r->have_file && (r->file_gone ? seqs[i] < r->file_seq : seqs[i] <= r->file_seq);
         i++)
        ;
    rc = i < n;
    if (rc) {
        *seq = seqs[i];
        *newest = i + 1 == n;
    }
    free(seqs);
    return rc;
}

/* Move to the next file once the one read is done. @return 1 moved (or a
 * gap record in @p rec: rc 2), 0 nothing newer, <0 error or damage. */
static int r_advance(shmbus_journal_reader *r, shmbus_journal_record *rec)
{
    uint64_t seq;
    int newest, rc;

    for (int tries = 0; tries < 16; tries++) {
        rc = r_next_file(r, &seq, &newest);
        if (rc <= 0)
            return rc;
        /* Seqs between what was read and this file: their files are gone. */
        if (r->next_seq != UINT64_MAX && seq > r->next_seq) {
            memset(rec, 0, sizeof(*rec));
            rec->seq = r->next_seq;
            rec->count = seq - r->next_seq;
            rec->flags = SHMBUS_JOURNAL_GAP;
            rec->timestamp_ns = sb_real_ns();
            r->next_seq = seq;
            return 2;
        }
        rc = sb_jr_r_file_open(r, seq, newest);
        if (rc != -ENOENT)
            return rc;
    }
    return -EAGAIN; /* files vanish faster than we list them */
}

/* At the end of the bytes of the file read: 1 if the file is done (a newer
 * one exists, so nothing more comes to this one), 0 if a writer may add to
 * it. The writer names its next file by the next seq, so one stat finds
 * it; other names (after retention, or a writer's restart) are found by
 * listing the directory, at most every SB_JR_LIST_EVERY_NS while idle. */
static int r_file_done(shmbus_journal_reader *r, int *err)
{
    struct stat st;
    uint64_t seq, now;
    char name[32];
    int newest, rc = 0;

    *err = 0;
    sb_jr_file_name(name, r->next_seq, 0);
    if (fstat(r->fd, &st) != 0) {
        *err = -errno;
        return 0;
    }
    /* Deleted (retention, or a writer's recovery): nothing more comes to
     * it, and a file of its name is a new one. */
    r->file_gone = st.st_nlink == 0;
    if (r->file_gone || (r->next_seq != UINT64_MAX && r->next_seq != r->file_seq &&
                         fstatat(r->dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)) {
        rc = 1;
    } else {
        now = sb_mono_ns();
        if (now - r->listed_ns < SB_JR_LIST_EVERY_NS)
            return 0;
        r->listed_ns = now;
        rc = r_next_file(r, &seq, &newest);
        *err = rc < 0 ? rc : 0;
        if (rc <= 0)
            return 0;
    }
    /* Its size now is final: the writer wrote all of it before the next. */
    if (fstat(r->fd, &st) != 0) {
        *err = -errno;
        return 0;
    }
    if ((uint64_t)st.st_size != r->s.size)
        sb_jr_scan_drop(&r->s);
    r->s.size = (uint64_t)st.st_size;
    return 1;
}

/* Fill @p rec from the record @p h with payload @p data. */
static void r_fill(shmbus_journal_record *rec, const struct sb_jr_rec *h, const void *data)
{
    memset(rec, 0, sizeof(*rec));
    rec->data = h->len > 0 ? data : NULL;
    rec->len = h->len;
    rec->publisher_pid = h->pid;
    rec->seq = h->seq;
    rec->timestamp_ns = h->time_ns;
    rec->count = h->count;
    rec->flags = h->flags;
}

/* Refresh the file's size; a file cut under us (a writer's recovery cut
 * a torn tail we stood past) rewinds to the last good record's end. */
static int r_refresh(shmbus_journal_reader *r)
{
    struct stat st;

    if (fstat(r->fd, &st) != 0)
        return -errno;
    if ((uint64_t)st.st_size < r->s.pos)
        r->s.pos = r->good_end;
    if ((uint64_t)st.st_size != r->s.size)
        sb_jr_scan_drop(&r->s);
    r->s.size = (uint64_t)st.st_size;
    return 0;
}

/* At an incomplete record or the end: refresh, and move on if done.
 * *again: read on (the file grew, or was cut back, or the next is open). */
static int r_at_end(shmbus_journal_reader *r, shmbus_journal_record *rec, int *again)
{
    uint64_t size = r->s.size, pos = r->s.pos;
    int err, rc;

    *again = 0;
    rc = r_refresh(r);
    if (rc != 0)
        return rc;
    if (r->s.size > size || r->s.pos != pos) {
        *again = 1;
        return 0;
    }
    size = r->s.size;
    if (!r_file_done(r, &err))
        return err;
    /* Written between our look and the next file's start: read it first. */
    if (r->s.size != size) {
        *again = 1;
        return 0;
    }
    if (r->s.pos < r->s.size) {
        /* A record of a finished file passes its end: damage (a torn
         * tail, or a damaged length with good records after it, which a
         * resync finds). */
        uint64_t off = r->s.pos;
        int64_t next = sb_jr_scan_resync(&r->s);
        if (next < 0)
            return (int)next;
        r->s.pos = (uint64_t)next;
        return r_damage(r, off, (uint64_t)next - off, "truncated record");
    }
    rc = r_advance(r, rec);
    if (rc == 2)
        return 1;
    *again = rc == 1;
    return rc < 0 ? rc : 0;
}

/* The record at @p at passes the end of what the file holds. The writer
 * writes records in order, so if a good record follows it, it is damage
 * (a damaged length a recovery kept), not one being written: resync
 * there rather than wait. Probed once per position and size.
 * @return SHMBUS_ERR_CORRUPT (resynced), 0 (wait), or -errno. */
static int r_short_damaged(shmbus_journal_reader *r, uint64_t at)
{
    int64_t next;

    if (at >= r->s.size || (at == r->probe_pos && r->s.size == r->probe_size))
        return 0;
    next = sb_jr_scan_resync(&r->s);
    if (next < 0)
        return (int)next;
    if ((uint64_t)next >= r->s.size) {
        r->probe_pos = at;
        r->probe_size = r->s.size;
        return 0;
    }
    r->s.pos = (uint64_t)next;
    return r_damage(r, at, (uint64_t)next - at, "bad length");
}

int sb_jr_r_read(shmbus_journal_reader *r, shmbus_journal_record *rec)
{
    for (;;) {
        struct sb_jr_rec h;
        const void *data;
        const char *what;
        uint64_t at;
        int rc, again;

        if (r->fd < 0) {
            rc = r_advance(r, rec);
            if (rc == 2)
                return 1;
            if (rc <= 0)
                return rc;
            continue;
        }
        at = r->s.pos;
        rc = sb_jr_scan_rec(&r->s, &h, &data, &what);
        if (rc == SB_JR_SCAN_OK) {
            r->good_end = r->s.pos;
            r->good_seq = h.seq + h.count - 1;
            r->next_seq = h.seq + h.count;
            r_fill(rec, &h, data);
            return 1;
        }
        if (rc == SB_JR_SCAN_DAMAGE) {
            int64_t next = sb_jr_scan_resync(&r->s);
            if (next < 0)
                return (int)next;
            r->s.pos = (uint64_t)next;
            return r_damage(r, at, (uint64_t)next - at, what);
        }
        if (rc < 0)
            return rc;
        rc = r_short_damaged(r, at);
        if (rc != 0)
            return rc;
        rc = r_at_end(r, rec, &again);
        if (rc != 0 || !again)
            return rc;
    }
}

int shmbus_journal_next(shmbus_journal_reader *r, shmbus_journal_record *rec)
{
    if (r->pend_corrupt) {
        r->pend_corrupt = 0;
        return SHMBUS_ERR_CORRUPT;
    }
    if (r->pend) {
        r->pend = 0;
        *rec = r->pend_rec;
        return 1;
    }
    return sb_jr_r_read(r, rec);
}

int shmbus_journal_reader_damage(const shmbus_journal_reader *r, shmbus_journal_damage *out)
{
    if (!r->have_dmg)
        return -ENOENT;
    *out = r->dmg;
    return 0;
}

uint64_t shmbus_journal_reader_damaged(const shmbus_journal_reader *r)
{
    return r->damaged;
}
