/* SPDX-License-Identifier: Apache-2.0 */
/* shmbus_strerror(): names for the library's codes and for -errno. */
#include <string.h>

#include "shmbus/shmbus.h"

static const char *const lib_errors[] = {
    [0] = "invalid argument",
    [1] = "not a shmbus segment or journal file (bad magic)",
    [2] = "segment layout or journal format version not supported",
    [3] = "segment truncated: a length exceeds the mapping",
    [4] = "segment not ready: its creator has not finished it",
    [5] = "corrupt: an impossible record or cursor in the ring, or a damaged journal record",
    [6] = "message larger than the topic's maximum size",
    [7] = "no free subscriber slot",
    [8] = "timed out",
    [9] = "not enough space in /dev/shm for the segment",
    [10] = "overrun: a newer message took the cell (message dropped)",
    [11] = "wait set full",
    [12] = "no daemon serves this bus (is shmbusd running?)",
    [13] = "malformed control message",
    [14] = "client and daemon speak different protocol versions",
    [15] = "refused by the daemon (uid, gid or pid check)",
    [16] = "a daemon limit was reached",
    [17] = "the topic exists with other options",
    [18] = "bad name: see the allowed characters and length",
    [19] = "the connection to the daemon was lost",
    [20] = "evicted: the subscriber held publishers back past the topic's stall timeout",
    [21] = "the topic was removed from the bus",
    [22] = "the daemon's uid is not one this client trusts",
    [23] = "out of range: the sequence or time is outside what the ring and journal hold",
    [24] = "busy: the topic is in use",
};

const char *shmbus_strerror(int err)
{
    if (err >= 0)
        return "success";
    if (err <= SHMBUS_ERR_INVALID &&
        err > SHMBUS_ERR_INVALID - (int)(sizeof(lib_errors) / sizeof(lib_errors[0])))
        return lib_errors[SHMBUS_ERR_INVALID - err];
    if (err > SHMBUS_ERR_INVALID) {
        /* strerrordesc_np returns static text and never a shared buffer. */
        const char *d = strerrordesc_np(-err);
        return d != NULL ? d : "unknown system error";
    }
    return "unknown shmbus error";
}
