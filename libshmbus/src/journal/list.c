/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Listing the journals of a directory and summing one up: the topics are
 * the subdirectories with a valid topic name and at least one segment
 * file; a summary adds up each segment's index and the tail past its last
 * entry (file.h sb_jr_fsum_get()), never a full scan of a file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/file.h"
#include "util/name.h"
#include "util/vec.h"

typedef char sb_jr_topic_name[SHMBUS_TOPIC_NAME_MAX + 1];

/* 1 if @p name in directory @p dfd is a topic's journal directory. */
static int list_is_journal(int dfd, const char *name)
{
    uint64_t *seqs;
    size_t n = 0;
    int tfd;

    if (!sb_name_valid(name, SHMBUS_TOPIC_NAME_MAX))
        return 0;
    tfd = sb_jr_dir_openat(dfd, name);
    if (tfd < 0)
        return 0;
    if (sb_jr_segs_list(tfd, &seqs, &n) == 0)
        free(seqs);
    close(tfd);
    return n > 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const sb_jr_topic_name *)a, *(const sb_jr_topic_name *)b);
}

int shmbus_journal_list(const char *dir, char (*names)[SHMBUS_TOPIC_NAME_MAX + 1], unsigned cap)
{
    sb_jr_topic_name *v = NULL;
    size_t cnt = 0, vcap = 0;
    struct dirent *de;
    DIR *d;

    if (dir == NULL || (names == NULL && cap > 0))
        return SHMBUS_ERR_INVALID;
    d = opendir(dir);
    if (d == NULL)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        if (!list_is_journal(dirfd(d), de->d_name))
            continue;
        if (cnt >= INT32_MAX || SB_VEC_RESERVE(v, vcap, cnt, 1, 16) != 0) {
            free(v);
            closedir(d);
            return -ENOMEM;
        }
        strcpy(v[cnt++], de->d_name);
    }
    closedir(d);
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), name_cmp);
    for (size_t i = 0; i < cnt && i < cap; i++)
        memcpy(names[i], v[i], sizeof(*v));
    free(v);
    return (int)cnt;
}

/* Add segment @p seq of directory @p dfd to @p out. */
static int sum_file(int dfd, uint64_t seq, shmbus_journal_summary *out)
{
    struct sb_jr_fsum f;
    struct stat st;
    char name[32];
    int fd, rc;

    sb_jr_file_name(name, seq, 1);
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        out->bytes += (uint64_t)st.st_size;
    sb_jr_file_name(name, seq, 0);
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno; /* retention took it meanwhile */
    rc = sb_jr_fsum_get(dfd, fd, seq, 0, &f);
    if (fstat(fd, &st) == 0)
        out->bytes += (uint64_t)st.st_size;
    close(fd);
    out->files++;
    /* A torn or damaged header: the file counts, its records do not. */
    if (rc == SHMBUS_ERR_TRUNCATED || rc == SHMBUS_ERR_CORRUPT)
        return 0;
    if (rc != 0)
        return rc;
    out->records += f.records;
    out->gaps += f.gaps;
    out->gap_messages += f.gap_messages;
    if (f.first_msg_seq != UINT64_MAX && out->first_seq == UINT64_MAX) {
        out->first_seq = f.first_msg_seq;
        out->first_time_ns = f.first_msg_time;
    }
    if (f.last_msg_seq != UINT64_MAX) {
        out->last_seq = f.last_msg_seq;
        out->last_time_ns = f.last_msg_time;
    }
    return 0;
}

int shmbus_journal_summary_get(const char *dir, const char *topic, shmbus_journal_summary *out)
{
    uint64_t *seqs;
    size_t n;
    int dfd, rc;

    memset(out, 0, sizeof(*out));
    out->first_seq = out->last_seq = UINT64_MAX;
    if (dir == NULL)
        return SHMBUS_ERR_INVALID;
    rc = sb_jr_topic_dir_open(dir, topic, &dfd);
    if (rc != 0)
        return rc;
    rc = sb_jr_segs_list(dfd, &seqs, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = sum_file(dfd, seqs[i], out);
    if (rc == 0 && n == 0)
        rc = -ENOENT;
    if (n > 0)
        free(seqs);
    close(dfd);
    return rc;
}
