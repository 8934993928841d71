/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal writer's I/O: buffered records written with one pwrite()
 * per flush, the index entries after them, new segment files, fdatasync
 * by policy, and retention. A short or failed write cuts the segment back
 * to its last whole record, so an error (ENOSPC) never leaves a torn
 * record behind; the writer is then failed (writer.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "journal/crc32c.h"
#include "journal/file.h"
#include "journal/retain.h"
#include "journal/writer.h"
#include "util/clock.h"

int sb_jr_w_fail(shmbus_journal *w, int err)
{
    if (w->failed == 0)
        w->failed = err;
    return w->failed;
}

/* Write @p iov (@p cnt of them, @p total bytes) to @p fd at @p off, all of
 * it. @return 0, or -errno (-ENOSPC for a write that stops short). */
static int pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t total, uint64_t off)
{
    uint64_t done = 0;

    while (done < total) {
        ssize_t n = pwritev(fd, iov, cnt, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ENOSPC; /* no progress: the file system is full */
        done += (uint64_t)n;
        /* Move the vectors past what was written. */
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* The buffered records are lost (a failed write): take them out of the
 * counters, which count only what reached the file, and end last_seq
 * before the first of them. */
static void w_uncount_buf(shmbus_journal *w)
{
    struct sb_jr_rec h;

    for (size_t off = 0; off < w->buf_len; off += (size_t)sb_jr_rec_size(h.len)) {
        memcpy(&h, w->buf + off, sizeof(h));
        if (off == 0)
            w->st.last_seq = h.seq - 1; /* UINT64_MAX (none) for seq 0 */
        if (h.flags & SHMBUS_JOURNAL_GAP) {
            w->st.gaps--;
            w->st.gap_messages -= h.count;
        } else {
            w->st.records--;
        }
    }
}

/* Write @p len bytes at the segment's end; on an error cut the segment
 * back to its last whole record, uncount what the buffer held, and fail
 * the writer. */
static int w_data(shmbus_journal *w, struct iovec *iov, int cnt, uint64_t len)
{
    int rc = pwritev_all(w->fd, iov, cnt, len, w->file_size);

    if (rc != 0) {
        /* A failed cut leaves a torn tail that the next open cuts. */
        if (ftruncate(w->fd, (off_t)w->file_size) != 0)
            rc = rc == -ENOSPC ? rc : -errno;
        w_uncount_buf(w);
        w->buf_len = 0;
        w->nents = 0;
        return sb_jr_w_fail(w, rc);
    }
    w->file_size += len;
    w->st.bytes += len;
    return 0;
}

/* Write the pending index entries; the index is advisory (rebuilt at
 * open where it lags), but a failed write fails the writer as the data's
 * would, after cutting the index back to its last whole entry. */
static int w_index(shmbus_journal *w)
{
    struct iovec iov = {w->ents, w->nents * sizeof(*w->ents)};
    uint64_t len = iov.iov_len;
    int rc;

    if (w->nents == 0 || w->ifd < 0)
        return 0;
    rc = pwritev_all(w->ifd, &iov, 1, len, w->index_size);
    w->nents = 0;
    if (rc != 0) {
        if (ftruncate(w->ifd, (off_t)w->index_size) != 0)
            rc = rc == -ENOSPC ? rc : -errno;
        return sb_jr_w_fail(w, rc);
    }
    w->index_size += len;
    return 0;
}

int sb_jr_w_out(shmbus_journal *w)
{
    struct iovec iov = {w->buf, w->buf_len};
    int rc;

    if (w->buf_len > 0) {
        rc = w_data(w, &iov, 1, w->buf_len);
        if (rc != 0)
            return rc;
        w->buf_len = 0;
    }
    return w_index(w);
}

int sb_jr_w_direct(shmbus_journal *w, const struct sb_jr_rec *h, const void *data)
{
    static const unsigned char zeros[8];
    struct iovec iov[3] = {
        {(void *)h, sizeof(*h)},
        {(void *)data, h->len},
        {(void *)zeros, (size_t)(sb_jr_rec_size(h->len) - sizeof(*h) - h->len)},
    };

    return w_data(w, iov, 3, sb_jr_rec_size(h->len));
}

/* Create file @p name of @p w's topic directory with exactly the mode of
 * the options (fchmod: the umask does not narrow it). */
static int w_create(shmbus_journal *w, const char *name, int flags)
{
    int fd =
        openat(w->dfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | flags, w->file_mode);

    if (fd < 0)
        return -errno;
    if (fchmod(fd, w->file_mode) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* Write the index header of segment @p seq to the new index @p ifd. */
static int w_index_hdr(int ifd, uint64_t seq)
{
    struct sb_jr_index_hdr h = {
        .magic = SB_JR_INDEX_MAGIC,
        .version = SB_JR_VERSION,
        .header_len = sizeof(h),
        .first_seq = seq,
        .entry_len = sizeof(struct sb_jr_index_entry),
    };
    struct iovec iov = {&h, sizeof(h)};

    h.crc = sb_jr_crc32c(0, &h, sizeof(h));
    return pwritev_all(ifd, &iov, 1, sizeof(h), 0);
}

int sb_jr_w_index_open(shmbus_journal *w, uint64_t seq)
{
    char name[32];
    int rc;

    sb_jr_file_name(name, seq, 1);
    w->ifd = w_create(w, name, O_TRUNC);
    if (w->ifd < 0)
        return w->ifd;
    rc = w_index_hdr(w->ifd, seq);
    w->index_size = sizeof(struct sb_jr_index_hdr);
    return rc;
}

int sb_jr_w_file_new(shmbus_journal *w, uint64_t seq)
{
    struct sb_jr_file_hdr h;
    struct iovec iov = {&h, sizeof(h)};
    char name[32];
    int rc;

    sb_jr_file_name(name, seq, 0);
    w->fd = w_create(w, name, O_EXCL);
    if (w->fd < 0) {
        rc = w->fd;
        w->fd = -1;
        return sb_jr_w_fail(w, rc);
    }
    sb_jr_hdr_fill(&h, w->topic, seq);
    rc = pwritev_all(w->fd, &iov, 1, sizeof(h), 0);
    if (rc == 0)
        rc = sb_jr_w_index_open(w, seq);
    /* The new name must survive a machine crash with the records in it. */
    if (rc == 0 && w->opts.sync != SHMBUS_JOURNAL_SYNC_NONE && fsync(w->dfd) != 0)
        rc = -errno;
    if (rc != 0) {
        /* Not a journal file yet: take it away whole. */
        unlinkat(w->dfd, name, 0);
        close(w->fd);
        w->fd = -1;
        return sb_jr_w_fail(w, rc);
    }
    w->file_seq = seq;
    w->file_size = sizeof(h);
    w->since_entry = 0;
    w->f_records = w->f_gaps = w->f_gap_messages = 0;
    w->f_last_msg_seq = UINT64_MAX;
    w->f_last_msg_time = 0;
    return 0;
}

int sb_jr_w_sync(shmbus_journal *w, int force)
{
    uint64_t now;

    if (w->fd < 0 || w->dirty_seq == UINT64_MAX)
        return 0; /* nothing written since the last sync */
    now = sb_mono_ns();
    if (!force && w->opts.sync == SHMBUS_JOURNAL_SYNC_NONE)
        return 0;
    if (!force && w->opts.sync == SHMBUS_JOURNAL_SYNC_INTERVAL &&
        now - w->last_sync_ns < (uint64_t)w->opts.sync_interval_ms * 1000000u)
        return 0;
    if (fdatasync(w->fd) != 0)
        return sb_jr_w_fail(w, -errno);
    w->last_sync_ns = now;
    w->st.synced_seq = w->dirty_seq;
    w->dirty_seq = UINT64_MAX;
    return 0;
}

int sb_jr_w_roll(shmbus_journal *w)
{
    int rc = sb_jr_w_out(w);

    if (rc == 0)
        rc = sb_jr_w_sync(w, w->opts.sync != SHMBUS_JOURNAL_SYNC_NONE);
    if (rc != 0)
        return rc;
    close(w->fd);
    if (w->ifd >= 0)
        close(w->ifd);
    w->fd = w->ifd = -1;
    return 0;
}

/* 1 if segment @p seq's newest record is older than retain_ns (its time
 * cached for the file retention stopped at last). */
static int w_file_expired(shmbus_journal *w, uint64_t seq)
{
    if (w->opts.retain_ns == 0)
        return 0;
    if (w->age_seq != seq) {
        if (sb_jr_file_time(w->dfd, seq, &w->age_time) != 0)
            return 0; /* gone meanwhile */
        w->age_seq = seq;
    }
    return sb_jr_expired(w->age_time, sb_real_ns(), w->opts.retain_ns);
}

int sb_jr_w_retain(shmbus_journal *w)
{
    uint64_t *seqs, total = 0;
    size_t n, i;
    char name[32];
    int rc;

    if (w->opts.retain_bytes == 0 && w->opts.retain_ns == 0)
        return 0;
    rc = sb_jr_segs_list(w->dfd, &seqs, &n);
    if (rc != 0)
        return rc;
    for (i = 0; i < n && w->opts.retain_bytes != 0; i++)
        total += sb_jr_file_bytes(w->dfd, seqs[i]);
    /* Oldest first, never the newest: the file written, or the one just
     * finished, which tells the next file's first seq. */
    for (i = 0; i + 1 < n; i++) {
        uint64_t bytes = sb_jr_file_bytes(w->dfd, seqs[i]);
        int over = w->opts.retain_bytes != 0 && total > w->opts.retain_bytes;

        if (!over && !w_file_expired(w, seqs[i]))
            break;
        sb_jr_file_name(name, seqs[i], 0);
        if (unlinkat(w->dfd, name, 0) != 0 && errno != ENOENT)
            break;
        sb_jr_file_name(name, seqs[i], 1);
        unlinkat(w->dfd, name, 0);
        total -= bytes < total ? bytes : total;
        w->st.files_removed++;
    }
    free(seqs);
    return 0;
}
