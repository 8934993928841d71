/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control protocol between clients (libshmbus) and shmbusd, spoken over
 * an AF_UNIX SOCK_SEQPACKET socket: one message per packet, so a message is
 * never split or merged. Both ends are on one host: fields are in host byte
 * order. A request carries a client-chosen id that its reply repeats.
 *
 * Every message starts with struct sb_wire_hdr, whose first 8 bytes (magic
 * and version) never change between protocol versions, so either end can
 * always tell a peer of another version and say so. Bodies have a fixed
 * size per type; names travel NUL-terminated in fixed fields. The decoder
 * trusts nothing: sizes, terminators, name syntax and option ranges are all
 * checked here, once, before the daemon or the client looks at a field.
 * docs/protocol.md is the reference.
 */
#ifndef SHMBUS_REGISTRY_WIRE_H
#define SHMBUS_REGISTRY_WIRE_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "shmbus/monitor.h"
#include "shmbus/shmbus.h"

#define SB_WIRE_MAGIC       0x31434253u /* "SBC1" */
#define SB_WIRE_MAX         8192u       /* largest message either end sends */
#define SB_WIRE_ERR_TEXT    120u
#define SB_WIRE_CLIENT_NAME 32u
#define SB_WIRE_LIST_MAX    32u   /* topics per LIST reply */
#define SB_WIRE_BRIDGE_MAX  24u   /* connections per BRIDGE reply */
#define SB_WIRE_NATS_MAX    32u   /* federated topics per NATS reply */
#define SB_WIRE_PATH_MAX    4096u /* a JOURNAL reply's directory, NUL included */

enum sb_wire_type {
    SB_MSG_HELLO = 1,     /* client: pid and program name; reply: session id */
    SB_MSG_OPEN = 2,      /* topic by name (and creation options); reply: id + fd */
    SB_MSG_CLOSE = 3,     /* topic id: the client dropped its handle */
    SB_MSG_PUB_ADD = 4,   /* topic id: a publisher was created */
    SB_MSG_PUB_DEL = 5,   /* topic id: a publisher was destroyed */
    SB_MSG_SUB_ADD = 6,   /* topic id, group name (and what an acknowledging member
                             asks of it): reply slot and group numbers */
    SB_MSG_SUB_DEL = 7,   /* topic id, slot: the subscriber left; free the slot */
    SB_MSG_LIST = 8,      /* topics after a name; reply: up to SB_WIRE_LIST_MAX */
    SB_MSG_SUB_ADOPT = 9, /* topic id, slot: a slot we hold since a previous daemon */
    SB_MSG_BRIDGE = 10,   /* TCP bridge connections after an id; reply: totals and up
                             to SB_WIRE_BRIDGE_MAX */
    SB_MSG_NATS = 11,     /* federated topics after an id; reply: the NATS link and up
                             to SB_WIRE_NATS_MAX */
    SB_MSG_JOURNAL = 12,  /* topic id: where the daemon records it; reply: the
                             journal directory, or -ENOENT */
    SB_MSG_REMOVE = 13,   /* topic by name, flags: remove it (unlink, mark gone);
                             reply: empty, or an error */
    SB_MSG_BUS = 14,      /* 8 zero bytes; reply: the bus's use against its limits */
    SB_MSG_OK = 0x100,    /* reply: the request succeeded; body per request */
    SB_MSG_ERR = 0x101    /* reply: struct sb_wire_err */
};

struct sb_wire_hdr {
    uint32_t magic;
    uint16_t version; /* SHMBUS_PROTOCOL_VERSION */
    uint16_t type;    /* enum sb_wire_type */
    uint32_t len;     /* body bytes after the header */
    uint32_t req;     /* request id, echoed by the reply */
};
static_assert(sizeof(struct sb_wire_hdr) == 16, "wire header");
static_assert(offsetof(struct sb_wire_hdr, version) == 4, "wire version");
static_assert(offsetof(struct sb_wire_hdr, type) == 6, "wire type");
static_assert(offsetof(struct sb_wire_hdr, len) == 8, "wire len");
static_assert(offsetof(struct sb_wire_hdr, req) == 12, "wire req");

