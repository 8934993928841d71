/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal's shared file handling: directory and names, the header
 * check, the record scanner, the index's valid prefix and the summary of
 * one segment file. Used by the writer (recovery), the reader and the
 * summary; see file.h.
 */
#include "journal/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/crc32c.h"
#include "util/clock.h"
#include "util/name.h"
#include "util/vec.h"

#define SCAN_CHUNK (64u << 10) /* bytes read ahead at a time */
/* Bytes of candidate records one resync checks by CRC, at most. Each check
 * costs its record's length, so a crafted file of headers whose lengths
 * reach its end would cost the square of its size (an hour for 64 MiB);
 * past this the rest of the file is damage. Honest damage never comes
 * near: a false candidate needs its mark and a sane header by chance. */
#define RESYNC_BUDGET (4ull * SB_JR_PAYLOAD_MAX)

int sb_jr_dir_openat(int dfd, const char *name)
{
    struct stat st;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), e;

    if (fd >= 0)
        return fd;
    e = errno;
    /* O_DIRECTORY says ENOTDIR of a link: say what it is. */
    if (e == ENOTDIR && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return -ELOOP;
    return -e;
}

int sb_jr_topic_dir_open(const char *dir, const char *topic, int *fd)
{
    int dfd, tfd;

    *fd = -1;
    if (!sb_name_valid(topic, SHMBUS_TOPIC_NAME_MAX))
        return SHMBUS_ERR_BAD_NAME;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    tfd = sb_jr_dir_openat(dfd, topic);
    close(dfd);
    if (tfd < 0)
        return tfd;
    *fd = tfd;
    return 0;
}

void sb_jr_file_name(char out[32], uint64_t seq, int index)
{
    snprintf(out, 32, "%020llu%s", (unsigned long long)seq, index ? SB_JR_INDEX_SUFFIX : "");
}

/* The seq a segment file's name @p s stands for, or -1 if it is none. */
static int seg_name_parse(const char *s, uint64_t *seq)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < SB_JR_NAME_DIGITS; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        /* 20 digits may pass UINT64_MAX: such a name is no segment's */
        if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (s[i] != '\0')
        return -1;
    *seq = v;
    return 0;
}

static int seq_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int sb_jr_segs_list(int dfd, uint64_t **seqs, size_t *n)
{
    uint64_t *v = NULL, seq;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    DIR *d;
    int fd = dup(dfd);

    *seqs = NULL;
    *n = 0;
    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (d == NULL) {
        int e = -errno;
        close(fd);
        return e;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        if (seg_name_parse(de->d_name, &seq) != 0)
            continue; /* not a segment file */
        if (SB_VEC_RESERVE(v, cap, cnt, 1, 16) != 0) {
            free(v);
            closedir(d);
            return -ENOMEM;
        }
        v[cnt++] = seq;
    }
    closedir(d);
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), seq_cmp);
    *seqs = v;
    *n = cnt;
    return 0;
}

void sb_jr_hdr_fill(struct sb_jr_file_hdr *h, const char *topic, uint64_t first_seq)
{
    memset(h, 0, sizeof(*h));
    h->magic = SB_JR_FILE_MAGIC;
    h->version = SB_JR_VERSION;
    h->header_len = sizeof(*h);
    h->first_seq = first_seq;
    h->created_ns = sb_real_ns();
    h->topic_len = (uint32_t)strlen(topic);
    memcpy(h->topic, topic, h->topic_len);
    h->crc = sb_jr_crc32c(0, h, sizeof(*h));
}

int sb_jr_hdr_read(int fd, uint64_t first_seq, const char *topic)
{
    struct sb_jr_file_hdr h;
    uint32_t crc;
    ssize_t got = pread(fd, &h, sizeof(h), 0);

    if (got < 0)
        return -errno;
    /* The magic and version are judged first, on whatever is there, so
     * that a short foreign file is BAD_MAGIC rather than TRUNCATED. */
    if ((size_t)got >= sizeof(h.magic) && h.magic != SB_JR_FILE_MAGIC)
        return SHMBUS_ERR_BAD_MAGIC;
    if ((size_t)got >= 12 && h.version != SB_JR_VERSION)
        return SHMBUS_ERR_VERSION;
    if ((size_t)got < sizeof(h))
        return SHMBUS_ERR_TRUNCATED;
    crc = h.crc;
    h.crc = 0;
    if (sb_jr_crc32c(0, &h, sizeof(h)) != crc)
        return SHMBUS_ERR_CORRUPT;
    if (h.header_len != sizeof(h) || h.first_seq != first_seq || h.topic_len == 0 ||
        h.topic_len > SHMBUS_TOPIC_NAME_MAX)
        return SHMBUS_ERR_BAD_MAGIC;
    if (topic != NULL && (strlen(topic) != h.topic_len || memcmp(topic, h.topic, h.topic_len)))
        return SHMBUS_ERR_BAD_MAGIC;
    return 0;
}

void sb_jr_scan_init(struct sb_jr_scan *s, int fd, uint64_t pos, uint64_t size)
{
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->pos = pos;
    s->size = size;
}

void sb_jr_scan_fini(struct sb_jr_scan *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
    s->buf_len = 0;
}

void sb_jr_scan_drop(struct sb_jr_scan *s)
{
    s->buf_len = 0;
}

