/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process identity across pid reuse: a pid names a process only together
 * with its start time (field 22 of /proc/PID/stat, clock ticks since boot),
 * which a later process given the same pid cannot have (it starts at least
 * a tick later). A start time of 0 means "unknown": /proc could not be
 * read; only the pid is known then.
 */
#ifndef SHMBUS_UTIL_PROC_H
#define SHMBUS_UTIL_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Start time of process @p pid.
 * @return 1 with *start set; 0 if no process has that pid; -errno if it
 *         cannot be told (descriptors exhausted, no /proc...). */
int sb_proc_start_get(pid_t pid, uint64_t *start);

/* Start time of the calling process, or 0 if unknown (cached once known;
 * correct after fork()). */
uint64_t sb_proc_self_start(void);

#endif
