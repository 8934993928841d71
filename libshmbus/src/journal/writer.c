/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal writer: opens a topic's journal under its lock, recovers
 * what a crashed writer left (the torn tail of the last file cut, the
 * index rebuilt past its last good entry), and appends records, gap
 * records for the seqs it never saw, and skips duplicates. Buffering,
 * files, syncs and retention are write_io.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/crc32c.h"
#include "journal/file.h"
#include "journal/writer.h"
#include "util/clock.h"
#include "util/name.h"
#include "util/vec.h"

#define SEGMENT_DEFAULT  (64ull << 20)
#define SEGMENT_MIN      (64ull << 10)
#define SEGMENT_MAX      (1ull << 40)
#define INTERVAL_DEFAULT 1000u
#define INTERVAL_MAX     3600000u
#define RETAIN_EVERY_NS  1000000000ull /* retention at a flush, at most this often */

/* Check @p in and copy it, defaults filled, into @p o. */
static int opts_take(const shmbus_journal_opts *in, shmbus_journal_opts *o)
{
    static const shmbus_journal_opts zero;

    *o = in != NULL ? *in : zero;
    if (o->reserved0 != 0 || o->reserved[0] || o->reserved[1] || o->reserved[2] || o->reserved[3])
        return SHMBUS_ERR_INVALID;
    if (o->segment_size == 0)
        o->segment_size = SEGMENT_DEFAULT;
    if (o->segment_size < SEGMENT_MIN || o->segment_size > SEGMENT_MAX)
        return SHMBUS_ERR_INVALID;
    if (o->sync > SHMBUS_JOURNAL_SYNC_BATCH)
        return SHMBUS_ERR_INVALID;
    if (o->sync == SHMBUS_JOURNAL_SYNC_INTERVAL && o->sync_interval_ms == 0)
        o->sync_interval_ms = INTERVAL_DEFAULT;
    if (o->sync == SHMBUS_JOURNAL_SYNC_INTERVAL ? o->sync_interval_ms > INTERVAL_MAX
                                                : o->sync_interval_ms != 0)
        return SHMBUS_ERR_INVALID;
    if (o->perm == 0)
        o->perm = 0600;
    if ((o->perm & ~0666u) != 0) /* only r and w bits: x, setuid, sticky are refused */
        return SHMBUS_ERR_INVALID;
    return 0;
}

/* Create and open DIR/TOPIC, and take its lock. */
static int w_dir_lock(shmbus_journal *w, const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), made, rc;

    if (dfd < 0)
        return -errno;
    made = mkdirat(dfd, w->topic, w->dir_mode) == 0;
    if (!made && errno != EEXIST) {
        rc = -errno;
        close(dfd);
        return rc;
    }
    /* Never through a link (sb_jr_dir_openat()), and every file in it
     * relative to it, with O_NOFOLLOW. */
    rc = sb_jr_dir_openat(dfd, w->topic);
    close(dfd);
    if (rc < 0)
        return rc;
    w->dfd = rc;
    /* A directory this writer makes gets exactly dir_mode (the umask
     * does not narrow it), set through the descriptor: a link swapped in
     * for it meanwhile is not followed. One that exists keeps what its
     * owner gave it. */
    if (made && fchmod(w->dfd, w->dir_mode) != 0)
        return -errno;
    w->lock_fd =
        openat(w->dfd, SB_JR_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, w->file_mode);
    if (w->lock_fd < 0)
        return -errno;
    if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? -EBUSY : -errno;
    return 0;
}

/* Remove segment @p seq and its index (a file with no record, or none). */
static void w_unlink_seg(shmbus_journal *w, uint64_t seq)
{
    char name[32];

    sb_jr_file_name(name, seq, 0);
    unlinkat(w->dfd, name, 0);
    sb_jr_file_name(name, seq, 1);
    unlinkat(w->dfd, name, 0);
}

/* Write @p f's entries as the whole index of the segment written. */
static int w_index_rebuild(shmbus_journal *w, const struct sb_jr_fsum *f)
{
    int rc = sb_jr_w_index_open(w, w->file_seq);

    if (rc != 0)
        return rc;
    if (SB_VEC_RESERVE(w->ents, w->ents_cap, 0, f->nents, 64) != 0)
        return -ENOMEM;
    if (f->nents > 0)
        memcpy(w->ents, f->ents, f->nents * sizeof(*f->ents));
    w->nents = f->nents;
    return sb_jr_w_out(w);
}

