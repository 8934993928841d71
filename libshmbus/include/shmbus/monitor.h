/* SPDX-License-Identifier: Apache-2.0 */
/*
 * monitor.h - monitoring API of libshmbus: what a bus holds and how it is
 * doing, for tools such as `shmbus stat`. Publishing and receiving never
 * need it (shmbus.h is that core).
 *
 * Seven views: the bus's use against its limits (shmbus_bus_stat()), the
 * topics a daemon lists (shmbus_list()), the subscriber
 * slots, the publisher records and the consumer groups of one topic read
 * from its segment (shmbus_topic_slots_get(), shmbus_topic_pubs_get(),
 * shmbus_topic_groups_get()), the daemon's TCP
 * bridge with its connections (shmbus_bridge_stat()), and its link to
 * NATS with its federated topics (shmbus_nats_stat()).
 * Every view is a racy snapshot: counters are read one by one while the
 * bus runs. The conventions of shmbus.h hold here too.
 */
#ifndef SHMBUS_MONITOR_H
#define SHMBUS_MONITOR_H

#include <stdint.h>

#include "shmbus/shmbus.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- topics */

/** One topic as the daemon lists it (shmbus_list()). */
typedef struct shmbus_topic_entry {
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    uint32_t mode;
    uint32_t flags; /**< enum shmbus_topic_flags */
    uint32_t capacity;
    uint32_t max_msg_size;
    uint32_t max_subscribers;
    uint32_t max_groups;
    uint32_t clients;     /**< connections that have the topic open */
    uint32_t publishers;  /**< publishers registered with the daemon */
    uint32_t subscribers; /**< subscriber slots the daemon handed out */
    uint32_t pad;
    uint64_t segment_size;
} shmbus_topic_entry;

/**
 * List the bus's topics in name order, starting after @p after.
 * @param after  "" or NULL for the first page, else the last name of the
 *               previous page.
 * @param out    caller-owned array of @p cap entries; every name in it is
 *               NUL-terminated.
 * @return number of entries stored (fewer than @p cap: the end was
 *         reached); SHMBUS_ERR_INVALID; SHMBUS_ERR_BAD_NAME when @p after
 *         is too long; SHMBUS_ERR_DAEMON_LOST, SHMBUS_ERR_TIMEOUT,
 *         SHMBUS_ERR_PROTOCOL (as shmbus_connect(), or a reply whose names
 *         do not each sort after @p after and the name before); -errno.
 * Thread-safe. Blocks for one round trip per 32 entries.
 */
SHMBUS_API int shmbus_list(shmbus_bus *bus, const char *after, shmbus_topic_entry *out,
                           unsigned cap);

/* ---------------------------------------------------------- subscribers */

/** The state of one subscriber slot, read from the segment (monitoring). */
typedef struct shmbus_slot_info {
    uint32_t index; /**< slot number */
    uint32_t pid;   /**< owner's pid (as seen by the process that created the sub) */
    uint32_t group; /**< 0 or the 1-based consumer group number */
    uint32_t flags; /**< enum shmbus_slot_flags */
    char group_name[SHMBUS_GROUP_NAME_MAX + 1]; /**< "" when unnamed or no group */
    uint64_t position; /**< next seq it reads (a member: its group's cursor) */
    uint64_t received;
    uint64_t lost;
    uint64_t lag; /**< published but not yet read */
} shmbus_slot_info;

/** State of a subscriber slot (shmbus_slot_info.flags). */
enum shmbus_slot_flags {
    SHMBUS_SLOT_OBSERVER = 1, /**< an observer (SHMBUS_SUB_OBSERVER): gates nothing */
    SHMBUS_SLOT_EVICTED = 2   /**< evicted for stalling publishers; gates nothing */
};

/**
 * Read the topic's busy subscriber slots (for monitoring): a racy snapshot.
 * @param out  caller-owned array of @p cap entries.
 * @return number of slots in use (may exceed @p cap; only @p cap are
 *         stored); SHMBUS_ERR_INVALID. Thread-safe; never blocks.
 */
SHMBUS_API int shmbus_topic_slots_get(const shmbus_topic *topic, shmbus_slot_info *out,
                                      unsigned cap);

/** One publisher record of a topic, read from the segment (monitoring). */
typedef struct shmbus_pub_info {
    uint32_t index; /**< record number */
    uint32_t pid;   /**< owner's pid (as seen by the process that created the publisher) */
    uint32_t dead;  /**< 1: its owner died and the daemon has not ended its claim yet */
    uint32_t pad;   /**< 0 */
} shmbus_pub_info;