/* Make bytes [off, off + need) of the file readable at the returned
 * pointer, reading ahead; need <= the record maximum, and off + need <=
 * s->size (the caller checked). @return the pointer, or NULL with *err. */
static const unsigned char *scan_at(struct sb_jr_scan *s, uint64_t off, size_t need, int *err)
{
    size_t want, got = 0;

    if (off >= s->buf_off && off + need <= s->buf_off + s->buf_len)
        return s->buf + (off - s->buf_off);
    want = need > SCAN_CHUNK ? need : SCAN_CHUNK;
    if (want > s->size - off)
        want = (size_t)(s->size - off);
    if (want < need)
        want = need;
    if (want > s->cap) {
        unsigned char *b = realloc(s->buf, want);
        if (b == NULL) {
            *err = -ENOMEM;
            return NULL;
        }
        s->buf = b;
        s->cap = want;
    }
    s->buf_off = off;
    s->buf_len = 0;
    while (got < need) {
        ssize_t r = pread(s->fd, s->buf + got, want - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *err = -errno;
            return NULL;
        }
        if (r == 0) {
            /* The file shrank under us: what is missing is not there yet. */
            *err = 0;
            return NULL;
        }
        got += (size_t)r;
    }
    s->buf_len = got;
    return s->buf;
}

/* Check a record header at @p off against what may follow: @return NULL
 * if it may be a record, else what is wrong with it. */
static const char *rec_head_check(const struct sb_jr_rec *h, uint64_t off)
{
    if (h->mark != sb_jr_rec_mark(off))
        return "bad record mark";
    if (h->len > SB_JR_PAYLOAD_MAX)
        return "impossible length";
    if (h->count == 0 || h->reserved != 0 || (h->flags & ~3u) != 0)
        return "impossible header";
    if ((h->flags & SHMBUS_JOURNAL_GAP) != 0 && h->len != 0)
        return "impossible header";
    if ((h->flags & SHMBUS_JOURNAL_GAP) == 0 && h->count != 1)
        return "impossible header";
    if (h->count - 1 > UINT64_MAX - h->seq)
        return "impossible header";
    return NULL;
}

int sb_jr_scan_rec(struct sb_jr_scan *s, struct sb_jr_rec *rec, const void **payload,
                   const char **what)
{
    const unsigned char *p;
    uint64_t size;
    int err = 0;

    *what = NULL;
    if (s->pos > s->size || s->size - s->pos < sizeof(*rec))
        return SB_JR_SCAN_SHORT;
    p = scan_at(s, s->pos, sizeof(*rec), &err);
    if (p == NULL)
        return err < 0 ? err : SB_JR_SCAN_SHORT;
    memcpy(rec, p, sizeof(*rec));
    *what = rec_head_check(rec, s->pos);
    if (*what != NULL)
        return SB_JR_SCAN_DAMAGE;
    /* The length is bounded by SB_JR_PAYLOAD_MAX before it sizes a read. */
    size = sb_jr_rec_size(rec->len);
    if (s->size - s->pos < size)
        return SB_JR_SCAN_SHORT;
    p = scan_at(s, s->pos, (size_t)size, &err);
    if (p == NULL)
        return err < 0 ? err : SB_JR_SCAN_SHORT;
    if (sb_jr_crc32c(0, p + 8, sizeof(*rec) - 8 + rec->len) != rec->crc) {
        *what = "bad CRC";
        return SB_JR_SCAN_DAMAGE;
    }
    *payload = p + sizeof(*rec);
    s->pos += size;
    return SB_JR_SCAN_OK;
}

int64_t sb_jr_scan_resync(struct sb_jr_scan *s)
{
    uint64_t at = s->pos, save = s->pos, spent = 0;
    struct sb_jr_rec rec;
    const void *payload;
    const char *what;

    for (at = (s->pos + 8) & ~(uint64_t)7; at + sizeof(rec) <= s->size; at += 8) {
        uint32_t mark;
        int err = 0;
        const unsigned char *p = scan_at(s, at, 4, &err);

        if (p == NULL) {
            if (err < 0)
                return err;
            break;
        }
        memcpy(&mark, p, sizeof(mark));
        /* Only a position whose mark matches is worth a full check. */
        if (mark != sb_jr_rec_mark(at))
            continue;
        p = scan_at(s, at, sizeof(rec), &err);
        if (p == NULL) {
            if (err < 0)
                return err;
            break;
        }
        memcpy(&rec, p, sizeof(rec));
        /* Only a record that fits the file costs a CRC. */
        if (rec.len <= SB_JR_PAYLOAD_MAX && sb_jr_rec_size(rec.len) <= s->size - at) {
            spent += sb_jr_rec_size(rec.len);
            if (spent > RESYNC_BUDGET)
                break;
        }
        s->pos = at;
        err = sb_jr_scan_rec(s, &rec, &payload, &what);
        s->pos = save;
        if (err == SB_JR_SCAN_OK)
            return (int64_t)at;
        if (err < SB_JR_SCAN_DAMAGE)
            return err;
    }
    return (int64_t)s->size;
}

void sb_jr_entry_seal(struct sb_jr_index_entry *e)
{
    e->reserved = 0;
    e->crc = sb_jr_crc32c(0, e, offsetof(struct sb_jr_index_entry, crc));
}