/* Adopt segment @p seq (open in @p fd), the last, as the one written:
 * cut its torn tail and rebuild its index. */
static int w_adopt(shmbus_journal *w, int fd, uint64_t seq, const struct sb_jr_fsum *f)
{
    w->fd = fd;
    w->file_seq = seq;
    if (f->good_end < f->size) {
        if (ftruncate(fd, (off_t)f->good_end) != 0)
            return -errno;
        w->st.cut_bytes += f->size - f->good_end;
    }
    w->file_size = f->good_end;
    w->since_entry = f->since_entry;
    w->f_records = f->records;
    w->f_gaps = f->gaps;
    w->f_gap_messages = f->gap_messages;
    w->f_last_msg_seq = f->last_msg_seq;
    w->f_last_msg_time = f->last_msg_time;
    w->st.last_seq = f->end_seq - 1;
    return w_index_rebuild(w, f);
}

/* Check the headers of every segment but the last: another topic's,
 * format's or program's file there stops the writer; a damaged one is a
 * reader's to report. */
static int w_check_old(shmbus_journal *w, const uint64_t *seqs, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        char name[32];
        int fd, rc;

        sb_jr_file_name(name, seqs[i], 0);
        fd = openat(w->dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return errno == ENOENT ? 0 : -errno; /* a reader's retention race */
        rc = sb_jr_hdr_read(fd, seqs[i], w->topic);
        close(fd);
        if (rc == SHMBUS_ERR_BAD_MAGIC || rc == SHMBUS_ERR_VERSION || (rc < 0 && rc > -1000))
            return rc;
    }
    return 0;
}

/* Recover the last of segments @p seqs (@p n): one with a torn header,
 * or the only one and with no record, is removed, its bytes counted as
 * cut, and the one before is then the last; a torn tail is cut. None
 * left: the journal is empty. */
