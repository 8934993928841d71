/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Redis's glob matcher, for the TCP bridge's pattern subscriptions and
 * federation's topic patterns (--federate and its kin): a pure function
 * over byte buffers, which libFuzzer drives directly (fuzz/fuzz_resp.c).
 * Here rather than in either subsystem's folder, whose headers only
 * their own files may include.
 */
#ifndef SHMBUSD_GLOB_H
#define SHMBUSD_GLOB_H

#include <stddef.h>
#include <stdint.h>

/* Redis's glob: * ? [abc] [^a-z] and \ escapes. @return 1 on a match. */
int sbd_glob_match(const char *pat, size_t patl, const char *s, size_t len);
/* sbd_glob_match(), adding to *@p steps the work it did: one a character
 * compared, one a byte of a [class] scanned. A star restarts at most
 * @p len times from its place, so a match costs at most
 * (@p patl + 1) * (@p len + 1) steps. */
int sbd_glob_steps(const char *pat, size_t patl, const char *s, size_t len, uint64_t *steps);

#endif
