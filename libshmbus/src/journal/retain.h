/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retention's pieces: what a file weighs and how old it is, shared by the
 * writer's retention (write_io.c) and the retention of a journal no
 * writer writes (retain.c, shmbus_journal_retain()).
 */
#ifndef SHMBUS_JOURNAL_RETAIN_H
#define SHMBUS_JOURNAL_RETAIN_H

#include <stdint.h>

/* Bytes of segment @p seq of directory @p dfd and its index (0 for one
 * gone). */
uint64_t sb_jr_file_bytes(int dfd, uint64_t seq);

/* The time that stands for the newest record of segment @p seq of
 * directory @p dfd, into *@p time_ns: its last record's; where a damaged
 * header or no good record hides it, the file's mtime (its last write),
 * so that one damaged file neither stops retention by age for good nor
 * goes at once. @return 0, or -errno (it cannot be opened: gone). */
int sb_jr_file_time(int dfd, uint64_t seq, uint64_t *time_ns);

/* 1 if a record of @p time_ns is older than @p retain_ns (0: no limit) at
 * @p now, all CLOCK_REALTIME. A time ahead of @p now (a clock set back)
 * is not: the file is kept until it ages. */
static inline int sb_jr_expired(uint64_t time_ns, uint64_t now, uint64_t retain_ns)
{
    return retain_ns != 0 && now > time_ns && now - time_ns > retain_ns;
}

#endif
