/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * every journal record and index entry. sb_jr_crc32c() takes the SSE4.2
 * instruction when the CPU has it (checked once, at run time) and a
 * table otherwise; both give the same value. Pure functions; the one-time
 * choice of path is thread-safe.
 */
#ifndef SHMBUS_JOURNAL_CRC32C_H
#define SHMBUS_JOURNAL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C of @p len bytes at @p p, continuing from @p crc (0 to start):
 * sb_jr_crc32c(sb_jr_crc32c(0, a, n), b, m) is the CRC of a then b. */
uint32_t sb_jr_crc32c(uint32_t crc, const void *p, size_t len);

/* The table path and the instruction path, for the known-answer tests.
 * sb_jr_crc32c_hw() must be called only when sb_jr_crc32c_hw_available(). */
uint32_t sb_jr_crc32c_sw(uint32_t crc, const void *p, size_t len);
uint32_t sb_jr_crc32c_hw(uint32_t crc, const void *p, size_t len);
int sb_jr_crc32c_hw_available(void);

#endif
