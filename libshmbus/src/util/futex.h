/*
 * Shared (non-private) futex calls on 32-bit words in shared memory. The
 * words are _Atomic uint32_t; the kernel reads them itself, so passing their
 * address is the only access made here.
 */
#ifndef SHMBUS_UTIL_FUTEX_H
#define SHMBUS_UTIL_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleep while *word == expect, until woken or the monotonic deadline
 * (UINT64_MAX = none). @return 0 woken or value changed, -ETIMEDOUT, -EINTR. */
int sb_futex_wait(_Atomic uint32_t *word, uint32_t expect, uint64_t deadline_ns);

/* Wake up to @p n sleepers on @p word (INT_MAX: all). */
void sb_futex_wake(_Atomic uint32_t *word, int n);

/* Sleep on up to SHMBUS_WAITSET_MAX words at once (futex_waitv).
 * @return 0 woken or a value changed, -ETIMEDOUT, -EINTR, -ENOSYS. */
int sb_futex_waitv(_Atomic uint32_t *const *words, const uint32_t *expect, unsigned n,
                   uint64_t deadline_ns);

#endif