struct sb_wire_hello {
    uint32_t pid; /* must equal the socket's SO_PEERCRED pid */
    uint32_t pad;
    char name[SB_WIRE_CLIENT_NAME]; /* program name, for logs and stat */
};
static_assert(sizeof(struct sb_wire_hello) == 40, "hello");

struct sb_wire_hello_ok {
    uint32_t session;
    uint32_t daemon_pid;
};
static_assert(sizeof(struct sb_wire_hello_ok) == 8, "hello ok");

struct sb_wire_open {
    uint32_t flags; /* enum shmbus_open_flags */
    uint32_t mode;  /* the rest: shmbus_topic_opts, 0 = default / any */
    uint32_t capacity;
    uint32_t max_msg_size;
    uint32_t max_subscribers;
    uint32_t max_groups;
    uint32_t topic_flags;
    uint32_t max_publishers;
    uint32_t stall_timeout_ms;
    uint32_t pad;
    char name[SHMBUS_TOPIC_NAME_MAX + 8];
};
static_assert(sizeof(struct sb_wire_open) == 176, "open");
static_assert(offsetof(struct sb_wire_open, stall_timeout_ms) == 32, "open stall_timeout_ms");
static_assert(offsetof(struct sb_wire_open, name) == 40, "open name");

/* Reply to OPEN; the segment's file descriptor rides along (SCM_RIGHTS). */
struct sb_wire_open_ok {
    uint32_t topic;   /* the daemon's topic id, for the requests below */
    uint32_t created; /* 1 if this request created the topic */
};
static_assert(sizeof(struct sb_wire_open_ok) == 8, "open ok");

/* CLOSE, PUB_ADD, PUB_DEL, SUB_DEL, SUB_ADOPT and JOURNAL. */
struct sb_wire_ref {
    uint32_t topic;
    uint32_t slot; /* SUB_DEL: the slot; else 0 */
};
static_assert(sizeof(struct sb_wire_ref) == 8, "ref");
static_assert(offsetof(struct sb_wire_ref, topic) == 0, "ref topic first (client.c bus_call)");

/* SUB_ADD flags (sb_wire_sub.flags). */
enum sb_wire_sub_flags {
    /* An acknowledging member (SHMBUS_SUB_ACK): a group is required, and
     * max_deliveries and dead_letter say what it asks of the group. */
    SB_WIRE_SUB_ACK = 1
};

struct sb_wire_sub {
    uint32_t topic;
    uint32_t flags;                        /* enum sb_wire_sub_flags */
    char group[SHMBUS_GROUP_NAME_MAX + 1]; /* "" = no group */
    /* SB_WIRE_SUB_ACK only, else 0 and "": the group's deliveries before a
     * dead letter, 1..SHMBUS_MAX_DELIVERIES_MAX (0: what the group has, or
     * the default), and its dead-letter topic ("": what the group has, or
     * "<topic>.dlq"). */
    uint32_t max_deliveries;
    uint32_t pad; /* 0 */
    char dead_letter[SHMBUS_TOPIC_NAME_MAX + 8];
};
static_assert(sizeof(struct sb_wire_sub) == 216, "sub");
static_assert(offsetof(struct sb_wire_sub, topic) == 0, "sub topic first (client.c bus_call)");
static_assert(offsetof(struct sb_wire_sub, flags) == 4, "sub flags");
static_assert(offsetof(struct sb_wire_sub, group) == 8, "sub group");
static_assert(offsetof(struct sb_wire_sub, max_deliveries) == 72, "sub max_deliveries");
static_assert(offsetof(struct sb_wire_sub, pad) == 76, "sub pad");
static_assert(offsetof(struct sb_wire_sub, dead_letter) == 80, "sub dead_letter");