/**
 * Read the topic's publisher records in use (for monitoring): a racy
 * snapshot. Every publisher (shmbus_pub_create()) holds one, so a
 * process's count of records is its count of publishers.
 * @param out  caller-owned array of @p cap entries.
 * @return number of records in use (may exceed @p cap; only @p cap are
 *         stored); SHMBUS_ERR_INVALID. Thread-safe; never blocks.
 */
SHMBUS_API int shmbus_topic_pubs_get(const shmbus_topic *topic, shmbus_pub_info *out, unsigned cap);

/** A bus's use of shared memory and connections against its daemon's limits. */
typedef struct shmbus_bus_info {
    uint64_t shm_bytes;   /**< the topics' segments together, bytes */
    uint64_t max_shm;     /**< the daemon's --max-shm */
    uint64_t max_segment; /**< the daemon's --max-segment */
    uint32_t topics;      /**< topics of clients (the daemon's own _shmbus. ones not counted) */
    uint32_t max_topics;  /**< the daemon's --max-topics */
    uint32_t clients;     /**< connections that said hello */
    uint32_t max_clients; /**< the daemon's --max-clients */
} shmbus_bus_info;

/**
 * Ask the daemon for the bus's use against its limits.
 * @param out  filled on success; caller-owned.
 * @return 0; SHMBUS_ERR_INVALID (NULL); SHMBUS_ERR_PROTOCOL (also from a
 *         daemon too old to know the request); the errors of a call to
 *         the daemon (SHMBUS_ERR_DAEMON_LOST, SHMBUS_ERR_TIMEOUT).
 *         Thread-safe. Blocks for one round trip.
 */
SHMBUS_API int shmbus_bus_stat(shmbus_bus *bus, shmbus_bus_info *out);

/* ---------------------------------------------------------------- groups */

/**
 * The numbers of one consumer group, each defined here once, in the order
 * of their fields in shmbus_group_info: X(kind, field, key, doc), as
 * SHMBUS_BRIDGE_TOTALS (kind COUNTER or GAUGE). shmbus_group_info and
 * `shmbus stat --json`'s keys are generated from this list; its text
 * view lays them out by hand, and the build fails until it shows one
 * added here (tools/cmd_stat.c). One added here changes the library's
 * ABI: the build asserts the size.
 */
#define SHMBUS_GROUP_COUNTERS(X)                                                                   \
    X(GAUGE, position, "position", "next seq the group hands out")                                 \
    X(GAUGE, lag, "lag", "messages published and not yet taken by the group")                      \
    X(COUNTER, lost, "lost", "messages the group lost: lapped in a lossy ring")                    \
    X(GAUGE, pending, "pending",                                                                   \
      "acknowledged groups: messages delivered and not yet acknowledged, waiting for "             \
      "redelivery, or on their way to the dead-letter topic; each holds publishers back")          \
    X(COUNTER, redelivered, "redelivered",                                                         \
      "messages delivered again: nacked, or returned by a member that died, was evicted or left")  \
    X(COUNTER, dead_lettered, "dead_lettered",                                                     \
      "messages moved to the dead-letter topic after max_deliveries, or stalled")                  \
    X(COUNTER, dead_letter_failed, "dead_letter_failed",                                           \
      "attempts to dead-letter a message that failed (the dead-letter topic full, too small or "   \
      "not to be opened): the message stayed pending, to be tried again")

/** For SHMBUS_GROUP_COUNTERS: the number as a uint64_t member. */
#define SHMBUS_GROUP_COUNTER_MEMBER(kind, field, key, doc) uint64_t field;

/** One consumer group of a topic, read from its segment (shmbus_topic_groups_get()). */
typedef struct shmbus_group_info {
    uint32_t index;          /**< the group's number, 1-based (shmbus_slot_info.group) */
    uint32_t members;        /**< members now */
    uint32_t max_deliveries; /**< deliveries before a message is dead-lettered;
                                  0: the group does not acknowledge (SHMBUS_SUB_ACK) */
    uint32_t pad;            /**< 0 */
    char name[SHMBUS_GROUP_NAME_MAX + 1];        /**< a valid group name, or "" (unnamed) */
    char dead_letter[SHMBUS_TOPIC_NAME_MAX + 1]; /**< its dead-letter topic, a valid
                                                      topic name; "" when it does not
                                                      acknowledge */
    SHMBUS_GROUP_COUNTERS(SHMBUS_GROUP_COUNTER_MEMBER)
    uint64_t reserved[4]; /**< 0: room for more without changing the size */
} shmbus_group_info;

