/*
 * Process identity across pid reuse: a pid names a process only together
 * with its start time (field 22 of /proc/PID/stat, clock ticks since boot),
 * which a later process given the same pid cannot have.
 */
#ifndef SHMBUS_UTIL_PROC_H
#define SHMBUS_UTIL_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Start time of process @p pid, or 0 if it does not exist (or /proc is
 * unreadable). */
uint64_t sb_proc_start(pid_t pid);

/* Start time of the calling process (cached; correct after fork()). */
uint64_t sb_proc_self_start(void);

#endif