struct sb_wire_sub_ok {
    uint32_t slot;  /* slot index, taken for the client (state INIT) */
    uint32_t group; /* 0, or the group's 1-based number */
};
static_assert(sizeof(struct sb_wire_sub_ok) == 8, "sub ok");

struct sb_wire_list {
    char after[SHMBUS_TOPIC_NAME_MAX + 8]; /* "" = from the start */
};

/* REMOVE: a topic by name (not by id: the remover need not have it open). */
struct sb_wire_remove {
    char name[SHMBUS_TOPIC_NAME_MAX + 1]; /* NUL-terminated */
    uint8_t pad[3];                       /* 0 */
    uint32_t flags;                       /* enum shmbus_remove_flags */
};
static_assert(sizeof(struct sb_wire_remove) == 136, "remove");
static_assert(offsetof(struct sb_wire_remove, pad) == 129, "remove pad");
static_assert(offsetof(struct sb_wire_remove, flags) == 132, "remove flags");

/* BUS: the request's body is reserved (0). */
struct sb_wire_bus {
    uint64_t zero;
};
static_assert(sizeof(struct sb_wire_bus) == 8, "bus");

/* Reply to BUS: shmbus_bus_info's fields (registry/monitor.h converts). */
struct sb_wire_bus_ok {
    uint64_t shm_bytes;   /* the topics' segments, bytes */
    uint64_t max_shm;     /* --max-shm */
    uint64_t max_segment; /* --max-segment */
    uint32_t topics;      /* the clients' topics (not the daemon's own) */
    uint32_t max_topics;  /* --max-topics */
    uint32_t clients;     /* connections that said hello */
    uint32_t max_clients; /* --max-clients */
};
static_assert(sizeof(struct sb_wire_bus_ok) == 40, "bus ok");
static_assert(offsetof(struct sb_wire_bus_ok, topics) == 24, "bus ok topics");
static_assert(offsetof(struct sb_wire_bus_ok, max_clients) == 36, "bus ok max_clients");

/* One topic of a LIST reply (shmbus_topic_entry's fields, which the ends
 * convert: registry/monitor.h). Padding is spelled out and zero. */
struct sb_wire_topic {
    char name[SHMBUS_TOPIC_NAME_MAX + 1]; /* NUL-padded */
    uint8_t pad0[3];
    uint32_t mode;
    uint32_t flags; /* enum shmbus_topic_flags */
    uint32_t capacity;
    uint32_t max_msg_size;
    uint32_t max_subscribers;
    uint32_t max_groups;
    uint32_t clients;     /* connections that have the topic open */
    uint32_t publishers;  /* publishers registered with the daemon */
    uint32_t subscribers; /* subscriber slots the daemon handed out */
    uint32_t pad1;
    uint64_t segment_size;
};
static_assert(sizeof(struct sb_wire_topic) == 184, "topic");
static_assert(offsetof(struct sb_wire_topic, pad0) == 129, "topic pad0");
static_assert(offsetof(struct sb_wire_topic, mode) == 132, "topic mode");
static_assert(offsetof(struct sb_wire_topic, flags) == 136, "topic flags");
static_assert(offsetof(struct sb_wire_topic, capacity) == 140, "topic capacity");
static_assert(offsetof(struct sb_wire_topic, max_msg_size) == 144, "topic max_msg_size");
static_assert(offsetof(struct sb_wire_topic, max_subscribers) == 148, "topic max_subscribers");
static_assert(offsetof(struct sb_wire_topic, max_groups) == 152, "topic max_groups");
static_assert(offsetof(struct sb_wire_topic, clients) == 156, "topic clients");
static_assert(offsetof(struct sb_wire_topic, publishers) == 160, "topic publishers");
static_assert(offsetof(struct sb_wire_topic, subscribers) == 164, "topic subscribers");
static_assert(offsetof(struct sb_wire_topic, pad1) == 168, "topic pad1");
static_assert(offsetof(struct sb_wire_topic, segment_size) == 176, "topic segment_size");

