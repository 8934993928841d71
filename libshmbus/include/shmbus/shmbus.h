/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbus.h - public API of libshmbus, a publish/subscribe bus over POSIX
 * shared memory for processes on one Linux host.
 *
 * A topic is one shared-memory segment holding a ring of fixed-size cells.
 * Publishers (any number of threads and processes) write into the ring
 * directly; subscribers read it directly and sleep on a shared futex when
 * there is nothing to read. See docs/design.md for the layout and protocols.
 *
 * Conventions:
 *  - Functions return int: >= 0 is success (sometimes a count), < 0 an error:
 *    either -errno (an OS error passed through) or an SHMBUS_ERR_* code.
 *    shmbus_strerror() names both. Nothing reports through errno.
 *  - Back-pressure is a status, not an error: -EAGAIN.
 *  - Timeouts are in nanoseconds: 0 = do not wait, negative = wait forever.
 *  - x_create(..., x **out) sets *out = NULL first; x_destroy(NULL) is a
 *    no-op. A handle is owned by its creator until destroyed.
 *
 * Monitoring (the topics a daemon lists, a topic's subscriber slots, the
 * daemon's TCP bridge) has its own header, shmbus/monitor.h.
 */
#ifndef SHMBUS_SHMBUS_H
#define SHMBUS_SHMBUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "shmbus/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SHMBUS_API __attribute__((visibility("default")))
#else
#define SHMBUS_API
#endif

/** Library errors; OS errors are returned as -errno and stay above -1000. */
enum shmbus_error {
    SHMBUS_ERR_INVALID = -1000,       /**< an argument is out of range or malformed */
    SHMBUS_ERR_BAD_MAGIC = -1001,     /**< the segment is not a shmbus topic (or the
                                           file not a journal file, journal.h) */
    SHMBUS_ERR_VERSION = -1002,       /**< the segment's layout version (or the journal
                                           file's format version) is not ours */
    SHMBUS_ERR_TRUNCATED = -1003,     /**< a length in the segment exceeds the mapping */
    SHMBUS_ERR_NOT_READY = -1004,     /**< the creator has not finished the segment */
    SHMBUS_ERR_CORRUPT = -1005,       /**< a record or cursor in the ring is impossible,
                                           or a journal record is damaged (journal.h) */
    SHMBUS_ERR_TOO_BIG = -1006,       /**< message longer than the topic's maximum */
    SHMBUS_ERR_NO_SLOT = -1007,       /**< every subscriber slot of the topic is taken */
    SHMBUS_ERR_TIMEOUT = -1008,       /**< the wait ended with nothing to report */
    SHMBUS_ERR_NO_SPACE = -1009,      /**< /dev/shm cannot hold the segment */
    SHMBUS_ERR_OVERRUN = -1010,       /**< the message was dropped: a newer one took the
                                           cell first, or its claim was ended */
    SHMBUS_ERR_WAITSET_FULL = -1011,  /**< the wait set holds its maximum */
    SHMBUS_ERR_NO_DAEMON = -1012,     /**< no daemon serves this bus (no socket, or refused) */
    SHMBUS_ERR_PROTOCOL = -1013,      /**< a control message was malformed */
    SHMBUS_ERR_PROTO_VERSION = -1014, /**< client and daemon speak different protocol versions */
    SHMBUS_ERR_DENIED = -1015,        /**< the daemon refused this peer (uid, gid or pid check) */
    SHMBUS_ERR_LIMIT = -1016,         /**< a daemon limit was reached (see shmbusd --help) */
    SHMBUS_ERR_MISMATCH = -1017,      /**< the topic exists with other options */
    SHMBUS_ERR_BAD_NAME = -1018,      /**< a bus, topic or group name is malformed */
    SHMBUS_ERR_DAEMON_LOST = -1019,   /**< the connection to the daemon was lost */
    SHMBUS_ERR_EVICTED = -1020,       /**< the subscriber stalled publishers past the topic's
                                           stall timeout and was evicted */
    SHMBUS_ERR_TOPIC_GONE = -1021,    /**< the topic was removed: no daemon serves it any more */
    SHMBUS_ERR_UNTRUSTED = -1022,     /**< this client does not trust the daemon's uid (it may
                                           have planted the socket) */
    SHMBUS_ERR_RANGE = -1023,         /**< a sequence or time outside what the ring and
                                           the journal hold */
    SHMBUS_ERR_BUSY = -1024           /**< the topic is in use: a live process holds it
                                           (shmbus_topic_remove() without FORCE) */
};

/** Delivery mode of a topic, fixed when it is created. */
enum shmbus_mode {
    /** Publishers never wait; slow subscribers lose messages and are told how many. */
    SHMBUS_LOSSY = 1,
    /** Publishers never overwrite what an attached subscriber or group has not consumed. */
    SHMBUS_RELIABLE = 2
};

/** Topic flags, fixed when it is created. */
enum shmbus_topic_flags {
    /**
     * One publisher at a time (the one that holds the topic's publisher
     * token, see shmbus_pub_create()). Its publishes need no atomic
     * read-modify-write: markedly lower latency and higher throughput
     * (docs/benchmarks.md). Most feeds have one writer per topic.
     */
    SHMBUS_TOPIC_EXCLUSIVE = 1
};

/** Where a new subscriber starts reading. */
enum shmbus_start {
    SHMBUS_START_NEXT = 0,   /**< the next message published after it attaches */
    SHMBUS_START_OLDEST = 1, /**< lossy: the oldest message the ring still holds;
                                  reliable: the oldest one still held for another
                                  subscriber or group (none held: as NEXT) */
    SHMBUS_START_SEQ = 2,    /**< the message of seq shmbus_sub_opts.start_seq: from the
                                  ring if it still holds it, else from the topic's journal
                                  when the daemon records it (then on into the ring, with
                                  no gap and no duplicate); SHMBUS_ERR_RANGE otherwise */
    SHMBUS_START_TIME = 3    /**< as SHMBUS_START_SEQ, from the first message published
                                  at or after shmbus_sub_opts.start_time_ns */
};

/** Maximum number of subscriptions in one wait set. */
#define SHMBUS_WAITSET_MAX 64
/** Maximum length of a segment name, without the terminating NUL. */
#define SHMBUS_NAME_MAX 200
/** Longest bus name: [A-Za-z0-9_-]. */
#define SHMBUS_BUS_NAME_MAX 32
/** Runtime directory of buses without $SHMBUS_RUNTIME_DIR or $XDG_RUNTIME_DIR. */
#define SHMBUS_RUNTIME_DIR_SYSTEM "/run/shmbus"
/** Longest topic name: [A-Za-z0-9_.:-], not starting with '.'. */
#define SHMBUS_TOPIC_NAME_MAX 128
/** Longest consumer group name: [A-Za-z0-9_.:-], not starting with '.'. */
#define SHMBUS_GROUP_NAME_MAX 63
/** Bus used when neither an argument nor $SHMBUS_BUS names one. */
#define SHMBUS_BUS_DEFAULT "default"
/** Version of the control protocol between clients and shmbusd (docs/protocol.md). */
#define SHMBUS_PROTOCOL_VERSION 5
/** Most messages an acknowledging member holds pending (shmbus_sub_opts.max_inflight). */
#define SHMBUS_INFLIGHT_MAX 64
/** Deliveries of a message before it is dead-lettered, unless the group says otherwise. */
#define SHMBUS_MAX_DELIVERIES_DEFAULT 5
/** Most deliveries a group may allow (shmbus_sub_opts.max_deliveries). */
#define SHMBUS_MAX_DELIVERIES_MAX 1000
/** Default subscriber spin before sleeping, in nanoseconds (adaptive wait). */
#define SHMBUS_SPIN_DEFAULT_NS 50000
/** Range of a lazy subscriber's wake bound (shmbus_sub_opts.wake_bound_ns), in nanoseconds. */
#define SHMBUS_WAKE_BOUND_MIN_NS 1000ull
#define SHMBUS_WAKE_BOUND_MAX_NS 60000000000ull

typedef struct shmbus_bus shmbus_bus;
typedef struct shmbus_topic shmbus_topic;
typedef struct shmbus_pub shmbus_pub;
typedef struct shmbus_sub shmbus_sub;
typedef struct shmbus_waitset shmbus_waitset;

/** Options for creating a topic. Zero fields take the documented default. */
typedef struct shmbus_topic_opts {
    uint32_t mode;             /**< SHMBUS_LOSSY or SHMBUS_RELIABLE (default lossy) */
    uint32_t capacity;         /**< cells, a power of two, 2..2^24 (0: 1024) */
    uint32_t max_msg_size;     /**< largest payload in bytes, 1..16 MiB (0: 1024) */
    uint32_t max_subscribers;  /**< subscriber slots, 1..1024 (0: 64) */
    uint32_t max_groups;       /**< consumer groups, 1..256 (0: 16) */
    uint32_t perm;             /**< file mode of the segment, at most 0777 (0: 0600) */
    uint32_t flags;            /**< enum shmbus_topic_flags (0: none) */
    uint32_t max_publishers;   /**< publishers at once, 1..1024 (0: 64) */
    uint32_t stall_timeout_ms; /**< topics on a bus (the daemon enforces it): in a
                                    reliable topic a subscriber that holds publishers
                                    back this long is evicted; in any topic but an
                                    exclusive one a claim left open this long is ended
                                    (0: never, the default) */
    uint32_t reserved[7];      /**< 0: room for options to come (non-zero is
                                    SHMBUS_ERR_INVALID) */
} shmbus_topic_opts;

/** A topic's fixed parameters, as read from its segment at attach time. */
typedef struct shmbus_topic_info {
    uint32_t mode;
    uint32_t flags; /**< enum shmbus_topic_flags */
    uint32_t capacity;
    uint32_t max_msg_size;
    uint32_t max_subscribers;
    uint32_t max_groups;
    uint32_t max_publishers;
    uint32_t stall_timeout_ms; /**< as created (shmbus_topic_opts); 0 never */
    uint64_t segment_size;     /**< bytes mapped */
    uint64_t published;        /**< messages claimed so far (the tail) */
    uint64_t overruns;         /**< lossy: messages a newer publisher overtook */
    uint64_t skipped;          /**< claims aborted or abandoned (seen by readers as lost) */
    uint64_t unblocked;        /**< claims the daemon ended (in skipped too): of dead
                                    publishers, or held past the stall timeout */
    uint64_t reaped;    /**< subscriber slots and publisher records of dead processes freed */
    uint64_t evicted;   /**< subscribers evicted for stalling publishers (stall timeout) */
    uint64_t abandoned; /**< group messages whose member died or was evicted before
                             its callback returned: lost to the group, counted here */
} shmbus_topic_info;

/** A message handed to a poll callback or filled in by shmbus_recv(). */
typedef struct shmbus_msg {
    const void *data;       /**< payload; valid only during the callback (poll) */
    uint32_t len;           /**< payload length in bytes */
    uint32_t publisher_pid; /**< pid of the publishing process */
    uint64_t seq;           /**< per-topic sequence number, from 0, gap = loss */
    uint64_t timestamp_ns;  /**< CLOCK_REALTIME ns when shmbus_publish() was called (before
                                any wait for space), or at shmbus_pub_commit() */
    uint64_t lost;          /**< messages lost immediately before this one */
    uint32_t flags;         /**< enum shmbus_msg_flags */
    uint32_t deliveries;    /**< SHMBUS_SUB_ACK: times this message was delivered to its
                                 group, this delivery included (1 the first time); else 0 */
    uint64_t origin_seq;    /**< SHMBUS_MSG_IMPORTED: its seq on the bus it was published
                                 on; else 0 */
    uint64_t reserved[2];   /**< 0 */
} shmbus_msg;

/**
 * Flags of a message (shmbus_msg.flags). Reserved fields of shmbus_msg are
 * room for fields to come: the library always sets them to 0.
 */
enum shmbus_msg_flags {
    /** Came from another bus through the daemon's NATS federation:
     * timestamp_ns and publisher_pid are the origin's (its publish time,
     * CLOCK_REALTIME on its host, and its publisher's pid there), and
     * origin_seq is its seq on that bus; seq is its seq on this one. */
    SHMBUS_MSG_IMPORTED = 1
};

/** Options for a subscriber. Zero-initialised options are valid. */
typedef struct shmbus_sub_opts {
    uint32_t start;          /**< enum shmbus_start */
    uint32_t group;          /**< topics from shmbus_topic_create/attach: 0 none, 1..max_groups
                                  join that consumer group by number; must be 0 on a bus topic */
    int64_t spin_ns;         /**< spin before sleeping: 0 = default, < 0 = never spin
                                  (sleep at once), INT64_MAX = spin, never sleep */
    const char *group_name;  /**< topics from shmbus_open(): NULL none, else join the
                                  consumer group of that name (the daemon numbers it);
                                  borrowed for the call only */
    uint32_t flags;          /**< enum shmbus_sub_flags (0: none) */
    uint32_t max_inflight;   /**< SHMBUS_SUB_ACK: messages this member holds pending at
                                  most, 1..SHMBUS_INFLIGHT_MAX (0: 1); else must be 0 */
    uint32_t max_deliveries; /**< SHMBUS_SUB_ACK: the group's deliveries of a message
                                  before it is dead-lettered, 1..SHMBUS_MAX_DELIVERIES_MAX
                                  (0: what the group has, else
                                  SHMBUS_MAX_DELIVERIES_DEFAULT); else must be 0 */
    uint32_t reserved0;      /**< 0 */
    const char *dead_letter; /**< SHMBUS_SUB_ACK: the group's dead-letter topic (NULL:
                                  what the group has, else "<topic>.dlq"); borrowed for
                                  the call only; else must be NULL */
    uint64_t start_seq;      /**< SHMBUS_START_SEQ: the first seq to deliver; else 0 */
    uint64_t start_time_ns;  /**< SHMBUS_START_TIME: CLOCK_REALTIME ns; else 0 */
    uint64_t wake_bound_ns;  /**< 0: a sleeping subscriber is woken by publishers; > 0:
                                  lazy: publishers never wake it, it sleeps at most this
                                  long and then looks (recorders, loggers, monitors);
                                  SHMBUS_WAKE_BOUND_MIN_NS..SHMBUS_WAKE_BOUND_MAX_NS.
                                  A wait set holding a lazy and a non-lazy subscriber
                                  is woken by publishers of the non-lazy ones only,
                                  and looks at the lazy ones within their bound */
    uint64_t reserved[1];    /**< 0: room for options to come (non-zero is
                                  SHMBUS_ERR_INVALID, so a caller built against a later
                                  header is told rather than ignored) */
} shmbus_sub_opts;

/** Flags of a subscriber (shmbus_sub_opts.flags). */
enum shmbus_sub_flags {
    /** Never hold reliable publishers back: read a reliable topic as a lossy
     *  subscriber reads (copies checked, losses counted). For monitors and
     *  pipes into slow consumers. Not with a group. */
    SHMBUS_SUB_OBSERVER = 1,
    /**
     * An acknowledging member of a consumer group (a work queue), on a
     * reliable topic from shmbus_open() only: each message delivered to it
     * stays pending, gating publishers, until shmbus_ack(); shmbus_nack(),
     * the member's death or its eviction give it back to the group, which
     * redelivers it ahead of new messages; after the group's
     * max_deliveries deliveries the daemon moves it to the group's
     * dead-letter topic (shmbus_dead_letter_parse()). All members of a
     * group acknowledge, or none does: the first member decides, for the
     * group's life (SHMBUS_ERR_MISMATCH otherwise).
     */
    SHMBUS_SUB_ACK = 2
};

/** Why a message went to a dead-letter topic (shmbus_dead_letter.reason): how it
 * came back to its group the last time. */
enum shmbus_dead_letter_reason {
    SHMBUS_DL_NACKED = 1,  /**< its last member nacked it (shmbus_nack()) */
    SHMBUS_DL_DIED = 2,    /**< its last member died holding it */
    SHMBUS_DL_EVICTED = 3, /**< its last member was evicted holding it (stall timeout) */
    SHMBUS_DL_STALLED = 4, /**< it waited for redelivery while holding publishers back
                                past the topic's stall timeout */
    SHMBUS_DL_LEFT = 5     /**< its last member destroyed its subscriber holding it */
};

/** Flags of shmbus_open(). */
enum shmbus_open_flags {
    /** Fail with -ENOENT instead of creating a missing topic. */
    SHMBUS_OPEN_NOCREATE = 1
};

/** Counters of one subscriber. */
typedef struct shmbus_sub_stats {
    uint64_t received; /**< messages delivered to this subscriber */
    uint64_t lost;     /**< messages lost so far, including any not yet reported in
                            a delivered message's lost field */
    uint64_t lag;      /**< messages published but not yet read (its group's, for a member;
                            for a subscriber the daemon holds for a relay, not yet released:
                            counted from the position publishers wait for) */
    uint64_t position; /**< next sequence number it will read */
} shmbus_sub_stats;

/** A zero-copy claim on one cell. Caller-owned storage; fields are read-only. */
typedef struct shmbus_claim {
    void *data;        /**< write up to capacity bytes here before commit */
    uint32_t capacity; /**< the topic's max_msg_size */

    uint64_t seq; /**< sequence number the message will carry */
} shmbus_claim;

/**
 * Callback of shmbus_poll(). @p msg and its data are valid only until it
 * returns. Return 0 to go on, non-zero to stop the poll after this message
 * (the message counts as consumed either way).
 */
typedef int (*shmbus_msg_fn)(const shmbus_msg *msg, void *arg);

/**
 * Name of an error code: an SHMBUS_ERR_* code or -errno.
 * @return a static string; never NULL. Thread-safe.
 */
SHMBUS_API const char *shmbus_strerror(int err);

/**
 * Version of the library a program runs with, "major.minor.patch", as
 * opposed to SHMBUS_VERSION_STRING, that of the headers it was built with
 * (shmbus/version.h). @return a static string; never NULL. Thread-safe.
 */
SHMBUS_API const char *shmbus_version(void);

/** The same as one integer, major * 10000 + minor * 100 + patch, to compare
 *  with SHMBUS_VERSION. Thread-safe. */
SHMBUS_API int shmbus_version_number(void);

/* --------------------------------------------------------------------- bus */

/**
 * Resolve a bus name: @p name if not NULL, else $SHMBUS_BUS if set and not
 * empty, else SHMBUS_BUS_DEFAULT; and its control socket path: $SHMBUS_SOCKET
 * if set and not empty (an absolute path), else DIR/NAME.sock in the bus's
 * runtime directory DIR: $SHMBUS_RUNTIME_DIR if set and not empty, else
 * $XDG_RUNTIME_DIR/shmbus, else SHMBUS_RUNTIME_DIR_SYSTEM (in a setuid or
 * setgid process, which ignores these variables: secure_getenv()). The
 * daemon (shmbusd) resolves the same path the same way (its --socket comes
 * first), and keeps its lock beside the socket (NAME.lock).
 * @param name_out  receives the name (SHMBUS_BUS_NAME_MAX + 1 bytes), or NULL.
 * @param path_out  receives the socket path, or NULL.
 * @param path_cap  size of @p path_out.
 * @return 0; SHMBUS_ERR_BAD_NAME; SHMBUS_ERR_INVALID if $SHMBUS_SOCKET is
 *         not an absolute path to a file; -ENAMETOOLONG if the path does not
 *         fit (sockaddr_un holds 107 bytes). Thread-safe if the environment is
 *         not changed concurrently.
 */
SHMBUS_API int shmbus_bus_resolve(const char *name, char *name_out, char *path_out,
                                  size_t path_cap);

/**
 * Connect to the daemon (shmbusd) of a bus and say hello. When the socket
 * path is the default $XDG_RUNTIME_DIR/shmbus/NAME.sock (neither
 * $SHMBUS_SOCKET nor $SHMBUS_RUNTIME_DIR set) and no socket is there, the
 * system bus's SHMBUS_RUNTIME_DIR_SYSTEM/NAME.sock is tried next (a user
 * without a daemon of their own reaches the system daemon).
 * @param bus   bus name, or NULL (see shmbus_bus_resolve()).
 * @param out   receives the connection, owned by the caller (shmbus_close()).
 * @return 0; SHMBUS_ERR_BAD_NAME; SHMBUS_ERR_NO_DAEMON when no daemon
 *         listens; SHMBUS_ERR_DENIED when it refuses this process;
 *         SHMBUS_ERR_UNTRUSTED when the daemon's uid is none we trust (not
 *         our daemon): we trust our
 *         uid, root, the uid or user $SHMBUS_DAEMON_UID names, and the
 *         owner of the socket's directory when nobody else may write that
 *         directory, its group is one of ours and only root may write the
 *         directories above it; SHMBUS_ERR_INVALID when
 *         $SHMBUS_DAEMON_UID names no user;
 *         SHMBUS_ERR_PROTO_VERSION when it speaks another protocol version;
 *         SHMBUS_ERR_LIMIT when it serves its maximum of clients;
 *         SHMBUS_ERR_DAEMON_LOST, SHMBUS_ERR_TIMEOUT (no answer in 10 s) or
 *         SHMBUS_ERR_PROTOCOL when the daemon hangs up, hangs or garbles
 *         the hello; -errno (-EACCES: the socket's directory, such as the
 *         system bus's, is closed to us: not a member of its group).
 * Thread-safe. Blocks for one round trip to the daemon.
 * The connection may be used by several threads: control requests are
 * serialised on it. Publishing and receiving never use it.
 */
SHMBUS_API int shmbus_connect(const char *bus, shmbus_bus **out);

/**
 * Check the connection to the daemon, and reconnect if it was lost and a
 * daemon serves the bus again. Publishing and receiving never need the
 * daemon: they go on while it is away; only control calls (open, create,
 * destroy, list) fail with SHMBUS_ERR_DAEMON_LOST meanwhile, and each of
 * them tries to reconnect first, like this call. Reconnecting re-registers
 * every open topic, publisher and subscriber of the connection with the new
 * daemon (which took over the segments). A topic the new daemon does not
 * serve as the same segment (it was removed, another segment has its name,
 * or the daemon cannot serve it) is gone for good: it is marked so in the
 * segment, and from then on every process's publish, claim, poll and
 * receive on it, and this handle's control calls, fail with
 * SHMBUS_ERR_TOPIC_GONE; destroy its handles. A topic the new daemon is
 * still taking over is not given up: the reconnect is tried again.
 * @return 0 connected; SHMBUS_ERR_DAEMON_LOST (no daemon yet, or one
 *         still taking a topic of the connection over);
 *         SHMBUS_ERR_UNTRUSTED (the daemon now serving the bus is not one
 *         shmbus_connect() trusts; tried again next call);
 *         SHMBUS_ERR_INVALID in a forked child. Thread-safe; does not block
 *         beyond a few round trips to a daemon that answers.
 */
SHMBUS_API int shmbus_bus_check(shmbus_bus *bus);

/**
 * Close a connection. Accepts NULL. Topics opened through it stay usable:
 * the connection is closed when the last of them is destroyed (then the
 * daemon frees whatever it still held). Not to be called concurrently with
 * other calls on @p bus.
 */
SHMBUS_API void shmbus_close(shmbus_bus *bus);

/**
 * Open a topic by name through the daemon, creating it on first use.
 * @param topic  1..SHMBUS_TOPIC_NAME_MAX characters of [A-Za-z0-9_.:-], not
 *               starting with '.'.
 * @param opts   options for creation, or NULL for the defaults. When the
 *               topic exists, every non-zero field except perm must equal
 *               its value (zero fields accept what exists).
 * @param flags  enum shmbus_open_flags.
 * @param out    receives a topic handle, owned by the caller
 *               (shmbus_topic_destroy()); it keeps the connection open.
 *               Publishers and subscribers made from it are registered
 *               with the daemon.
 * @return 0; SHMBUS_ERR_BAD_NAME; SHMBUS_ERR_INVALID (bad option);
 *         SHMBUS_ERR_MISMATCH; -ENOENT (SHMBUS_OPEN_NOCREATE, absent);
 *         SHMBUS_ERR_NOT_READY (a restarted daemon has not taken the
 *         topic's segment over yet: try again); SHMBUS_ERR_LIMIT;
 *         SHMBUS_ERR_NO_SPACE; SHMBUS_ERR_DAEMON_LOST,
 *         SHMBUS_ERR_TIMEOUT, SHMBUS_ERR_PROTOCOL (as shmbus_connect());
 *         the segment checks of shmbus_topic_attach(); -errno.
 * Thread-safe. Blocks for one round trip to the daemon.
 */
SHMBUS_API int shmbus_open(shmbus_bus *bus, const char *topic, const shmbus_topic_opts *opts,
                           unsigned flags, shmbus_topic **out);

/** Flags of shmbus_topic_remove(). */
enum shmbus_remove_flags {
    /** Remove the topic even while live processes use it: they get
     *  SHMBUS_ERR_TOPIC_GONE on their next publish, receive or wait. */
    SHMBUS_REMOVE_FORCE = 1
};

/**
 * Remove a topic of the bus through the daemon: the daemon marks its
 * segment gone (every process that still maps it gets
 * SHMBUS_ERR_TOPIC_GONE on its next publish, receive or wait, and
 * sleepers are woken), unlinks it and forgets the name, which the next
 * shmbus_open() creates again with any options. Its memory stays in use
 * (and counts in the daemon's --max-shm) until every process that maps
 * it lets go of it, the daemon at its stop. Without
 * SHMBUS_REMOVE_FORCE it is refused while the topic is in use: a
 * connection of a live process has it open, or a live process other
 * than the daemon owns a subscriber slot or a publisher record in its
 * segment (the test by which a stopping daemon keeps a topic). Allowed
 * to the daemon's uid, root, and the uid whose client created the topic
 * (docs/design.md, "Who may do what"). A topic the daemon federates or
 * records is never removed, even with the flag (SHMBUS_ERR_BUSY).
 * @param bus    a connection (shmbus_connect()); not consumed.
 * @param name   the topic's name, as given to shmbus_open().
 * @param flags  enum shmbus_remove_flags.
 * @return 0; SHMBUS_ERR_BAD_NAME; SHMBUS_ERR_INVALID (NULL, unknown
 *         flag); -ENOENT (no such topic); SHMBUS_ERR_BUSY (in use, no
 *         FORCE; or federated or recorded); SHMBUS_ERR_DENIED (another uid's topic, or one of the
 *         daemon's own _shmbus. topics); SHMBUS_ERR_NOT_READY (its segment
 *         is not taken over yet by a restarted daemon);
 *         SHMBUS_ERR_DAEMON_LOST, SHMBUS_ERR_TIMEOUT, SHMBUS_ERR_PROTOCOL
 *         (as shmbus_connect()). Thread-safe. Blocks for one round trip.
 */
SHMBUS_API int shmbus_topic_remove(shmbus_bus *bus, const char *name, unsigned flags);

/* ------------------------------------------------------------------ topics */

/**
 * Create a topic segment and map it.
 * @param name  segment name: 1..SHMBUS_NAME_MAX characters of [A-Za-z0-9._:-],
 *              not starting with '.'; the segment is /dev/shm/<name>.
 * @param opts  options, or NULL for all defaults.
 * @param out   receives the handle, owned by the caller (shmbus_topic_destroy).
 * @return 0; -EEXIST if the segment exists; SHMBUS_ERR_INVALID for a bad name
 *         or option; SHMBUS_ERR_NO_SPACE when /dev/shm cannot hold it; -errno.
 * Thread-safe. Does not block beyond the system calls.
 */
SHMBUS_API int shmbus_topic_create(const char *name, const shmbus_topic_opts *opts,
                                   shmbus_topic **out);

/**
 * Map an existing topic segment, checking its header against the mapping.
 * @return 0; -ENOENT; SHMBUS_ERR_BAD_MAGIC, SHMBUS_ERR_VERSION,
 *         SHMBUS_ERR_TRUNCATED, SHMBUS_ERR_NOT_READY, SHMBUS_ERR_INVALID; -errno.
 * Thread-safe.
 */
SHMBUS_API int shmbus_topic_attach(const char *name, shmbus_topic **out);

/**
 * Unmap a topic. Every publisher and subscriber made from it must have been
 * destroyed first. Accepts NULL. The segment itself stays (shmbus_topic_unlink).
 */
SHMBUS_API void shmbus_topic_destroy(shmbus_topic *topic);

/**
 * Remove a topic segment's name. Mappings that exist stay valid.
 * @return 0; SHMBUS_ERR_INVALID for a bad name; -ENOENT; -errno.
 */
SHMBUS_API int shmbus_topic_unlink(const char *name);

/** Fill @p out with the topic's parameters and counters. @return 0. Thread-safe. */
SHMBUS_API int shmbus_topic_info_get(const shmbus_topic *topic, shmbus_topic_info *out);

/* -------------------------------------------------------------- publishing */

/**
 * Create a publisher on a topic. A publisher keeps a private cache of the
 * subscribers' positions, so one publisher is used by one thread at a time;
 * create one per publishing thread. It belongs to the process that created
 * it (its pid goes into every message): after fork(), create a new one.
 * The topic must outlive it. On a SHMBUS_TOPIC_EXCLUSIVE topic the
 * publisher takes the topic's single publisher token (a lock the kernel
 * drops when the holder destroys its publisher or dies) until destroyed.
 * @return 0; SHMBUS_ERR_INVALID for NULL arguments; -EBUSY if an exclusive
 *         topic's token is held (by any publisher, in any process); -ENOMEM;
 *         -errno if /proc/self/fd cannot be opened (exclusive topics); on
 *         a topic from shmbus_open(), the daemon's errors, among them
 *         SHMBUS_ERR_DAEMON_LOST and SHMBUS_ERR_TOPIC_GONE (no daemon
 *         serves it any more, see shmbus_bus_check()).
 */
SHMBUS_API int shmbus_pub_create(shmbus_topic *topic, shmbus_pub **out);

/**
 * Destroy a publisher. Accepts NULL. An open claim is aborted. Called in a
 * process that inherited the publisher through fork(), it only frees the
 * copy: the claim and an exclusive token stay the creator's.
 */
SHMBUS_API void shmbus_pub_destroy(shmbus_pub *pub);

/**
 * Publish a copy of @p len bytes from @p data. The buffer stays the caller's.
 * Lossy topics never wait. Reliable topics wait for space up to @p timeout_ns.
 * Makes no system call unless a subscriber sleeps (or, reliable, the ring is
 * full and the publisher has to sleep).
 * @return 0 on success; -EAGAIN if the reliable ring is full and timeout_ns is 0;
 *         SHMBUS_ERR_TIMEOUT if it stayed full; -EINTR if a signal ended that
 *         sleep; SHMBUS_ERR_TOO_BIG; SHMBUS_ERR_INVALID for NULL data with
 *         len > 0, while this publisher has a zero-copy claim open, or in a
 *         process that inherited the publisher through fork();
 *         SHMBUS_ERR_OVERRUN if the message was dropped and readers count it
 *         as lost: lossy, a newer message took the cell first; reliable,
 *         only when another publisher that was lapped while subscribers
 *         came and went stalled inside its write for longer than
 *         @p timeout_ns; either, when this call stalled inside its own
 *         write past the topic's stall timeout and the daemon ended its
 *         claim; SHMBUS_ERR_TOPIC_GONE once the daemon removed
 *         the topic (nothing is published; destroy the handles).
 */
SHMBUS_API int shmbus_publish(shmbus_pub *pub, const void *data, size_t len, int64_t timeout_ns);

/**
 * Publish the @p n messages @p msgs (each iov_base/iov_len one message, in
 * order, with consecutive seqs) with one claim and at most one wake-up.
 * Every message carries the same publish time.
 * At most capacity messages go out per call. A message that fails
 * (SHMBUS_ERR_OVERRUN, as shmbus_publish() says when) ends the batch: the
 * seqs claimed after it carry nothing, and readers count them lost.
 * Thread safety and blocking as shmbus_publish(): one thread per publisher.
 * @param pub a publisher with no zero-copy claim open.
 * @param msgs borrowed for the call only; the payloads are copied.
 * @param n messages in @p msgs; only the first min(n, capacity) are checked
 *        and may go out.
 * @param timeout_ns as shmbus_publish(), for room for the first message.
 * @return how many were published, 1..n (the first ones; reliable: as many
 *         as the ring had room for, waiting up to @p timeout_ns for room
 *         for the first); 0 for n 0; otherwise nothing was published and
 *         the errors are those of shmbus_publish(); SHMBUS_ERR_TOO_BIG if
 *         any of the messages this call may publish is too big,
 *         SHMBUS_ERR_INVALID if any has a NULL base with a length (checked
 *         before anything is published).
 */
SHMBUS_API int shmbus_publish_vec(shmbus_pub *pub, const struct iovec *msgs, unsigned n,
                                  int64_t timeout_ns);

/**
 * Claim a cell to write a message in place (zero copy). Exactly one claim
 * per publisher may be open. The claim must be ended by shmbus_pub_commit() or
 * shmbus_pub_abort() soon: readers wait at an open claim (on a topic with a
 * stall timeout, the daemon ends a claim left open that long).
 * @param claim caller-owned; filled in on success.
 * @return 0; -EAGAIN, SHMBUS_ERR_TIMEOUT, -EINTR as shmbus_publish();
 *         SHMBUS_ERR_OVERRUN as shmbus_publish(): nothing is open and the
 *         sequence number is counted as lost; SHMBUS_ERR_TOPIC_GONE;
 *         SHMBUS_ERR_INVALID for NULL arguments or a claim already open.
 */
SHMBUS_API int shmbus_pub_claim(shmbus_pub *pub, shmbus_claim *claim, int64_t timeout_ns);

/**
 * Publish the claimed cell with @p len bytes of payload.
 * @return 0; SHMBUS_ERR_TOO_BIG (the claim stays open); SHMBUS_ERR_OVERRUN
 *         if a newer message overtook the cell while it was written (as in
 *         shmbus_publish()), or the daemon ended the claim because it stayed
 *         open past the topic's stall timeout: the message is dropped and
 *         counted as lost. Bytes written into an ended claim may land in a
 *         newer message of the same cell once the ring has lapped it: a
 *         stall timeout must be far above any claim's legitimate life;
 *         SHMBUS_ERR_INVALID if @p claim is not this publisher's open claim.
 */
SHMBUS_API int shmbus_pub_commit(shmbus_pub *pub, shmbus_claim *claim, size_t len);

/**
 * Give up an open claim. Readers skip the cell and count it as one lost message.
 * @return 0; SHMBUS_ERR_INVALID if @p claim is not this publisher's open claim.
 */
SHMBUS_API int shmbus_pub_abort(shmbus_pub *pub, shmbus_claim *claim);

/* ------------------------------------------------------------- subscribing */

/**
 * Create a subscriber: takes a slot in the topic and places its cursor.
 * In a reliable topic it gates publishers from the moment this returns,
 * unless it is an observer (SHMBUS_SUB_OBSERVER: it then reads as a lossy
 * subscriber does, copies checked and losses counted). On a topic with a
 * stall timeout, a subscriber that holds publishers back that long is
 * evicted: its slot stops gating, and its next poll or receive fails with
 * SHMBUS_ERR_EVICTED (a sleeping one is woken for it; a wait set returns
 * it as ready); destroy it.
 * On a topic from shmbus_open() the daemon hands out the slot (and numbers
 * the named group), one round trip; it frees them again if this process dies.
 * A start at a seq or a time (SHMBUS_START_SEQ, SHMBUS_START_TIME) older
 * than the ring holds asks the daemon where it records the topic (one more
 * round trip) and reads the journal, gating nothing, until it joins the
 * ring; a lossy ring that overtakes such a subscriber sends it back to the
 * journal rather than to a loss. Losses the journal records (gaps, damaged
 * records) arrive as `lost`, as a ring's do.
 * @param opts NULL for defaults (start at next message, no group, adaptive wait).
 * @return 0; SHMBUS_ERR_NO_SLOT; SHMBUS_ERR_INVALID (group out of range,
 *         bad start, a group number on a bus topic or a group name on
 *         another, an unknown flag, an observer in a group, start_seq or
 *         start_time_ns set for another start, a seq or time start with a
 *         group); SHMBUS_ERR_RANGE (a seq past the tail, a time after the
 *         newest message, or older than the ring and any journal holds);
 *         the journal reader's errors (-EACCES, ...);
 *         SHMBUS_ERR_BAD_NAME; SHMBUS_ERR_LIMIT (no group left);
 *         SHMBUS_ERR_DAEMON_LOST; SHMBUS_ERR_TOPIC_GONE (no daemon serves
 *         the topic any more, see shmbus_bus_check()); -ENOMEM.
 * The subscriber is used by one thread at a time. The topic must outlive it.
 */
SHMBUS_API int shmbus_sub_create(shmbus_topic *topic, const shmbus_sub_opts *opts,
                                 shmbus_sub **out);

/** Release the slot (and group membership) and free the subscriber. Accepts NULL.
 * On a bus topic the slot stops gating at once and the daemon frees it (one
 * round trip, two after a reconnect). With no daemon serving the bus (the
 * one that handed the slot out is dead) or the topic, the slot is freed
 * here; if a live daemon cannot be told, it frees the slot when this
 * process dies. Called in a process that inherited the subscriber through
 * fork(), it only frees the copy. */
SHMBUS_API void shmbus_sub_destroy(shmbus_sub *sub);

/**
 * Deliver up to @p max ready messages to @p fn without waiting.
 * Reliable topics hand the callback a pointer into the ring (no copy); lossy
 * topics hand it a private copy that was checked after copying, because a
 * lossy cell may be overwritten at any time.
 * @return number delivered (0 when none is ready); SHMBUS_ERR_CORRUPT when
 *         the ring holds an impossible record; SHMBUS_ERR_INVALID (also in a
 *         process that inherited the subscriber through fork(): its slot and
 *         cursor are the creator's); SHMBUS_ERR_TOPIC_GONE once the daemon
 *         removed the topic; SHMBUS_ERR_EVICTED once the subscriber was
 *         evicted (stall timeout). If that happened while this call read a
 *         reliable topic in place, what the callback read may have been
 *         overwritten: the call fails with SHMBUS_ERR_EVICTED after it, and a
 *         group member's message in hand is counted as abandoned (an
 *         acknowledging member's goes back to its group, redelivered).
 */
SHMBUS_API int shmbus_poll(shmbus_sub *sub, shmbus_msg_fn fn, void *arg, unsigned max);

/**
 * Receive one message into @p buf, waiting up to @p timeout_ns (spinning for
 * the subscriber's spin time, then sleeping on the topic's futex).
 * @param info   optional; filled with the message's metadata (data = buf).
 * @return payload length; SHMBUS_ERR_TIMEOUT (or -EAGAIN when timeout_ns is
 *         0) when nothing arrived; -EMSGSIZE when @p cap is too small: the
 *         message stays unread (for a group member: stays with the group,
 *         and another member may take it) and info->len holds its length;
 *         SHMBUS_ERR_CORRUPT; -EINTR if a signal interrupted the sleep;
 *         SHMBUS_ERR_TOPIC_GONE, SHMBUS_ERR_EVICTED (a sleeping receive is
 *         woken for either; a message copied while the subscriber was being
 *         evicted is dropped). On any return but a length, @p buf's bytes
 *         are unspecified (a lossy copy that a newer publisher overwrote
 *         meanwhile is discarded there).
 */
SHMBUS_API int shmbus_recv(shmbus_sub *sub, void *buf, size_t cap, shmbus_msg *info,
                           int64_t timeout_ns);

/** Fill @p out with the subscriber's counters. @return 0. */
SHMBUS_API int shmbus_sub_stats_get(const shmbus_sub *sub, shmbus_sub_stats *out);

/**
 * Report whether a message is ready without consuming it.
 * @return 1 ready (or a loss to report), 0 nothing, or a negative error.
 */
SHMBUS_API int shmbus_sub_ready(shmbus_sub *sub);

/* ------------------------------------------------------ acknowledgements */

/**
 * Acknowledge message @p seq, delivered to this SHMBUS_SUB_ACK member: it
 * is done, leaves the group's pending table, and stops gating publishers.
 * @return 0; -ENOENT if the member holds no pending message @p seq (never
 *         delivered to it, or already acknowledged or nacked);
 *         SHMBUS_ERR_EVICTED (the daemon evicted the member and gave its
 *         messages back to the group); SHMBUS_ERR_TOPIC_GONE;
 *         SHMBUS_ERR_INVALID (not an acknowledging member, or a process
 *         that inherited it through fork()).
 * Used by the subscriber's thread, like every call on it. Never blocks.
 */
SHMBUS_API int shmbus_ack(shmbus_sub *sub, uint64_t seq);

/**
 * Give message @p seq back to the group for redelivery, to any member
 * (this one included), no sooner than @p delay_ns from now (0: at once;
 * at most 1 hour). Redeliveries go ahead of new messages, lowest seq
 * first. A message given back after its group's max_deliveries-th
 * delivery is dead-lettered instead.
 * @return as shmbus_ack(); SHMBUS_ERR_INVALID also for a negative or too
 *         long @p delay_ns.
 */
SHMBUS_API int shmbus_nack(shmbus_sub *sub, uint64_t seq, int64_t delay_ns);

/** Longest delay of shmbus_nack(), in nanoseconds (one hour). */
#define SHMBUS_NACK_DELAY_MAX (3600ll * 1000000000ll)

/** A dead letter, as shmbus_dead_letter_parse() reads it. data points into
 * the message it was parsed from. */
typedef struct shmbus_dead_letter {
    char topic[SHMBUS_TOPIC_NAME_MAX + 1]; /**< original topic */
    char group[SHMBUS_GROUP_NAME_MAX + 1]; /**< the group that gave up on it */
    const void *data;                      /**< original payload, inside the parsed message */
    uint32_t len;                          /**< original payload length */
    uint32_t publisher_pid;
    uint64_t seq;          /**< its seq in the original topic */
    uint64_t timestamp_ns; /**< its publish time (CLOCK_REALTIME ns) */
    uint64_t dead_ns;      /**< when the daemon dead-lettered it (CLOCK_REALTIME ns) */
    uint32_t deliveries;   /**< times it was delivered */
    uint32_t reason;       /**< enum shmbus_dead_letter_reason */
} shmbus_dead_letter;

/**
 * Read a message of a dead-letter topic: the daemon wraps the original in
 * an envelope (docs/protocol.md, "Dead letters") that carries its topic,
 * seq, publish time, publisher, group, deliveries and reason.
 * @return 0; SHMBUS_ERR_INVALID for NULL arguments; SHMBUS_ERR_CORRUPT if
 *         @p data is no dead letter, or a malformed one.
 * Thread-safe; pure.
 */
SHMBUS_API int shmbus_dead_letter_parse(const void *data, size_t len, shmbus_dead_letter *out);

/**
 * Name of a dead letter's reason (enum shmbus_dead_letter_reason) as the
 * daemon's events and `shmbus sub --dead-letters` spell it: "nacked",
 * "died", "evicted", "stalled", "left"; "unknown" for any other value (a
 * daemon newer than this library). @return a static string. Thread-safe.
 */
SHMBUS_API const char *shmbus_dead_letter_reason(uint32_t reason);

/* ---------------------------------------------------------------- wait sets */

/** Create an empty wait set. @return 0; -ENOMEM. */
SHMBUS_API int shmbus_waitset_create(shmbus_waitset **out);

/** Free a wait set (not its subscribers). Accepts NULL. */
SHMBUS_API void shmbus_waitset_destroy(shmbus_waitset *ws);

/**
 * Add a subscriber. @return 0; SHMBUS_ERR_WAITSET_FULL; -EEXIST if present.
 * A wait set and its subscribers are used by one thread at a time.
 */
SHMBUS_API int shmbus_waitset_add(shmbus_waitset *ws, shmbus_sub *sub);

/** Remove a subscriber. @return 0; -ENOENT if absent. */
SHMBUS_API int shmbus_waitset_remove(shmbus_waitset *ws, shmbus_sub *sub);

/**
 * Wait until at least one member has a message, up to @p timeout_ns: spin for
 * the shortest spin time of the members, then sleep on all their topics'
 * futexes at once (futex_waitv).
 * @param ready receives up to @p cap ready subscribers; one that was
 *        evicted, or whose topic was removed, counts as ready: its poll
 *        or receive reports it.
 * @return number of ready subscribers stored; SHMBUS_ERR_TIMEOUT (-EAGAIN
 *         with timeout 0); -EINTR; SHMBUS_ERR_INVALID for an empty set;
 *         -ENOSYS on kernels before 5.16 (no futex_waitv) when it has to
 *         sleep on more than one topic.
 */
SHMBUS_API int shmbus_waitset_wait(shmbus_waitset *ws, shmbus_sub **ready, unsigned cap,
                                   int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif /* SHMBUS_SHMBUS_H */
