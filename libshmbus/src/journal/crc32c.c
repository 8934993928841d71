/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRC32C: a byte-wise table, built once at first use (pthread_once), and,
 * on x86-64, the SSE4.2 crc32 instruction eight bytes at a time. The
 * choice between them is made once from cpuid and cached in an atomic int.
 */
#include "journal/crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;
/* -1: not checked; 0: table; 1: instruction. relaxed: a plain cached
 * fact, every thread computes the same value. */
static _Atomic int crc_hw = -1;

static void crc_table_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t sb_jr_crc32c_sw(uint32_t crc, const void *p, size_t len)
{
    const unsigned char *b = p;

    /* pthread_once orders the table's stores before every use of it */
    pthread_once(&crc_table_once, crc_table_build);
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = crc_table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t sb_jr_crc32c_hw(uint32_t crc, const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t c = ~crc;

    for (; len >= 8; len -= 8, b += 8) {
        uint64_t w;
        memcpy(&w, b, sizeof(w));
        c = __builtin_ia32_crc32di(c, w);
    }
    for (; len > 0; len--, b++)
        c = __builtin_ia32_crc32qi((uint32_t)c, *b);
    return ~(uint32_t)c;
}

int sb_jr_crc32c_hw_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}
#else
/* No instruction on this architecture: the table answers for it. */
uint32_t sb_jr_crc32c_hw(uint32_t crc, const void *p, size_t len)
{
    return sb_jr_crc32c_sw(crc, p, len);
}

int sb_jr_crc32c_hw_available(void)
{
    return 0;
}
#endif

uint32_t sb_jr_crc32c(uint32_t crc, const void *p, size_t len)
{
    /* relaxed: see crc_hw */
    int hw = atomic_load_explicit(&crc_hw, memory_order_relaxed);

    if (hw < 0) {
        hw = sb_jr_crc32c_hw_available();
        atomic_store_explicit(&crc_hw, hw, memory_order_relaxed);
    }
    return hw ? sb_jr_crc32c_hw(crc, p, len) : sb_jr_crc32c_sw(crc, p, len);
}
