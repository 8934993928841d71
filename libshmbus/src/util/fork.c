/* SPDX-License-Identifier: Apache-2.0 */
/* Fork generations (fork.h). */
#include "util/fork.h"

#include <pthread.h>

_Atomic uint32_t sb_fork_generation;

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
    /* relaxed: see sb_fork_gen(). */
    atomic_fetch_add_explicit(&sb_fork_generation, 1, memory_order_relaxed);
}

static void fork_register(void)
{
    pthread_atfork(NULL, NULL, fork_child);
}

void sb_fork_watch(void)
{
    pthread_once(&fork_once, fork_register);
}
