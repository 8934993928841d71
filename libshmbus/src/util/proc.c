/* SPDX-License-Identifier: Apache-2.0 */
/* Process start times (proc.h). */
#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sb_proc_start_get(pid_t pid, uint64_t *start)
{
    char path[32], buf[1024], *p;
    ssize_t n;
    int fd, field;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && kill(pid, 0) < 0 && errno == ESRCH)
        return 0; /* gone: /proc hides no process (hidepid can hide live ones) */
    if (fd < 0)
        return errno == ESRCH ? 0 : -errno;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return errno == ESRCH ? 0 : -errno; /* ESRCH: it exited meanwhile */
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and ')': count fields
     * from the last ')'. */
    p = strrchr(buf, ')');
    for (field = 2; field < 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL)
        return -EINVAL;
    *start = strtoull(p + 1, NULL, 10);
    return 1;
}

uint64_t sb_proc_self_start(void)
{
    /* Cached per process: a fork child sees its parent's pid in the cache
     * and reads its own. Racing threads compute the same value. */
    static _Atomic uint64_t cached_pid, cached_start;
    uint64_t pid = (uint64_t)getpid();

    /* acquire: pairs with the release below; the start stored before it. */
    if (atomic_load_explicit(&cached_pid, memory_order_acquire) != pid) {
        uint64_t start = 0;

        if (sb_proc_start_get((pid_t)pid, &start) <= 0)
            return 0; /* unknown for now: not cached, asked again next time */
        /* relaxed: published by the release store of the pid. */
        atomic_store_explicit(&cached_start, start, memory_order_relaxed);
        atomic_store_explicit(&cached_pid, pid, memory_order_release);
        return start;
    }
    /* relaxed: ordered by the acquire load above. */
    return atomic_load_explicit(&cached_start, memory_order_relaxed);
}