struct sb_wire_list_ok {
    uint32_t count;
    uint32_t pad;
    struct sb_wire_topic entries[]; /* count of them */
};
static_assert(sizeof(struct sb_wire_list_ok) == 8, "list ok");
static_assert(SB_WIRE_LIST_MAX * sizeof(struct sb_wire_topic) + sizeof(struct sb_wire_list_ok) +
                      sizeof(struct sb_wire_hdr) <=
                  SB_WIRE_MAX,
              "a full LIST reply fits one message");

/* Reply to JOURNAL: the journal directory the daemon records the topic in
 * (its --journal-dir; the topic's files are in DIR/TOPIC, docs/journal.md),
 * NUL-terminated, NUL-padded. */
struct sb_wire_journal_ok {
    char dir[SB_WIRE_PATH_MAX];
};
static_assert(sizeof(struct sb_wire_journal_ok) == 4096, "journal ok");
static_assert(sizeof(struct sb_wire_journal_ok) + sizeof(struct sb_wire_hdr) <= SB_WIRE_MAX,
              "a JOURNAL reply fits one message");

struct sb_wire_bridge {
    uint64_t after; /* connection id; 0 = from the first */
};
static_assert(sizeof(struct sb_wire_bridge) == 8, "bridge");

/* One remote connection of the TCP bridge. */
enum sb_wire_bridge_proto { SB_BRIDGE_UNKNOWN = 0, SB_BRIDGE_JSON = 1, SB_BRIDGE_RESP = 2 };
enum sb_wire_bridge_flags { SB_BRIDGE_AUTHED = 1, SB_BRIDGE_PAUSED = 2 };
struct sb_wire_bridge_conn {
    uint64_t id;
    uint64_t age_ms;   /* since accept */
    uint64_t buffered; /* output bytes waiting for the client to read */
    uint64_t msgs_out; /* deliveries */
    uint64_t msgs_in;  /* publishes */
    uint64_t memory;   /* bytes it holds: input, output, subscriptions */
    uint32_t channels, patterns;
    uint32_t proto; /* enum sb_wire_bridge_proto */
    uint32_t flags; /* enum sb_wire_bridge_flags */
    char peer[48];  /* address:port */
    char name[32];  /* CLIENT SETNAME */
    char subs[96];  /* channels and patterns, comma separated, ending "..." when cut */
};
static_assert(sizeof(struct sb_wire_bridge_conn) == 240, "bridge conn");
static_assert(offsetof(struct sb_wire_bridge_conn, id) == 0, "bridge conn id");
static_assert(offsetof(struct sb_wire_bridge_conn, age_ms) == 8, "bridge conn age_ms");
static_assert(offsetof(struct sb_wire_bridge_conn, buffered) == 16, "bridge conn buffered");
static_assert(offsetof(struct sb_wire_bridge_conn, msgs_out) == 24, "bridge conn msgs_out");
static_assert(offsetof(struct sb_wire_bridge_conn, msgs_in) == 32, "bridge conn msgs_in");
static_assert(offsetof(struct sb_wire_bridge_conn, memory) == 40, "bridge conn memory");
static_assert(offsetof(struct sb_wire_bridge_conn, channels) == 48, "bridge conn channels");
static_assert(offsetof(struct sb_wire_bridge_conn, patterns) == 52, "bridge conn patterns");
static_assert(offsetof(struct sb_wire_bridge_conn, proto) == 56, "bridge conn proto");
static_assert(offsetof(struct sb_wire_bridge_conn, flags) == 60, "bridge conn flags");
static_assert(offsetof(struct sb_wire_bridge_conn, peer) == 64, "bridge conn peer");
static_assert(offsetof(struct sb_wire_bridge_conn, name) == 112, "bridge conn name");
static_assert(offsetof(struct sb_wire_bridge_conn, subs) == 144, "bridge conn subs");