/**
 * Read the topic's consumer groups in use (for monitoring): those with
 * members, a name, or pending messages, in number order. A racy snapshot,
 * like shmbus_topic_slots_get(); whatever the segment holds, every name
 * stored is NUL-terminated and valid (else ""), members is at most the
 * topic's max_subscribers, max_deliveries at most SHMBUS_MAX_DELIVERIES_MAX
 * and pending at most the group's table (128 entries).
 * @param out  caller-owned array of @p cap entries.
 * @return number of groups in use (may exceed @p cap; only @p cap are
 *         stored); SHMBUS_ERR_INVALID. Thread-safe; never blocks.
 */
SHMBUS_API int shmbus_topic_groups_get(const shmbus_topic *topic, shmbus_group_info *out,
                                       unsigned cap);

/* --------------------------------------------------------------- bridge */

/** Protocol of a TCP bridge connection (shmbus_bridge_conn.proto). */
enum shmbus_bridge_proto {
    SHMBUS_BRIDGE_PROTO_UNKNOWN = 0, /**< nothing received yet */
    SHMBUS_BRIDGE_PROTO_JSON = 1,    /**< JSON lines */
    SHMBUS_BRIDGE_PROTO_RESP = 2     /**< RESP2 (Redis pub/sub clients) */
};

/** State of a TCP bridge connection (shmbus_bridge_conn.flags). */
enum shmbus_bridge_conn_flags {
    SHMBUS_BRIDGE_AUTHED = 1, /**< authenticated, or the bridge asks for no token */
    SHMBUS_BRIDGE_PAUSED = 2  /**< its input waits: a publish into a full reliable topic */
};

/**
 * The totals of the daemon's TCP bridge, each defined here once, in the
 * order of their fields in shmbus_bridge_info: X(kind, field, key, doc),
 * where
 *  - kind is COUNTER (events since the daemon started: it never goes down)
 *    or GAUGE (a level now);
 *  - field is its uint64_t member of shmbus_bridge_info;
 *  - key is its name in `shmbus stat --json`;
 *  - doc says what it counts.
 * shmbus_bridge_info, the daemon's BRIDGE reply, the daemon's counters and
 * `shmbus stat --json` are generated from this list; `shmbus stat`'s text
 * view lays the totals out by hand, and the build fails until it shows a
 * total added here (tools/cmd_stat.c). A total added here changes the
 * library's ABI and the control protocol: the build asserts both sizes.
 */
#define SHMBUS_BRIDGE_TOTALS(X)                                                                    \
    X(GAUGE, connections, "open", "connections open now")                                          \
    X(COUNTER, accepted, "accepted", "connections accepted and served (not refused)")              \
    X(COUNTER, slow_closed, "slow_closed",                                                         \
      "connections closed because their output buffer was full")                                   \
    X(COUNTER, refused, "refused",                                                                 \
      "connections refused at accept: over shmbusd --bridge-max-conns, or a peer without a "       \
      "token the bus does not allow (counted once)")                                               \
    X(COUNTER, auth_failed, "auth_failed", "authentications with a wrong token")                   \
    X(COUNTER, auth_expired, "auth_expired", "connections closed for not authenticating in time")  \
    X(COUNTER, proto_errors, "proto_errors",                                                       \
      "connections closed for a protocol error or an oversized request")                           \
    X(COUNTER, msgs_in, "msgs_in", "messages remote clients published")                            \
    X(COUNTER, msgs_out, "msgs_out", "messages delivered to remote clients")                       \
    X(COUNTER, bad_cells, "bad_cells",                                                             \
      "damaged ring cells the bridge skipped: each one a message lost to the topic's remote "      \
      "subscribers")                                                                               \
    X(GAUGE, memory, "memory",                                                                     \
      "bytes its connections hold now: input, output, subscriptions (shmbusd "                     \
      "--bridge-max-memory)")                                                                      \
    X(COUNTER, evicted, "evicted",                                                                 \
      "connections closed for holding the most memory when --bridge-max-memory was reached")

/** For SHMBUS_BRIDGE_TOTALS: the total as a uint64_t member. */
#define SHMBUS_BRIDGE_TOTAL_MEMBER(kind, field, key, doc) uint64_t field;

