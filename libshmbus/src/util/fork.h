/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fork detection without a system call: a counter bumped in the child
 * after every fork() (pthread_atfork). A publisher or subscriber records
 * it when created; one relaxed load on each call tells whether it is being
 * used by a child that inherited it, which must not write into the ring in
 * its creator's name (its record and slot are the parent's).
 */
#ifndef SHMBUS_UTIL_FORK_H
#define SHMBUS_UTIL_FORK_H

#include <stdatomic.h>
#include <stdint.h>

extern _Atomic uint32_t sb_fork_generation;

/* Register the fork handler (once per process; thread-safe). */
void sb_fork_watch(void);

/* The current generation. relaxed: the child handler runs in the child's
 * only thread before fork() returns; threads it creates later see it. */
static inline uint32_t sb_fork_gen(void)
{
    return atomic_load_explicit(&sb_fork_generation, memory_order_relaxed);
}

#endif
