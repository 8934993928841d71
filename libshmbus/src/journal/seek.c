/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Seeks of the journal reader: by seq (the file by its name, then the
 * index, then a short scan) and by time (the file by its first message's
 * time, then the index, then a scan). The record a seek stops at is kept
 * as the reader's next (reader.h pend); damage a seek skipped is reported
 * by the next shmbus_journal_next(), once, before it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "journal/file.h"
#include "journal/reader.h"

#define SEEK_TRIES 16 /* listings retried while retention deletes files */

/* Start reading segment @p seqs[i] (of @p n) at its last index entry at
 * or before @p key (a seq, or a time with @p by_time). */
static int seek_file(shmbus_journal_reader *r, const uint64_t *seqs, size_t n, size_t i,
                     uint64_t key, int by_time)
{
    struct sb_jr_index_entry *ents;
    size_t cnt, k;
    int rc = sb_jr_r_file_open(r, seqs[i], i + 1 == n);

    r->next_seq = UINT64_MAX;
    if (rc == 0) {
        /* Its header is not written yet: stand before it. */
        sb_jr_r_file_close(r);
        r->have_file = i > 0;
        r->file_seq = i > 0 ? seqs[i - 1] : 0;
        r->next_seq = seqs[i];
        return 0;
    }
    if (rc == SHMBUS_ERR_CORRUPT) {
        r->pend_corrupt = 1; /* a damaged header: reported by next() */
        return 0;
    }
    if (rc < 0)
        return rc;
    /* Before its first record the file's name is the seq that comes next:
     * a file with no record yet (a roll's new one) is a place to stand. */
    r->next_seq = seqs[i];
    rc = sb_jr_index_load(r->dfd, seqs[i], r->s.size, &ents, &cnt);
    if (rc != 0)
        return rc;
    for (k = 0; k < cnt && (by_time ? ents[k].time_ns <= key : ents[k].seq <= key); k++)
        ;
    /* An entry whose record is not there (a sealed lie) is passed over. */
    while (k > 0 && !sb_jr_entry_verify(&r->s, &ents[k - 1]))
        k--;
    if (k > 0)
        r->s.pos = ents[k - 1].offset;
    free(ents);
    return 0;
}

/* Read on to the first record at or after @p key and keep it as the next. */
static int seek_run(shmbus_journal_reader *r, uint64_t key, int by_time)
{
    shmbus_journal_record rec;

    for (;;) {
        int rc = sb_jr_r_read(r, &rec);

        if (rc == SHMBUS_ERR_CORRUPT) {
            r->pend_corrupt = 1;
            continue;
        }
        if (rc < 0)
            return rc;
        if (rc == 0) {
            /* The end: only the seq after the last is a place to stand. */
            if (!by_time && r->next_seq == key)
                return 0;
            return SHMBUS_ERR_RANGE;
        }
        if (by_time ? (rec.flags & SHMBUS_JOURNAL_GAP) == 0 && rec.timestamp_ns >= key
                    : rec.seq + rec.count > key) {
            r->pend_rec = rec;
            r->pend = 1;
            return 0;
        }
    }
}

/* The segment to start a seek for @p key in: by seq the last whose name
 * is at or below it; by time the last whose first message is. -1: none. */
static int64_t seek_pick(shmbus_journal_reader *r, const uint64_t *seqs, size_t n, uint64_t key,
                         int by_time)
{
    size_t i = n;

    if (!by_time) {
        while (i > 0 && seqs[i - 1] > key)
            i--;
        return (int64_t)i - 1;
    }
    for (; i > 0; i--) {
        struct sb_jr_scan s;
        uint64_t seq, t;
        char name[32];
        int fd, rc;

        sb_jr_file_name(name, seqs[i - 1], 0);
        fd = openat(r->dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; /* gone: an older one may hold the time */
        sb_jr_scan_init(&s, fd, 0, UINT64_MAX);
        s.size = (uint64_t)lseek(fd, 0, SEEK_END);
        rc = sb_jr_first_msg(&s, &seq, &t);
        sb_jr_scan_fini(&s);
        close(fd);
        if (rc == 1 && t <= key)
            return (int64_t)i - 1;
    }
    return -1;
}

static int seek_any(shmbus_journal_reader *r, uint64_t key, int by_time)
{
    for (int tries = 0; tries < SEEK_TRIES; tries++) {
        uint64_t *seqs;
        size_t n;
        int64_t i;
        int rc = sb_jr_segs_list(r->dfd, &seqs, &n);

        if (rc != 0)
            return rc;
        r->pend = r->pend_corrupt = 0;
        i = seek_pick(r, seqs, n, key, by_time);
        if (i < 0) {
            free(seqs);
            return SHMBUS_ERR_RANGE; /* before the first record it holds */
        }
        rc = seek_file(r, seqs, n, (size_t)i, key, by_time);
        free(seqs);
        if (rc == -ENOENT)
            continue; /* retention took the file: list again */
        return rc != 0 ? rc : seek_run(r, key, by_time);
    }
    return -EAGAIN;
}

int shmbus_journal_seek_seq(shmbus_journal_reader *r, uint64_t seq)
{
    return seek_any(r, seq, 0);
}

int shmbus_journal_seek_time(shmbus_journal_reader *r, uint64_t time_ns)
{
    return seek_any(r, time_ns, 1);
}