/** Totals of the daemon's TCP bridge (shmbus_bridge_stat()): SHMBUS_BRIDGE_TOTALS. */
typedef struct shmbus_bridge_info {
    char listen[64]; /**< "ADDRESS:PORT" it listens on; "" when there is no bridge */
    SHMBUS_BRIDGE_TOTALS(SHMBUS_BRIDGE_TOTAL_MEMBER)
} shmbus_bridge_info;

/** One open connection of the daemon's TCP bridge (shmbus_bridge_stat()). */
typedef struct shmbus_bridge_conn {
    uint64_t id;       /**< the daemon's number for it: from 1, in order of accept */
    uint64_t age_ms;   /**< milliseconds since it was accepted */
    uint64_t buffered; /**< output bytes waiting for the client to read them */
    uint64_t msgs_in;  /**< messages it published */
    uint64_t msgs_out; /**< messages delivered to it */
    uint64_t memory;   /**< bytes it holds: input, output, subscriptions */
    uint32_t channels; /**< channels it subscribes to */
    uint32_t patterns; /**< patterns it subscribes to */
    uint32_t proto;    /**< enum shmbus_bridge_proto */
    uint32_t flags;    /**< enum shmbus_bridge_conn_flags */
    char peer[48];     /**< remote "ADDRESS:PORT" */
    char name[32];     /**< the name the client gave itself; "" if none. Any bytes */
    char subs[96];     /**< channels, and patterns as "p:PATTERN", comma separated;
                            ending in "..." when they do not all fit. Any bytes */
} shmbus_bridge_conn;

/**
 * Read the state of the daemon's TCP bridge (shmbusd --bridge): its totals,
 * and its open connections in id order, starting after @p after.
 * @param after  0 for the first page, else the id of the last connection of
 *               the previous page.
 * @param info   caller-owned; receives the totals as of the last round trip.
 *               info->listen is "" when the daemon runs no bridge: then
 *               every total is 0 and no connection is stored.
 * @param out    caller-owned array of @p cap entries; NULL when @p cap is 0
 *               (totals only).
 * @return number of connections stored (fewer than @p cap: the end was
 *         reached); SHMBUS_ERR_INVALID; SHMBUS_ERR_DAEMON_LOST,
 *         SHMBUS_ERR_TIMEOUT, SHMBUS_ERR_PROTOCOL (as shmbus_connect());
 *         -errno. Every string in @p info and @p out is NUL-terminated; the
 *         name and subs of a connection are whatever its client sent, so
 *         escape them before display. A racy snapshot: counters are read
 *         one by one, and connections open and close between pages.
 * Thread-safe. Blocks for one round trip per 24 connections (at least one).
 */
SHMBUS_API int shmbus_bridge_stat(shmbus_bus *bus, uint64_t after, shmbus_bridge_info *info,
                                  shmbus_bridge_conn *out, unsigned cap);

/* --------------------------------------------------------------- NATS */

/** State of the daemon's link to NATS (shmbus_nats_info.state). */
enum shmbus_nats_state {
    SHMBUS_NATS_OFF = 0,          /**< no --nats: the bus is not federated */
    SHMBUS_NATS_CONNECTING = 1,   /**< not connected yet since the daemon started */
    SHMBUS_NATS_CONNECTED = 2,    /**< connected to info.server */
    SHMBUS_NATS_RECONNECTING = 3, /**< lost its server; cnats is trying the others */
    SHMBUS_NATS_CLOSED = 4        /**< given up: the daemon logged why */
};

/** How a topic is federated (shmbus_nats_topic.flags). */
enum shmbus_nats_topic_flags {
    SHMBUS_NATS_EXPORT = 1, /**< its local messages go out to NATS */
    SHMBUS_NATS_IMPORT = 2, /**< other buses' messages come in from NATS */
    SHMBUS_NATS_PERSIST = 4 /**< through a JetStream stream (shmbusd --persist) */
};

/**
 * The counters of one federated topic, each defined here once, in the
 * order of their fields in shmbus_nats_topic: X(kind, field, key, doc), as
 * SHMBUS_BRIDGE_TOTALS. shmbus_nats_info carries their sums over every
 * federated topic under the same names. shmbus_nats_topic, the sums in
 * shmbus_nats_info, the daemon's NATS reply and `shmbus stat` (its text
 * columns, headed by the key in capitals, and --json) are generated from
 * this list. A counter added here changes the library's ABI and the
 * control protocol: the build asserts both sizes.
 */
