/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared (non-private) futex calls on 32-bit words in shared memory. The
 * words are _Atomic uint32_t; the kernel reads them itself, so passing their
 * address is the only access made here.
 */
#ifndef SHMBUS_UTIL_FUTEX_H
#define SHMBUS_UTIL_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/* Wake-up classes (the futex bitset): a sleeper waits with a mask, a
 * waker wakes those whose mask meets its own. SB_FUTEX_ANY (the plain
 * calls below, and every futex_waitv sleeper): woken by all. A lazy
 * subscriber (ring/wait.c) waits with SB_FUTEX_LAZY, so publishers and
 * relays, which wake SB_FUTEX_EAGER, never wake it, and the daemon's
 * wake-ups (ANY) still do. */
#define SB_FUTEX_EAGER 1u
#define SB_FUTEX_LAZY  2u
#define SB_FUTEX_ANY   0xffffffffu

/* Sleep while *word == expect, until woken or the monotonic deadline
 * (UINT64_MAX = none). @return 0 woken or value changed, -ETIMEDOUT, -EINTR. */
int sb_futex_wait(_Atomic uint32_t *word, uint32_t expect, uint64_t deadline_ns);

/* The same, woken only by wakers whose mask meets @p bits (non-zero). */
int sb_futex_wait_bits(_Atomic uint32_t *word, uint32_t expect, uint64_t deadline_ns,
                       uint32_t bits);

/* Wake up to @p n sleepers on @p word (INT_MAX: all). */
void sb_futex_wake(_Atomic uint32_t *word, int n);

/* The same, only sleepers whose mask meets @p bits (non-zero). */
void sb_futex_wake_bits(_Atomic uint32_t *word, int n, uint32_t bits);

/* Sleep on up to SHMBUS_WAITSET_MAX words at once (futex_waitv).
 * @return 0 woken or a value changed, -ETIMEDOUT, -EINTR, -ENOSYS. */
int sb_futex_waitv(_Atomic uint32_t *const *words, const uint32_t *expect, unsigned n,
                   uint64_t deadline_ns);

#endif
