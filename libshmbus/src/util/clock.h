/* SPDX-License-Identifier: Apache-2.0 */
/* Clock helpers: monotonic deadlines for waits, realtime publish stamps. */
#ifndef SHMBUS_UTIL_CLOCK_H
#define SHMBUS_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t sb_now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t sb_mono_ns(void)
{
    return sb_now_ns(CLOCK_MONOTONIC);
}

static inline uint64_t sb_real_ns(void)
{
    return sb_now_ns(CLOCK_REALTIME);
}

/* Absolute monotonic deadline for a timeout: UINT64_MAX = never. */
static inline uint64_t sb_deadline(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return UINT64_MAX;
    return sb_mono_ns() + (uint64_t)timeout_ns;
}

static inline void sb_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
