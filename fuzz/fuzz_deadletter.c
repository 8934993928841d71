/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the dead-letter envelope's reader,
 * shmbus_dead_letter_parse() (libshmbus/src/registry/deadletter.c): any
 * bytes, as a dead-letter topic anyone may publish into can carry. It
 * must end without reading outside the input; what it accepts must carry
 * valid names, a payload inside the input that ends where the input ends,
 * and build back (sb_dl_header_put()) into the same bytes when its header
 * has no room for later fields; what it refuses leaves the output zeroed.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "registry/deadletter.h"
#include "util/name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The parse of @p data builds back into its header. */
static void check_rebuild(const uint8_t *data, const shmbus_dead_letter *d)
{
    uint8_t back[SB_DL_ROOM];
    struct sb_dl_meta m = {.topic = d->topic,
                           .group = d->group,
                           .seq = d->seq,
                           .timestamp_ns = d->timestamp_ns,
                           .dead_ns = d->dead_ns,
                           .publisher_pid = d->publisher_pid,
                           .deliveries = d->deliveries,
                           .reason = d->reason};
    size_t hl = (size_t)((const uint8_t *)d->data - data);
    int n = sb_dl_header_put(back, sizeof(back), &m);

    CHECK(n > 0 && (size_t)n == SB_DL_FIXED + strlen(d->topic) + strlen(d->group) &&
          (size_t)n <= hl);
    if ((size_t)n == hl)
        CHECK(memcmp(back, data, hl) == 0);
    else /* only the header length differs: room a later builder may use */
        CHECK(memcmp(back + 8, data + 8, (size_t)n - 8) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    shmbus_dead_letter d, zero;
    int rc;

    memset(&d, 0xa5, sizeof(d));
    memset(&zero, 0, sizeof(zero));
    rc = shmbus_dead_letter_parse(data, size, &d);
    if (rc < 0) {
        CHECK(rc == SHMBUS_ERR_CORRUPT);
        CHECK(memcmp(&d, &zero, sizeof(d)) == 0);
        return 0;
    }
    CHECK(rc == 0);
    CHECK(sb_name_valid(d.topic, SHMBUS_TOPIC_NAME_MAX));
    CHECK(sb_name_valid(d.group, SHMBUS_GROUP_NAME_MAX));
    CHECK((const uint8_t *)d.data >= data + SB_DL_FIXED);
    CHECK((const uint8_t *)d.data + d.len == data + size);
    check_rebuild(data, &d);
    return 0;
}