/* The BRIDGE reply: the totals (SHMBUS_BRIDGE_TOTALS, one uint64_t each
 * from offset 64, in its order), then the connections. tests/test_monitor.c
 * checks each total at its protocol-3 offset. */
struct sb_wire_bridge_ok {
    char listen[64]; /* "ADDR:PORT", "" when the daemon runs no bridge */
    SHMBUS_BRIDGE_TOTALS(SHMBUS_BRIDGE_TOTAL_MEMBER)
    uint32_t count; /* connections below */
    uint32_t pad;
    struct sb_wire_bridge_conn conns[]; /* count of them */
};
static_assert(sizeof(struct sb_wire_bridge_ok) == 168, "bridge ok");
static_assert(offsetof(struct sb_wire_bridge_ok, connections) == 64, "bridge ok totals");
static_assert(offsetof(struct sb_wire_bridge_ok, count) == 160, "bridge ok count");
static_assert(offsetof(struct sb_wire_bridge_ok, pad) == 164, "bridge ok pad");
static_assert(SB_WIRE_BRIDGE_MAX * sizeof(struct sb_wire_bridge_conn) +
                      sizeof(struct sb_wire_bridge_ok) + sizeof(struct sb_wire_hdr) <=
                  SB_WIRE_MAX,
              "a full BRIDGE reply fits one message");

struct sb_wire_nats {
    uint64_t after; /* federated topic id; 0 = from the first */
};
static_assert(sizeof(struct sb_wire_nats) == 8, "nats");

/* One federated topic of a NATS reply: its counters (SHMBUS_NATS_TOPIC_COUNTERS,
 * one uint64_t each from offset 144, in its order). */
struct sb_wire_nats_topic {
    uint64_t id;
    char name[SHMBUS_TOPIC_NAME_MAX + 1]; /* NUL-padded */
    uint8_t pad0[3];
    uint32_t flags; /* enum shmbus_nats_topic_flags */
    SHMBUS_NATS_TOPIC_COUNTERS(SHMBUS_NATS_COUNTER_MEMBER)
};
static_assert(sizeof(struct sb_wire_nats_topic) == 192, "nats topic");
static_assert(offsetof(struct sb_wire_nats_topic, name) == 8, "nats topic name");
static_assert(offsetof(struct sb_wire_nats_topic, pad0) == 137, "nats topic pad0");
static_assert(offsetof(struct sb_wire_nats_topic, flags) == 140, "nats topic flags");
static_assert(offsetof(struct sb_wire_nats_topic, msgs_out) == 144, "nats topic counters");

/* The NATS reply: the link, its totals (SHMBUS_NATS_TOPIC_COUNTERS summed,
 * from offset 288), then the topics. tests/test_monitor.c checks each
 * field at its protocol-3 offset. */
struct sb_wire_nats_ok {
    char server[128]; /* URL of the server it is connected to, "" when not */
    char origin[64];  /* "" when the daemon does not federate (state OFF) */
    char prefix[64];
    uint32_t state;  /* enum shmbus_nats_state */
    uint32_t topics; /* federated topics now */
    uint64_t reconnects;
    uint64_t refused;
    uint64_t errors;
    SHMBUS_NATS_TOPIC_COUNTERS(SHMBUS_NATS_COUNTER_MEMBER)
    uint32_t count; /* topics below */
    uint32_t pad;
    struct sb_wire_nats_topic entries[]; /* count of them */
};
static_assert(sizeof(struct sb_wire_nats_ok) == 344, "nats ok");
static_assert(offsetof(struct sb_wire_nats_ok, origin) == 128, "nats ok origin");
static_assert(offsetof(struct sb_wire_nats_ok, prefix) == 192, "nats ok prefix");
static_assert(offsetof(struct sb_wire_nats_ok, state) == 256, "nats ok state");
static_assert(offsetof(struct sb_wire_nats_ok, topics) == 260, "nats ok topics");
static_assert(offsetof(struct sb_wire_nats_ok, reconnects) == 264, "nats ok reconnects");
static_assert(offsetof(struct sb_wire_nats_ok, refused) == 272, "nats ok refused");
static_assert(offsetof(struct sb_wire_nats_ok, errors) == 280, "nats ok errors");
static_assert(offsetof(struct sb_wire_nats_ok, msgs_out) == 288, "nats ok totals");
static_assert(offsetof(struct sb_wire_nats_ok, count) == 336, "nats ok count");
static_assert(offsetof(struct sb_wire_nats_ok, pad) == 340, "nats ok pad");
static_assert(SB_WIRE_NATS_MAX * sizeof(struct sb_wire_nats_topic) +
                      sizeof(struct sb_wire_nats_ok) + sizeof(struct sb_wire_hdr) <=
                  SB_WIRE_MAX,
              "a full NATS reply fits one message");

