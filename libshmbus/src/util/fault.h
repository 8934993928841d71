/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fault injection for tests: SB_FAULT_POINT("name") stops the process
 * (SIGSTOP) when it is built with SHMBUS_FAULT_INJECTION and the
 * environment variable SHMBUS_FAULT equals "name", so that a test can kill
 * it at exactly that point. Other builds compile it to nothing: the library
 * that applications link has no such hook.
 */
#ifndef SHMBUS_UTIL_FAULT_H
#define SHMBUS_UTIL_FAULT_H

#ifdef SHMBUS_FAULT_INJECTION
/* Stop here if SHMBUS_FAULT names @p point. */
void sb_fault_point(const char *point);
#define SB_FAULT_POINT(point) sb_fault_point(point)
#else
#define SB_FAULT_POINT(point) ((void)0)
#endif

#endif