static int w_recover_last(shmbus_journal *w, const uint64_t *seqs, size_t n)
{
    struct sb_jr_fsum f;
    char name[32];
    struct stat st;
    int fd, rc;

    for (; n > 0; n--) {
        uint64_t seq = seqs[n - 1];

        sb_jr_file_name(name, seq, 0);
        fd = openat(w->dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        /* Another topic's file is refused here as w_check_old() refuses
         * the older ones: the writer would add to it. */
        rc = sb_jr_hdr_read(fd, seq, w->topic);
        if (rc == SHMBUS_ERR_BAD_MAGIC) {
            close(fd);
            return rc;
        }
        rc = sb_jr_fsum_get(w->dfd, fd, seq, 1, &f);
        /* A file with records, or with none after another file (a roll's
         * new file: named by the seq that comes next, and a reader may
         * wait in it), is the one written. */
        if (rc == 0 && (f.end_seq != seq || n > 1)) {
            rc = w_adopt(w, fd, seq, &f);
            free(f.ents);
            return rc;
        }
        free(f.ents);
        if (rc != 0 && rc != SHMBUS_ERR_TRUNCATED) {
            close(fd);
            return rc;
        }
        /* A torn header (no reader opens one), or the only file and no
         * record (its name is a guess at the first seq): dropped. */
        if (fstat(fd, &st) == 0 &&
            (uint64_t)st.st_size > (rc == 0 ? sizeof(struct sb_jr_file_hdr) : 0))
            w->st.cut_bytes += (uint64_t)st.st_size - (rc == 0 ? sizeof(struct sb_jr_file_hdr) : 0);
        close(fd);
        w_unlink_seg(w, seq);
    }
    return 0;
}

/* Recover the journal found in the topic's directory. */
static int w_recover(shmbus_journal *w)
{
    uint64_t *seqs;
    size_t n;
    int rc = sb_jr_segs_list(w->dfd, &seqs, &n);

    if (rc == 0)
        rc = w_check_old(w, seqs, n);
    if (rc == 0)
        rc = w_recover_last(w, seqs, n);
    free(seqs);
    return rc;
}

int shmbus_journal_open(const char *dir, const char *topic, const shmbus_journal_opts *opts,
                        shmbus_journal **out)
{
    shmbus_journal *w;
    int rc;

    *out = NULL;
    if (dir == NULL || !sb_name_valid(topic, SHMBUS_TOPIC_NAME_MAX))
        return dir == NULL ? SHMBUS_ERR_INVALID : SHMBUS_ERR_BAD_NAME;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->dfd = w->lock_fd = w->fd = w->ifd = -1;
    rc = opts_take(opts, &w->opts);
    if (rc != 0)
        goto err;
    strcpy(w->topic, topic);
    w->file_mode = w->opts.perm;
    w->dir_mode = w->opts.perm | ((w->opts.perm & 0444) >> 2);
    w->st.last_seq = w->st.synced_seq = w->dirty_seq = UINT64_MAX;
    w->age_seq = UINT64_MAX;
    rc = w_dir_lock(w, dir);
    if (rc == 0)
        rc = w_recover(w);
    if (rc != 0)
        goto err;
    w->last_sync_ns = w->last_retain_ns = sb_mono_ns();
    *out = w;
    return 0;
err:
    w->failed = rc;
    shmbus_journal_close(w);
    return rc;
}

/* Add an index entry for a record of @p h at @p off, as the rule says. */
static int w_entry(shmbus_journal *w, const struct sb_jr_rec *h, uint64_t off)
{
    struct sb_jr_index_entry *e;

    if (w->since_entry < SB_JR_INDEX_EVERY)
        return 0;
    if (SB_VEC_RESERVE(w->ents, w->ents_cap, w->nents, 1, 64) != 0)
        return sb_jr_w_fail(w, -ENOMEM);
    e = &w->ents[w->nents++];
    memset(e, 0, sizeof(*e));
    e->seq = h->seq;
    e->time_ns = h->time_ns;
    e->offset = off;
    e->records = w->f_records;
    e->gaps = w->f_gaps;
    e->gap_messages = w->f_gap_messages;
    e->prev_seq = w->f_last_msg_seq;
    e->prev_time_ns = w->f_last_msg_time;
    sb_jr_entry_seal(e);
    w->since_entry = 0;
    return 0;
}

/* Count record @p h, @p size bytes on disk, as the segment's and ours. */
static void w_count(shmbus_journal *w, const struct sb_jr_rec *h, uint64_t size)
{
    if (h->flags & SHMBUS_JOURNAL_GAP) {
        w->f_gaps++;
        w->f_gap_messages += h->count;
        w->st.gaps++;
        w->st.gap_messages += h->count;
    } else {
        w->f_records++;
        w->f_last_msg_seq = h->seq;
        w->f_last_msg_time = h->time_ns;
        w->st.records++;
    }
    w->since_entry += size;
    w->st.last_seq = h->seq + h->count - 1;
    w->dirty_seq = w->st.last_seq;
}

/* Make room in the buffer for a record of @p size bytes: grow it (by
 * doubling, from SB_JR_BUF_MIN to SB_JR_BUF_SIZE, so that a writer of a
 * quiet topic holds little) or write it out. A record that still does
 * not fit is written straight (w_record). */
static int w_room(shmbus_journal *w, uint64_t size)
{
    size_t want = w->buf_cap != 0 ? w->buf_cap : SB_JR_BUF_MIN;

    if (size <= w->buf_cap - w->buf_len)
        return 0;
    while (want < SB_JR_BUF_SIZE && want - w->buf_len < size)
        want *= 2;
    if (want > w->buf_cap && size <= want - w->buf_len) {
        unsigned char *b = realloc(w->buf, want);
        if (b != NULL) {
            w->buf = b;
            w->buf_cap = want;
            return 0;
        }
        /* Short of memory: what is buffered goes out, then it may fit. */
    }
    return sb_jr_w_out(w);
}

/* Append record @p h (mark and crc filled here) with payload @p data. */
static int w_record(shmbus_journal *w, struct sb_jr_rec *h, const void *data)
{
    uint64_t size = sb_jr_rec_size(h->len), off;
    int rc = 0;

    /* The file written holds segment_size: the next starts at this record,
     * and retention runs once it is there (the newest file is never
     * deleted: the one just finished may go). */
    if (w->fd >= 0 && w->file_size + w->buf_len >= w->opts.segment_size) {
        rc = sb_jr_w_roll(w);
        if (rc == 0)
            rc = sb_jr_w_file_new(w, h->seq);
        if (rc == 0)
            sb_jr_w_retain(w);
    }
    if (rc == 0 && w->fd < 0)
        rc = sb_jr_w_file_new(w, h->seq);
    if (rc == 0)
        rc = w_room(w, size);
    if (rc != 0)
        return rc;
    off = w->file_size + w->buf_len;
    rc = w_entry(w, h, off);
    if (rc != 0)
        return rc;
    h->mark = sb_jr_rec_mark(off);
    h->crc = sb_jr_crc32c(sb_jr_crc32c(0, (const char *)h + 8, sizeof(*h) - 8), data, h->len);
    if (size > w->buf_cap - w->buf_len) {
        rc = sb_jr_w_direct(w, h, data);
    } else {
        unsigned char *p = w->buf + w->buf_len;
        memcpy(p, h, sizeof(*h));
        if (h->len > 0)
            memcpy(p + sizeof(*h), data, h->len);
        memset(p + sizeof(*h) + h->len, 0, (size_t)(size - sizeof(*h) - h->len));
        w->buf_len += (size_t)size;
    }
    if (rc == 0)
        w_count(w, h, size);
    return rc;
}

int shmbus_journal_append(shmbus_journal *w, const shmbus_msg *msg)
{
    uint64_t last = w->st.last_seq;
    int rc;

    if (w->failed != 0)
        return w->failed;
    if (msg->len > SB_JR_PAYLOAD_MAX)
        return SHMBUS_ERR_TOO_BIG;
    if (last != UINT64_MAX && msg->seq <= last) {
        w->st.duplicates++;
        return 0;
    }
    if (last != UINT64_MAX && msg->seq > last + 1) {
        struct sb_jr_rec gap = {
            .flags = SHMBUS_JOURNAL_GAP,
            .seq = last + 1,
            .time_ns = sb_real_ns(),
            .count = msg->seq - last - 1,
        };
        rc = w_record(w, &gap, NULL);
        if (rc != 0)
            return rc;
    }
    struct sb_jr_rec h = {
        .len = msg->len,
        .flags = (msg->flags & SHMBUS_MSG_IMPORTED) ? SHMBUS_JOURNAL_IMPORTED : 0,
        .seq = msg->seq,
        .time_ns = msg->timestamp_ns,
        .count = 1,
        .pid = msg->publisher_pid,
    };
    rc = w_record(w, &h, msg->data);
    return rc == 0 ? 1 : rc;
}

int shmbus_journal_flush(shmbus_journal *w)
{
    uint64_t now;
    int rc;

    if (w->failed != 0)
        return w->failed;
    if (w->fd < 0)
        return 0; /* nothing written yet, or just rolled */
    rc = sb_jr_w_out(w);
    if (rc == 0)
        rc = sb_jr_w_sync(w, 0);
    if (rc != 0)
        return rc;
    now = sb_mono_ns();
    if (now - w->last_retain_ns >= RETAIN_EVERY_NS) {
        w->last_retain_ns = now;
        sb_jr_w_retain(w);
    }
    return 0;
}

int shmbus_journal_stats_get(const shmbus_journal *w, shmbus_journal_stats *out)
{
    *out = w->st;
    return 0;
}

int shmbus_journal_close(shmbus_journal *w)
{
    int rc = 0;

    if (w == NULL)
        return 0;
    if (w->failed == 0 && w->fd >= 0) {
        rc = sb_jr_w_out(w);
        if (rc == 0)
            rc = sb_jr_w_sync(w, w->opts.sync != SHMBUS_JOURNAL_SYNC_NONE);
    } else if (w->failed != 0 && w->fd >= 0) {
        rc = w->failed;
    }
    if (w->fd >= 0)
        close(w->fd);
    if (w->ifd >= 0)
        close(w->ifd);
    if (w->lock_fd >= 0)
        close(w->lock_fd); /* releases the flock */
    if (w->dfd >= 0)
        close(w->dfd);
    free(w->buf);
    free(w->ents);
    free(w);
    return rc;
}
