/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one assertion of the libFuzzer targets (fuzz/fuzz_*.c): CHECK(cond)
 * aborts with the file, line and condition, so that libFuzzer reports the
 * broken guarantee and keeps the input. Unlike assert(), NDEBUG never
 * turns it off.
 */
#ifndef SHMBUS_FUZZ_CHECK_H
#define SHMBUS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
