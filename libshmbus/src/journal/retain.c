/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retention of a journal no writer writes any more (journal.h
 * shmbus_journal_retain()): shmbusd's set-aside journals, the history of
 * an earlier topic of a name, which no writer's own retention reaches.
 * Under the journal's writer lock, so never beside a writer. Also what a
 * file weighs and how old it is (retain.h), which the writer's retention
 * (write_io.c) uses too.
 */
#include "journal/retain.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/file.h"
#include "util/clock.h"
#include "util/name.h"

uint64_t sb_jr_file_bytes(int dfd, uint64_t seq)
{
    struct stat st;
    uint64_t n = 0;
    char name[32];

    for (int i = 0; i < 2; i++) {
        sb_jr_file_name(name, seq, i);
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            n += (uint64_t)st.st_size;
    }
    return n;
}

int sb_jr_file_time(int dfd, uint64_t seq, uint64_t *time_ns)
{
    struct sb_jr_fsum f;
    struct stat st;
    char name[32];
    int fd, ok;

    sb_jr_file_name(name, seq, 0);
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (sb_jr_fsum_get(dfd, fd, seq, 0, &f) == 0 && f.last_time != 0) {
        close(fd);
        *time_ns = f.last_time;
        return 0;
    }
    ok = fstat(fd, &st) == 0;
    close(fd);
    if (!ok)
        return -EIO;
    *time_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    return 0;
}

/* Are the files @p seqs (@p n) of directory @p dfd topic @p owner's? At
 * least one header must name it and none another topic. A damaged header
 * names nobody; a journal of damaged headers only is left alone.
 * @return 0 or SHMBUS_ERR_BAD_MAGIC. */
static int retain_owned(int dfd, const uint64_t *seqs, size_t n, const char *owner)
{
    char name[32];
    int named = 0;

    for (size_t i = 0; i < n; i++) {
        int fd, rc;

        sb_jr_file_name(name, seqs[i], 0);
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; /* gone meanwhile: nothing to judge */
        rc = sb_jr_hdr_read(fd, seqs[i], owner);
        close(fd);
        if (rc == SHMBUS_ERR_BAD_MAGIC)
            return rc;
        named |= rc == 0;
    }
    return named ? 0 : SHMBUS_ERR_BAD_MAGIC;
}

/* Delete segment @p seq (then its index). @return 0 or -errno. */
static int retain_unlink(int dfd, uint64_t seq)
{
    char name[32];

    sb_jr_file_name(name, seq, 0);
    if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
        return -errno;
    sb_jr_file_name(name, seq, 1);
    unlinkat(dfd, name, 0);
    return 0;
}

/* Delete the oldest of @p seqs (@p n) while they hold more than @p bytes
 * or are older than @p retain_ns, the newest too. *@p kept: the bytes
 * left. @return files deleted, or -errno. */
static int retain_files(int dfd, const uint64_t *seqs, size_t n, uint64_t bytes, uint64_t retain_ns,
                        uint64_t *kept)
{
    uint64_t total = 0, now = sb_real_ns(), t;
    int removed = 0, rc = 0;
    size_t i;

    for (i = 0; i < n; i++)
        total += sb_jr_file_bytes(dfd, seqs[i]);
    for (i = 0; i < n; i++) {
        uint64_t b = sb_jr_file_bytes(dfd, seqs[i]);

        if (total <= bytes &&
            !(sb_jr_file_time(dfd, seqs[i], &t) == 0 && sb_jr_expired(t, now, retain_ns)))
            break; /* oldest first: the rest is newer */
        rc = retain_unlink(dfd, seqs[i]);
        if (rc < 0)
            break;
        total -= b < total ? b : total;
        removed++;
    }
    *kept = total;
    return rc < 0 && removed == 0 ? rc : removed;
}

/* The journal DIR/@p topic has no segment left: remove its lock and the
 * directory. Anything else in it (a stray index, a file of an operator's)
 * keeps the directory, as it stands. */
static void retain_rmdir(const char *dir, const char *topic, int dfd)
{
    int pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (pfd < 0)
        return;
    unlinkat(dfd, SB_JR_LOCK_NAME, 0);
    unlinkat(pfd, topic, AT_REMOVEDIR);
    close(pfd);
}

int shmbus_journal_retain(const char *dir, const char *topic, const char *owner,
                          uint64_t retain_bytes, uint64_t retain_ns, uint64_t *kept)
{
    uint64_t *seqs = NULL, left = 0;
    int dfd = -1, lfd = -1, rc;
    size_t n = 0;

    if (kept != NULL)
        *kept = 0;
    if (dir == NULL || topic == NULL || owner == NULL)
        return SHMBUS_ERR_INVALID;
    if (!sb_name_valid(owner, SHMBUS_TOPIC_NAME_MAX))
        return SHMBUS_ERR_BAD_NAME;
    rc = sb_jr_topic_dir_open(dir, topic, &dfd);
    if (rc < 0)
        return rc;
    /* The writer's lock: no writer adds files while retention judges. */
    lfd = openat(dfd, SB_JR_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0) {
        rc = -errno;
        goto out;
    }
    if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        goto out;
    }
    rc = sb_jr_segs_list(dfd, &seqs, &n);
    if (rc == 0 && n > 0)
        rc = retain_owned(dfd, seqs, n, owner);
    if (rc == 0)
        rc = retain_files(dfd, seqs, n, retain_bytes, retain_ns, &left);
    if (rc >= 0 && (size_t)rc == n)
        retain_rmdir(dir, topic, dfd);
    if (kept != NULL)
        *kept = left;
out:
    free(seqs);
    if (lfd >= 0)
        close(lfd);
    close(dfd);
    return rc;
}
