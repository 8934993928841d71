/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the time parser of the tool's --from-time options,
 * sb_time_parse() (libshmbus/src/util/timefmt.h): any bytes, as a user
 * may type them. It must end without reading past the string's end; what
 * it accepts as RFC 3339 must format (sb_time_format()) into a string
 * that parses back to the same nanoseconds; what it refuses leaves the
 * output untouched.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "util/timefmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), buf[SB_TIME_STR_LEN];
    uint64_t ns = 0x5a5a5a5a5a5a5a5aull, back;

    /* A string of exactly the input: ASan sees any read past its NUL. */
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (sb_time_parse(s, &ns) != 0) {
        CHECK(ns == 0x5a5a5a5a5a5a5a5aull);
        free(s);
        return 0;
    }
    sb_time_format(ns, buf);
    CHECK(strlen(buf) == SB_TIME_STR_LEN - 1);
    CHECK(sb_time_parse(buf, &back) == 0 && back == ns);
    free(s);
    return 0;
}
