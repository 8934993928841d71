/* SPDX-License-Identifier: Apache-2.0 */
/* futex(2) and futex_waitv(2) wrappers, shared across processes. */
#include "util/futex.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shmbus/shmbus.h"
#include "util/clock.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* The plain calls and the kernel's futex_waitv sleepers use the kernel's
 * match-all mask: SB_FUTEX_ANY must be it. A publisher's wake-up (EAGER)
 * must never meet a lazy sleeper's mask (util/futex.h). */
static_assert(SB_FUTEX_ANY == FUTEX_BITSET_MATCH_ANY, "SB_FUTEX_ANY is the kernel's match-all");
static_assert((SB_FUTEX_EAGER & SB_FUTEX_LAZY) == 0, "publishers' wake-ups miss lazy sleepers");

static int futex_errno(long rc)
{
    if (rc >= 0)
        return 0;
    /* EAGAIN: the word changed before we slept, which is a wake-up. */
    return errno == EAGAIN ? 0 : -errno;
}

int sb_futex_wait_bits(_Atomic uint32_t *word, uint32_t expect, uint64_t deadline_ns, uint32_t bits)
{
    struct timespec ts, *tsp = NULL;
    long rc;

    if (deadline_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(deadline_ns / 1000000000ull);
        ts.tv_nsec = (long)(deadline_ns % 1000000000ull);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
     * retried wait never stretches the caller's timeout. */
    rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expect, tsp, NULL, bits);
    return futex_errno(rc);
}

int sb_futex_wait(_Atomic uint32_t *word, uint32_t expect, uint64_t deadline_ns)
{
    return sb_futex_wait_bits(word, expect, deadline_ns, SB_FUTEX_ANY);
}

void sb_futex_wake_bits(_Atomic uint32_t *word, int n, uint32_t bits)
{
    syscall(SYS_futex, word, FUTEX_WAKE_BITSET, n, NULL, NULL, bits);
}

void sb_futex_wake(_Atomic uint32_t *word, int n)
{
    sb_futex_wake_bits(word, n, SB_FUTEX_ANY);
}

int sb_futex_waitv(_Atomic uint32_t *const *words, const uint32_t *expect, unsigned n,
                   uint64_t deadline_ns)
{
    struct futex_waitv w[SHMBUS_WAITSET_MAX];
    struct timespec ts, *tsp = NULL;
    long rc;

    if (n == 0 || n > SHMBUS_WAITSET_MAX)
        return SHMBUS_ERR_INVALID;
    memset(w, 0, sizeof(w[0]) * n);
    for (unsigned i = 0; i < n; i++) {
        w[i].uaddr = (uint64_t)(uintptr_t)words[i];
        w[i].val = expect[i];
        w[i].flags = FUTEX_32; /* shared: no FUTEX_PRIVATE_FLAG */
    }
    if (deadline_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(deadline_ns / 1000000000ull);
        ts.tv_nsec = (long)(deadline_ns % 1000000000ull);
        tsp = &ts;
    }
    rc = syscall(SYS_futex_waitv, w, n, 0, tsp, CLOCK_MONOTONIC);
    return futex_errno(rc);
}