struct sb_wire_err {
    int32_t code;                /* an SHMBUS_ERR_* code or -errno */
    char text[SB_WIRE_ERR_TEXT]; /* NUL-terminated detail for logs */
};
static_assert(sizeof(struct sb_wire_err) == 124, "err");

/* A decoded request: the header and the body, checked. */
struct sb_wire_req {
    struct sb_wire_hdr hdr;
    union {
        struct sb_wire_hello hello;
        struct sb_wire_open open;
        struct sb_wire_ref ref;
        struct sb_wire_sub sub;
        struct sb_wire_list list;
        struct sb_wire_bridge bridge;
        struct sb_wire_nats nats;
        struct sb_wire_remove remove;
        struct sb_wire_bus bus;
    } u;
};

/*
 * Check one received request of @p n bytes and copy it into @p out.
 * @p why receives a static reason on failure.
 * @return 0; SHMBUS_ERR_PROTO_VERSION (a shmbus peer of another version:
 *         out->hdr is filled in so the reply can carry its id);
 *         SHMBUS_ERR_PROTOCOL (too short, bad magic, length or terminator,
 *         unknown type); SHMBUS_ERR_BAD_NAME; SHMBUS_ERR_INVALID (an option
 *         out of range). Pure function; never reads beyond @p n bytes.
 */
int sb_wire_decode_req(const void *buf, size_t n, struct sb_wire_req *out, const char **why);

/*
 * Check a reply of @p n bytes to request @p req and find its body.
 * @return the body length (>= 0) for SB_MSG_OK, with *body set; the error
 *         code carried by SB_MSG_ERR; SHMBUS_ERR_PROTO_VERSION;
 *         SHMBUS_ERR_PROTOCOL. Pure function.
 */
int sb_wire_decode_reply(const void *buf, size_t n, uint32_t req, const void **body);

/* Copy @p s into a fixed field of @p cap bytes, NUL-padded.
 * @return 0, or SHMBUS_ERR_BAD_NAME when it does not fit. */
int sb_wire_put_name(char *dst, size_t cap, const char *s);

/*
 * Send one message: header (magic, version and length filled in here) and
 * body, with @p fd attached when >= 0.
 * @return 0 or -errno (-EPIPE when the peer is gone; never raises SIGPIPE).
 */
int sb_wire_send(int sock, uint16_t type, uint32_t req, const void *body, uint32_t len, int fd);

/* Send an SB_MSG_ERR reply. @return as sb_wire_send(). */
int sb_wire_send_err(int sock, uint32_t req, int code, const char *text);

/*
 * Receive one message into @p buf (@p cap >= SB_WIRE_MAX). A descriptor
 * that came with it is stored in *fd (close-on-exec), else *fd = -1; pass
 * fd NULL to refuse descriptors (any that came are closed).
 * @return bytes received; 0 when the peer closed or sent an empty packet;
 *         SHMBUS_ERR_PROTOCOL for a message longer than @p cap (its first
 *         @p cap bytes are in @p buf, the rest is discarded); -errno.
 */
long sb_wire_recv(int sock, void *buf, size_t cap, int *fd);

#endif
