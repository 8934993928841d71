/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dead-letter envelope: the bytes of a message the daemon moves to an
 * acknowledged group's dead-letter topic, the original message wrapped
 * with what says where it came from and why it died. shmbusd builds it
 * (sb_dl_header_put(), then the original payload after the header);
 * anyone reads it with the public shmbus_dead_letter_parse(), which trusts
 * nothing. docs/protocol.md "Dead letters" is the reference. Host byte
 * order, like everything on one host; fields unaligned (read by memcpy).
 *
 *   off  size
 *     0     4  magic SB_DL_MAGIC ("SBDL")
 *     4     2  version SB_DL_VERSION
 *     6     2  header length: bytes before the payload
 *     8     8  seq in the original topic
 *    16     8  timestamp_ns: its publish time (CLOCK_REALTIME)
 *    24     8  dead_ns: when the daemon dead-lettered it (CLOCK_REALTIME)
 *    32     4  publisher_pid
 *    36     4  deliveries
 *    40     4  reason (enum shmbus_dead_letter_reason)
 *    44     2  topic length (1..SHMBUS_TOPIC_NAME_MAX)
 *    46     2  group length (1..SHMBUS_GROUP_NAME_MAX)
 *    48        topic bytes, then group bytes (no NUL)
 *   header length .. end: the payload
 * A reader skips any bytes between the group name and the header length
 * (room for fields a later builder adds without a new version).
 */
#ifndef SHMBUS_REGISTRY_DEADLETTER_H
#define SHMBUS_REGISTRY_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

#include "shmbus/shmbus.h"

#define SB_DL_MAGIC   0x4c444253u /* "SBDL" in memory on a little-endian host */
#define SB_DL_VERSION 1u
/* The fixed part of the header, before the names. */
#define SB_DL_FIXED 48u
/* The longest header: the fixed part and the longest names. A dead-letter
 * topic's max_msg_size is the original's plus this. */
#define SB_DL_ROOM (SB_DL_FIXED + SHMBUS_TOPIC_NAME_MAX + SHMBUS_GROUP_NAME_MAX)

/* What the envelope says of a dead message. Names NUL-terminated, valid
 * (util/name.h), borrowed for the call. */
struct sb_dl_meta {
    const char *topic;
    const char *group;
    uint64_t seq;
    uint64_t timestamp_ns;
    uint64_t dead_ns;
    uint32_t publisher_pid;
    uint32_t deliveries;
    uint32_t reason;
};

/*
 * Write @p m's envelope header into @p buf (@p cap bytes, unaligned); the
 * payload goes right after it. @return the header length (>0), or
 * SHMBUS_ERR_TOO_BIG when it does not fit @p cap, or SHMBUS_ERR_BAD_NAME
 * for a name out of the rules. Pure.
 */
int sb_dl_header_put(void *buf, size_t cap, const struct sb_dl_meta *m);

#endif