#define SHMBUS_NATS_TOPIC_COUNTERS(X)                                                              \
    X(COUNTER, msgs_out, "out",                                                                    \
      "local messages sent to NATS (persisted: acknowledged by JetStream)")                        \
    X(COUNTER, msgs_in, "in", "messages from other buses written into the local ring")             \
    X(COUNTER, lost_out, "lost_out",                                                               \
      "local messages that did not go out: overtaken in a lossy ring before the exporter read "    \
      "them, larger than the server's max_payload, or refused by the server")                      \
    X(COUNTER, lost_in, "lost_in",                                                                 \
      "messages from other buses that did not come in: gaps in an origin's sequence, drops of a "  \
      "slow import, larger than the local topic takes")                                            \
    X(COUNTER, dups, "dups", "messages from other buses dropped as already written (redelivered)") \
    X(GAUGE, pending, "pending",                                                                   \
      "persisted: local messages sent and not yet acknowledged by JetStream")

/** For SHMBUS_NATS_TOPIC_COUNTERS: the counter as a uint64_t member. */
#define SHMBUS_NATS_COUNTER_MEMBER(kind, field, key, doc) uint64_t field;

/** The daemon's link to NATS (shmbus_nats_stat()). */
typedef struct shmbus_nats_info {
    char server[128];    /**< URL of the server it is connected to; "" when not connected */
    char origin[64];     /**< this bus's name in NATS headers (shmbusd --nats-origin);
                              "" when the daemon does not federate, as prefix */
    char prefix[64];     /**< subjects are PREFIX.TOPIC (shmbusd --nats-prefix) */
    uint32_t state;      /**< enum shmbus_nats_state */
    uint32_t topics;     /**< federated topics the daemon serves now */
    uint64_t reconnects; /**< connections to a server again after losing one */
    uint64_t refused;    /**< topics and subjects refused: a name that cannot be a NATS
                              subject, or a subject that is no topic name */
    uint64_t errors;     /**< errors the server or cnats reported (each one logged) */
    SHMBUS_NATS_TOPIC_COUNTERS(SHMBUS_NATS_COUNTER_MEMBER) /**< sums over the topics */
} shmbus_nats_info;

/** One federated topic (shmbus_nats_stat()). */
typedef struct shmbus_nats_topic {
    uint64_t id; /**< the daemon's number for it: from 1, in order of federation */
    char name[SHMBUS_TOPIC_NAME_MAX + 1]; /**< a valid topic name */
    uint32_t flags; /**< enum shmbus_nats_topic_flags: EXPORT or IMPORT, or both */
    uint32_t pad;   /**< 0 */
    SHMBUS_NATS_TOPIC_COUNTERS(SHMBUS_NATS_COUNTER_MEMBER)
} shmbus_nats_topic;

/**
 * Read the state of the daemon's link to NATS (shmbusd --nats): the link
 * and the sums of its topics' counters, and the federated topics in id
 * order, starting after @p after.
 * @param after  0 for the first page, else the id of the last topic of the
 *               previous page.
 * @param info   caller-owned; receives the link as of the last round trip.
 *               info->state is SHMBUS_NATS_OFF when the daemon does not
 *               federate: then its strings are "", every number is 0 and
 *               no topic is stored.
 * @param out    caller-owned array of @p cap entries; NULL when @p cap is 0
 *               (the link only).
 * @return number of topics stored (fewer than @p cap: the end was
 *         reached); SHMBUS_ERR_INVALID; SHMBUS_ERR_DAEMON_LOST,
 *         SHMBUS_ERR_TIMEOUT, SHMBUS_ERR_PROTOCOL (as shmbus_connect(); a
 *         reply with a state or topic flag this library does not know, a
 *         name that is no topic name, or ids that do not each exceed
 *         @p after and the one before; or a daemon older than this call,
 *         which does not know the request); -errno. Every string in
 *         @p info and @p out is NUL-terminated; info->server is the URL as
 *         the daemon reports it (cut to 127 bytes), so escape it before
 *         display. A racy snapshot: counters are read one by one, and
 *         topics come and go between pages.
 * Thread-safe. Blocks for one round trip per 32 topics (at least one).
 */
SHMBUS_API int shmbus_nats_stat(shmbus_bus *bus, uint64_t after, shmbus_nats_info *info,
                                shmbus_nats_topic *out, unsigned cap);

#ifdef __cplusplus
}
#endif
#endif /* SHMBUS_MONITOR_H */
