/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Set-aside of a journal (journal.h shmbus_journal_set_aside()): the
 * journal of an earlier topic of a name is moved to DIR/TOPIC.old-NS, one
 * naming and one move for shmbusd --record and `shmbus record`. Under the
 * journal's writer lock, so never under a writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "journal/file.h"
#include "util/clock.h"
#include "util/name.h"

/* Name the set-aside journal of @p topic at @p ns into @p out: TOPIC, cut
 * to make room for the suffix if need be (exactly SHMBUS_TOPIC_NAME_MAX
 * characters then), .old-NS. */
static void aside_name(char out[SHMBUS_TOPIC_NAME_MAX + 1], const char *topic, uint64_t ns)
{
    int room = SHMBUS_TOPIC_NAME_MAX -
               snprintf(NULL, 0, SHMBUS_JOURNAL_ASIDE_MARK "%llu", (unsigned long long)ns);

    snprintf(out, SHMBUS_TOPIC_NAME_MAX + 1, "%.*s" SHMBUS_JOURNAL_ASIDE_MARK "%llu", room, topic,
             (unsigned long long)ns);
}

int shmbus_journal_set_aside(const char *dir, const char *topic, char *aside_out, size_t cap)
{
    char aside[SHMBUS_TOPIC_NAME_MAX + 1];
    int pfd, tfd = -1, lfd = -1, rc = 0;

    if (dir == NULL || topic == NULL)
        return SHMBUS_ERR_INVALID;
    if (!sb_name_valid(topic, SHMBUS_TOPIC_NAME_MAX))
        return SHMBUS_ERR_BAD_NAME;
    aside_name(aside, topic, sb_real_ns());
    if (aside_out != NULL && strlen(aside) >= cap)
        return SHMBUS_ERR_INVALID;
    if (aside_out != NULL)
        memcpy(aside_out, aside, strlen(aside) + 1);
    /* DIR may be a link, the operator's; DIR/TOPIC may not. */
    pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return -errno;
    tfd = sb_jr_dir_openat(pfd, topic);
    if (tfd < 0) {
        rc = tfd;
        goto out;
    }
    /* The writer's lock: no writer has the journal open while it moves.
     * No lock file: no writer ever opened it, none has it now. */
    lfd = openat(tfd, SB_JR_LOCK_NAME, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (lfd < 0 && errno != ENOENT) {
        rc = -errno;
        goto out;
    }
    if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        goto out;
    }
    /* renameat() moves a link at TOPIC itself, never what it points to;
     * sb_jr_dir_openat() above refused one already. */
    if (renameat(pfd, topic, pfd, aside) != 0) {
        rc = -errno;
        goto out;
    }
out:
    if (lfd >= 0)
        close(lfd); /* releases the flock */
    if (tfd >= 0)
        close(tfd);
    close(pfd);
    return rc;
}
