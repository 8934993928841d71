/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Monitoring (registry/monitor.h): shmbus_list(), shmbus_bridge_stat() and
 * shmbus_nats_stat(), which page through the daemon's LIST, BRIDGE and
 * NATS replies, and the conversions of those replies' bodies to and from
 * the public structs (the daemon encodes with the same conversions); and
 * shmbus_topic_groups_get(), which reads a topic's groups from its
 * segment, trusting none of it.
 */
#include "registry/monitor.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "registry/client.h"
#include "ring/ring.h"
#include "util/name.h"

/* Public ABI: a size changed here changes the library's ABI (checked so
 * that it never changes by accident). */
static_assert(sizeof(shmbus_topic_entry) == 184, "shmbus_topic_entry");
static_assert(sizeof(shmbus_slot_info) == 112, "shmbus_slot_info");
static_assert(sizeof(shmbus_bridge_info) == 160, "shmbus_bridge_info");
static_assert(sizeof(shmbus_bridge_conn) == 240, "shmbus_bridge_conn");
static_assert(sizeof(shmbus_nats_info) == 336, "shmbus_nats_info");
static_assert(sizeof(shmbus_nats_topic) == 200, "shmbus_nats_topic");
static_assert(sizeof(shmbus_group_info) == 304, "shmbus_group_info");

/* Public ABI: each field at its offset too, since a field moved inside a
 * struct keeps its size (SHMBUS_BRIDGE_TOTALS' order is checked against
 * the wire by tests/test_monitor.c). */
#define MONITOR_ABI(type, field, off)                                                              \
    static_assert(offsetof(type, field) == (off), #type "." #field);
MONITOR_ABI(shmbus_topic_entry, name, 0)
MONITOR_ABI(shmbus_topic_entry, mode, 132)
MONITOR_ABI(shmbus_topic_entry, flags, 136)
MONITOR_ABI(shmbus_topic_entry, capacity, 140)
MONITOR_ABI(shmbus_topic_entry, max_msg_size, 144)
MONITOR_ABI(shmbus_topic_entry, max_subscribers, 148)
MONITOR_ABI(shmbus_topic_entry, max_groups, 152)
MONITOR_ABI(shmbus_topic_entry, clients, 156)
MONITOR_ABI(shmbus_topic_entry, publishers, 160)
MONITOR_ABI(shmbus_topic_entry, subscribers, 164)
MONITOR_ABI(shmbus_topic_entry, pad, 168)
MONITOR_ABI(shmbus_topic_entry, segment_size, 176)
MONITOR_ABI(shmbus_slot_info, index, 0)
MONITOR_ABI(shmbus_slot_info, pid, 4)
MONITOR_ABI(shmbus_slot_info, group, 8)
MONITOR_ABI(shmbus_slot_info, flags, 12)
MONITOR_ABI(shmbus_slot_info, group_name, 16)
MONITOR_ABI(shmbus_slot_info, position, 80)
MONITOR_ABI(shmbus_slot_info, received, 88)
MONITOR_ABI(shmbus_slot_info, lost, 96)
MONITOR_ABI(shmbus_slot_info, lag, 104)
MONITOR_ABI(shmbus_bridge_info, listen, 0)
MONITOR_ABI(shmbus_bridge_info, connections, 64)
MONITOR_ABI(shmbus_bridge_conn, id, 0)
MONITOR_ABI(shmbus_bridge_conn, age_ms, 8)
MONITOR_ABI(shmbus_bridge_conn, buffered, 16)
MONITOR_ABI(shmbus_bridge_conn, msgs_in, 24)
MONITOR_ABI(shmbus_bridge_conn, msgs_out, 32)
MONITOR_ABI(shmbus_bridge_conn, memory, 40)
MONITOR_ABI(shmbus_bridge_conn, channels, 48)
MONITOR_ABI(shmbus_bridge_conn, patterns, 52)
MONITOR_ABI(shmbus_bridge_conn, proto, 56)
MONITOR_ABI(shmbus_bridge_conn, flags, 60)
MONITOR_ABI(shmbus_bridge_conn, peer, 64)
MONITOR_ABI(shmbus_bridge_conn, name, 112)
MONITOR_ABI(shmbus_bridge_conn, subs, 144)
MONITOR_ABI(shmbus_nats_info, server, 0)
MONITOR_ABI(shmbus_nats_info, origin, 128)
MONITOR_ABI(shmbus_nats_info, prefix, 192)
MONITOR_ABI(shmbus_nats_info, state, 256)
MONITOR_ABI(shmbus_nats_info, topics, 260)
MONITOR_ABI(shmbus_nats_info, reconnects, 264)
MONITOR_ABI(shmbus_nats_info, refused, 272)
MONITOR_ABI(shmbus_nats_info, errors, 280)
MONITOR_ABI(shmbus_nats_info, msgs_out, 288)
MONITOR_ABI(shmbus_nats_topic, id, 0)
MONITOR_ABI(shmbus_nats_topic, name, 8)
MONITOR_ABI(shmbus_nats_topic, flags, 140)
MONITOR_ABI(shmbus_nats_topic, pad, 144)
MONITOR_ABI(shmbus_nats_topic, msgs_out, 152)
MONITOR_ABI(shmbus_group_info, index, 0)
MONITOR_ABI(shmbus_group_info, members, 4)
MONITOR_ABI(shmbus_group_info, max_deliveries, 8)
MONITOR_ABI(shmbus_group_info, pad, 12)
MONITOR_ABI(shmbus_group_info, name, 16)
MONITOR_ABI(shmbus_group_info, dead_letter, 80)
MONITOR_ABI(shmbus_group_info, position, 216)
MONITOR_ABI(shmbus_group_info, lag, 224)
MONITOR_ABI(shmbus_group_info, lost, 232)
MONITOR_ABI(shmbus_group_info, pending, 240)
MONITOR_ABI(shmbus_group_info, redelivered, 248)
MONITOR_ABI(shmbus_group_info, dead_lettered, 256)
MONITOR_ABI(shmbus_group_info, dead_letter_failed, 264)
MONITOR_ABI(shmbus_group_info, reserved, 272)

/* The wire's fixed fields hold the public ones exactly. */
static_assert(sizeof(((shmbus_topic_entry *)0)->name) == sizeof(((struct sb_wire_topic *)0)->name),
              "topic name");
static_assert((int)SHMBUS_BRIDGE_PROTO_JSON == (int)SB_BRIDGE_JSON &&
                  (int)SHMBUS_BRIDGE_PROTO_RESP == (int)SB_BRIDGE_RESP,
              "bridge protocols");
static_assert((int)SHMBUS_BRIDGE_AUTHED == (int)SB_BRIDGE_AUTHED &&
                  (int)SHMBUS_BRIDGE_PAUSED == (int)SB_BRIDGE_PAUSED,
              "bridge flags");
static_assert(sizeof(((shmbus_bridge_info *)0)->listen) ==
                  sizeof(((struct sb_wire_bridge_ok *)0)->listen),
              "bridge listen");
static_assert(sizeof(((shmbus_bridge_conn *)0)->peer) ==
                      sizeof(((struct sb_wire_bridge_conn *)0)->peer) &&
                  sizeof(((shmbus_bridge_conn *)0)->name) ==
                      sizeof(((struct sb_wire_bridge_conn *)0)->name) &&
                  sizeof(((shmbus_bridge_conn *)0)->subs) ==
                      sizeof(((struct sb_wire_bridge_conn *)0)->subs),
              "bridge conn strings");
static_assert(
    sizeof(((shmbus_nats_info *)0)->server) == sizeof(((struct sb_wire_nats_ok *)0)->server) &&
        sizeof(((shmbus_nats_info *)0)->origin) == sizeof(((struct sb_wire_nats_ok *)0)->origin) &&
        sizeof(((shmbus_nats_info *)0)->prefix) == sizeof(((struct sb_wire_nats_ok *)0)->prefix) &&
        sizeof(((shmbus_nats_topic *)0)->name) == sizeof(((struct sb_wire_nats_topic *)0)->name),
    "nats strings");

/* Copy a string into a fixed field of the wire: its bytes up to its NUL,
 * then zeros to the end. Nothing after the string travels (the stale end
 * of a connection's earlier, longer name, say), and the field ends in NUL. */
#define MONITOR_STR_PUT(dst, src)                                                                  \
    do {                                                                                           \
        size_t n_ = strnlen((src), sizeof(dst) - 1);                                               \
                                                                                                   \
        memset((dst), 0, sizeof(dst));                                                             \
        memcpy((dst), (src), n_);                                                                  \
    } while (0)

/* Copy a fixed string field of the wire, NUL-terminated whatever was sent. */
#define MONITOR_STR(dst, src)                                                                      \
    do {                                                                                           \
        memcpy((dst), (src), sizeof(dst));                                                         \
        (dst)[sizeof(dst) - 1] = '\0';                                                             \
    } while (0)

void sb_monitor_topic_put(struct sb_wire_topic *w, const shmbus_topic_entry *e)
{
    memset(w, 0, sizeof(*w));
    MONITOR_STR_PUT(w->name, e->name);
    w->mode = e->mode;
    w->flags = e->flags;
    w->capacity = e->capacity;
    w->max_msg_size = e->max_msg_size;
    w->max_subscribers = e->max_subscribers;
    w->max_groups = e->max_groups;
    w->clients = e->clients;
    w->publishers = e->publishers;
    w->subscribers = e->subscribers;
    w->segment_size = e->segment_size;
}

void sb_monitor_topic_get(shmbus_topic_entry *e, const struct sb_wire_topic *w)
{
    memset(e, 0, sizeof(*e));
    MONITOR_STR(e->name, w->name);
    e->mode = w->mode;
    e->flags = w->flags;
    e->capacity = w->capacity;
    e->max_msg_size = w->max_msg_size;
    e->max_subscribers = w->max_subscribers;
    e->max_groups = w->max_groups;
    e->clients = w->clients;
    e->publishers = w->publishers;
    e->subscribers = w->subscribers;
    e->segment_size = w->segment_size;
}

#define MONITOR_TOTAL_PUT(kind, field, key, doc) w->field = info->field;
#define MONITOR_TOTAL_GET(kind, field, key, doc) info->field = w->field;

void sb_monitor_bridge_put(struct sb_wire_bridge_ok *w, const shmbus_bridge_info *info)
{
    MONITOR_STR_PUT(w->listen, info->listen);
    SHMBUS_BRIDGE_TOTALS(MONITOR_TOTAL_PUT)
}

void sb_monitor_bridge_get(shmbus_bridge_info *info, const struct sb_wire_bridge_ok *w)
{
    MONITOR_STR(info->listen, w->listen);
    SHMBUS_BRIDGE_TOTALS(MONITOR_TOTAL_GET)
}

#define MONITOR_NATS_PUT(kind, field, key, doc) w->field = src->field;
#define MONITOR_NATS_GET(kind, field, key, doc) dst->field = w->field;

void sb_monitor_nats_put(struct sb_wire_nats_ok *w, const shmbus_nats_info *src)
{
    MONITOR_STR_PUT(w->server, src->server);
    MONITOR_STR_PUT(w->origin, src->origin);
    MONITOR_STR_PUT(w->prefix, src->prefix);
    w->state = src->state;
    w->topics = src->topics;
    w->reconnects = src->reconnects;
    w->refused = src->refused;
    w->errors = src->errors;
    SHMBUS_NATS_TOPIC_COUNTERS(MONITOR_NATS_PUT)
}

static void nats_get(shmbus_nats_info *dst, const struct sb_wire_nats_ok *w)
{
    memset(dst, 0, sizeof(*dst));
    MONITOR_STR(dst->server, w->server);
    MONITOR_STR(dst->origin, w->origin);
    MONITOR_STR(dst->prefix, w->prefix);
    dst->state = w->state;
    dst->topics = w->topics;
    dst->reconnects = w->reconnects;
    dst->refused = w->refused;
    dst->errors = w->errors;
    SHMBUS_NATS_TOPIC_COUNTERS(MONITOR_NATS_GET)
}

void sb_monitor_nats_topic_put(struct sb_wire_nats_topic *w, const shmbus_nats_topic *src)
{
    memset(w, 0, sizeof(*w));
    w->id = src->id;
    MONITOR_STR_PUT(w->name, src->name);
    w->flags = src->flags;
    SHMBUS_NATS_TOPIC_COUNTERS(MONITOR_NATS_PUT)
}

static void nats_topic_get(shmbus_nats_topic *dst, const struct sb_wire_nats_topic *w)
{
    memset(dst, 0, sizeof(*dst));
    dst->id = w->id;
    MONITOR_STR(dst->name, w->name);
    dst->flags = w->flags;
    SHMBUS_NATS_TOPIC_COUNTERS(MONITOR_NATS_GET)
}

/* relaxed, all: independent counters, each read once; the snapshot is racy
 * by contract (shmbus_bridge_stat()). */
#define MONITOR_COUNTER_READ_COUNTER(field)                                                        \
    info->field = atomic_load_explicit(&c->field, memory_order_relaxed);
#define MONITOR_COUNTER_READ_GAUGE(field)
#define MONITOR_COUNTER_READ(kind, field, key, doc) MONITOR_COUNTER_READ_##kind(field)

void sb_monitor_counters_read(const struct sb_monitor_bridge_counters *c, shmbus_bridge_info *info)
{
    SHMBUS_BRIDGE_TOTALS(MONITOR_COUNTER_READ)
}

void sb_monitor_conn_put(struct sb_wire_bridge_conn *w, const shmbus_bridge_conn *c)
{
    memset(w, 0, sizeof(*w));
    w->id = c->id;
    w->age_ms = c->age_ms;
    w->buffered = c->buffered;
    w->msgs_out = c->msgs_out;
    w->msgs_in = c->msgs_in;
    w->memory = c->memory;
    w->channels = c->channels;
    w->patterns = c->patterns;
    w->proto = c->proto;
    w->flags = c->flags;
    MONITOR_STR_PUT(w->peer, c->peer);
    MONITOR_STR_PUT(w->name, c->name);
    MONITOR_STR_PUT(w->subs, c->subs);
}

void sb_monitor_conn_get(shmbus_bridge_conn *c, const struct sb_wire_bridge_conn *w)
{
    c->id = w->id;
    c->age_ms = w->age_ms;
    c->buffered = w->buffered;
    c->msgs_in = w->msgs_in;
    c->msgs_out = w->msgs_out;
    c->memory = w->memory;
    c->channels = w->channels;
    c->patterns = w->patterns;
    c->proto = w->proto;
    c->flags = w->flags;
    MONITOR_STR(c->peer, w->peer);
    MONITOR_STR(c->name, w->name);
    MONITOR_STR(c->subs, w->subs);
}

int shmbus_list(shmbus_bus *bus, const char *after, shmbus_topic_entry *out, unsigned cap)
{
    uint8_t reply[SB_WIRE_MAX];
    struct sb_wire_list req;
    struct sb_wire_list_ok ok;
    struct sb_wire_topic w;
    unsigned n = 0;
    int rc;

    if (bus == NULL || (out == NULL && cap > 0))
        return SHMBUS_ERR_INVALID;
    if (sb_wire_put_name(req.after, sizeof(req.after), after ? after : "") < 0)
        return SHMBUS_ERR_BAD_NAME;
    while (n < cap) {
        rc = sb_bus_call(bus, SB_MSG_LIST, &req, sizeof(req), reply, sizeof(reply), NULL);
        if (rc < 0)
            return rc;
        memcpy(&ok, reply, rc >= (int)sizeof(ok) ? sizeof(ok) : 0);
        if (rc < (int)sizeof(ok) || ok.count > SB_WIRE_LIST_MAX ||
            (size_t)rc != sizeof(ok) + ok.count * sizeof(w))
            return SHMBUS_ERR_PROTOCOL;
        for (uint32_t i = 0; i < ok.count && n < cap; i++, n++) {
            memcpy(&w, reply + sizeof(ok) + i * sizeof(w), sizeof(w)); /* unaligned */
            sb_monitor_topic_get(&out[n], &w);
            /* Names must grow, or paging by name would never end. */
            if (strcmp(out[n].name, req.after) <= 0)
                return SHMBUS_ERR_PROTOCOL;
            snprintf(req.after, sizeof(req.after), "%s", out[n].name);
        }
        if (ok.count < SB_WIRE_LIST_MAX)
            break; /* the daemon had no more */
    }
    return (int)n;
}

/*
 * Check a BRIDGE reply of @p len bytes (>= 0) and copy its totals.
 * sb_wire_decode_reply() checked the header only: the body is checked here.
 * @return the number of connections it carries, or SHMBUS_ERR_PROTOCOL.
 */
static int bridge_reply(const uint8_t *reply, int len, shmbus_bridge_info *info)
{
    struct sb_wire_bridge_ok ok;

    /* Too short for the totals. */
    if (len < (int)sizeof(ok))
        return SHMBUS_ERR_PROTOCOL;
    memcpy(&ok, reply, sizeof(ok));
    /* More than one page holds, or a length that is not the count's. */
    if (ok.count > SB_WIRE_BRIDGE_MAX ||
        (size_t)len != sizeof(ok) + ok.count * sizeof(struct sb_wire_bridge_conn))
        return SHMBUS_ERR_PROTOCOL;
    sb_monitor_bridge_get(info, &ok);
    return (int)ok.count;
}

/* Copy the wire's connection at @p src (unaligned) into @p d. */
static void bridge_conn_copy(shmbus_bridge_conn *d, const uint8_t *src)
{
    struct sb_wire_bridge_conn c;

    memcpy(&c, src, sizeof(c));
    sb_monitor_conn_get(d, &c);
}

int shmbus_bridge_stat(shmbus_bus *bus, uint64_t after, shmbus_bridge_info *info,
                       shmbus_bridge_conn *out, unsigned cap)
{
    uint8_t reply[SB_WIRE_MAX];
    struct sb_wire_bridge req = {.after = after};
    unsigned n = 0;
    int rc, count;

    if (bus == NULL || info == NULL || (out == NULL && cap > 0))
        return SHMBUS_ERR_INVALID;
    do {
        rc = sb_bus_call(bus, SB_MSG_BRIDGE, &req, sizeof(req), reply, sizeof(reply), NULL);
        if (rc < 0)
            return rc;
        count = bridge_reply(reply, rc, info);
        if (count < 0)
            return count;
        for (int i = 0; i < count && n < cap; i++, n++) {
            bridge_conn_copy(&out[n], reply + sizeof(struct sb_wire_bridge_ok) +
                                          (size_t)i * sizeof(struct sb_wire_bridge_conn));
            /* Ids must grow, or paging by id would never end. */
            if (out[n].id <= req.after)
                return SHMBUS_ERR_PROTOCOL;
            req.after = out[n].id;
        }
    } while (count == (int)SB_WIRE_BRIDGE_MAX && n < cap); /* a full page: there may be more */
    return (int)n;
}

#define MONITOR_NATS_FLAGS (SHMBUS_NATS_EXPORT | SHMBUS_NATS_IMPORT | SHMBUS_NATS_PERSIST)

/* Is @p t one topic of a well-formed NATS reply, after id @p prev? */
static int nats_topic_ok(const shmbus_nats_topic *t, uint64_t prev)
{
    /* Ids must grow, or paging by id would never end. */
    if (t->id <= prev)
        return 0;
    /* A flag this library does not know, or a topic going neither way. */
    if ((t->flags & ~(uint32_t)MONITOR_NATS_FLAGS) != 0 ||
        (t->flags & (SHMBUS_NATS_EXPORT | SHMBUS_NATS_IMPORT)) == 0)
        return 0;
    return sb_name_valid(t->name, SHMBUS_TOPIC_NAME_MAX);
}

int sb_monitor_nats_page(const void *body, size_t len, uint64_t after, shmbus_nats_info *info,
                         shmbus_nats_topic *out, unsigned cap)
{
    const uint8_t *b = body;
    struct sb_wire_nats_ok ok;
    struct sb_wire_nats_topic w;
    shmbus_nats_topic t;

    /* Too short for the link and its totals. */
    if (len < sizeof(ok))
        return SHMBUS_ERR_PROTOCOL;
    memcpy(&ok, b, sizeof(ok));
    /* More than one page holds, or a length that is not the count's. */
    if (ok.count > SB_WIRE_NATS_MAX || len != sizeof(ok) + ok.count * sizeof(w))
        return SHMBUS_ERR_PROTOCOL;
    /* A state this library does not know; a daemon that does not
     * federate has no federated topic. */
    if (ok.state > SHMBUS_NATS_CLOSED ||
        (ok.state == SHMBUS_NATS_OFF && (ok.count != 0 || ok.topics != 0)))
        return SHMBUS_ERR_PROTOCOL;
    nats_get(info, &ok);
    for (uint32_t i = 0; i < ok.count; i++) {
        memcpy(&w, b + sizeof(ok) + (size_t)i * sizeof(w), sizeof(w)); /* unaligned */
        nats_topic_get(&t, &w);
        if (!nats_topic_ok(&t, after))
            return SHMBUS_ERR_PROTOCOL;
        after = t.id;
        if (i < cap)
            out[i] = t;
    }
    return (int)ok.count;
}

int shmbus_nats_stat(shmbus_bus *bus, uint64_t after, shmbus_nats_info *info,
                     shmbus_nats_topic *out, unsigned cap)
{
    uint8_t reply[SB_WIRE_MAX];
    struct sb_wire_nats req = {.after = after};
    unsigned n = 0;
    int rc, count;

    if (bus == NULL || info == NULL || (out == NULL && cap > 0))
        return SHMBUS_ERR_INVALID;
    do {
        rc = sb_bus_call(bus, SB_MSG_NATS, &req, sizeof(req), reply, sizeof(reply), NULL);
        if (rc < 0)
            return rc;
        count =
            sb_monitor_nats_page(reply, (size_t)rc, req.after, info, out ? out + n : NULL, cap - n);
        if (count < 0)
            return count;
        if ((unsigned)count > cap - n)
            count = (int)(cap - n); /* checked, but no room: the caller asked for no more */
        n += (unsigned)count;
        if (count > 0)
            req.after = out[n - 1].id;
    } while (count == (int)SB_WIRE_NATS_MAX && n < cap); /* a full page: there may be more */
    return (int)n;
}

/* The segment's names fit the public fields: a valid name always does. */
static_assert(SB_GROUP_NAME_LEN == SHMBUS_GROUP_NAME_MAX + 1, "group name field");
static_assert(SB_DEAD_LETTER_LEN > SHMBUS_TOPIC_NAME_MAX, "dead-letter name field");

/*
 * Copy the name in the segment's field @p src of @p len bytes into @p dst
 * (@p max + 1 bytes): the name if the field holds a valid one of at most
 * @p max characters, NUL-terminated within the field; else "". A
 * scribbled field never shows as garbage, nor makes this read past it.
 */
static void group_name_copy(char *dst, size_t max, const char *src, size_t len)
{
    char buf[SB_DEAD_LETTER_LEN];
    size_t n = len < sizeof(buf) ? len : sizeof(buf);

    memcpy(buf, src, n); /* plain bytes, written once before the group is handed out */
    dst[0] = '\0';
    if (memchr(buf, '\0', n) == NULL)
        return; /* not terminated within its field */
    if (sb_name_valid(buf, max))
        memcpy(dst, buf, strlen(buf) + 1); /* at most max + 1 bytes: valid */
}

/* The HELD, RETURNED and DEAD entries of group @p gi's (0-based) table. */
static uint64_t group_pending(const struct sb_segment *seg, uint32_t gi)
{
    uint64_t n = 0;

    for (uint32_t i = 0; i < seg->g.ack_entries; i++) {
        /* relaxed: a snapshot for monitors; the state alone is read. */
        uint64_t w = atomic_load_explicit(&sb_pending(seg, gi, i)->word, memory_order_relaxed);
        uint32_t st = SB_PEND_ST(w);

        n += st == SB_PEND_HELD || st == SB_PEND_RETURNED || st == SB_PEND_DEAD;
    }
    return n;
}

/*
 * Group @p gi's (0-based) snapshot into @p o, @p tail the topic's.
 * @return 1 if the group is in use: members, a name or pending entries.
 * Relaxed loads (monitoring only, each value read once), but for
 * max_deliveries: acquire, pairing with group_configure()'s release store
 * (admin_ack.c), so that a group seen configured shows the dead-letter
 * name written before it (group_name_copy() still validates it).
 */
static int group_info(const struct sb_segment *seg, uint32_t gi, uint64_t tail,
                      shmbus_group_info *o)
{
    const struct sb_shm_group *grp = &seg->groups[gi];
    uint64_t w = atomic_load_explicit(&grp->cursor, memory_order_relaxed);
    uint32_t members = (uint32_t)(w & SB_GRP_MEMBERS);
    uint32_t maxd = atomic_load_explicit(&grp->max_deliveries, memory_order_acquire);

    memset(o, 0, sizeof(*o));
    o->index = gi + 1;
    /* A count over the topic's slots is a scribble or a race: clamp it. */
    o->members = members < seg->g.max_subs ? members : seg->g.max_subs;
    o->max_deliveries = maxd < SHMBUS_MAX_DELIVERIES_MAX ? maxd : SHMBUS_MAX_DELIVERIES_MAX;
    group_name_copy(o->name, SHMBUS_GROUP_NAME_MAX, grp->name, sizeof(grp->name));
    o->position = SB_GRP_SEQ(w);
    o->lag = tail > o->position ? tail - o->position : 0;
    o->lost = atomic_load_explicit(&grp->lost, memory_order_relaxed);
    o->redelivered = atomic_load_explicit(&grp->redelivered, memory_order_relaxed);
    o->dead_lettered = atomic_load_explicit(&grp->dead_lettered, memory_order_relaxed);
    o->dead_letter_failed = atomic_load_explicit(&grp->dead_letter_failed, memory_order_relaxed);
    /* The tables' place is the attacher's validated geometry (shm/segment.c),
     * never the header read again: a reliable topic has one per group. */
    if (seg->g.ack_entries > 0) {
        const struct sb_shm_acktab *tab = sb_acktab(seg, gi);

        o->pending = group_pending(seg, gi);
        if (o->max_deliveries > 0)
            group_name_copy(o->dead_letter, SHMBUS_TOPIC_NAME_MAX, tab->dead_letter,
                            sizeof(tab->dead_letter));
    }
    return o->members > 0 || o->name[0] != '\0' || o->pending > 0;
}

int shmbus_topic_groups_get(const shmbus_topic *topic, shmbus_group_info *out, unsigned cap)
{
    const struct sb_segment *seg;
    shmbus_group_info gi;
    uint64_t tail;
    unsigned n = 0;

    if (topic == NULL || (out == NULL && cap > 0))
        return SHMBUS_ERR_INVALID;
    seg = &topic->seg;
    /* relaxed: a snapshot for monitors. */
    tail = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
    for (uint32_t i = 0; i < seg->g.max_groups; i++) {
        if (!group_info(seg, i, tail, &gi))
            continue;
        if (n < cap)
            out[n] = gi;
        n++;
    }
    return (int)n;
}

int shmbus_bus_stat(shmbus_bus *bus, shmbus_bus_info *out)
{
    struct sb_wire_bus req = {0};
    struct sb_wire_bus_ok ok;
    int rc;

    if (bus == NULL || out == NULL)
        return SHMBUS_ERR_INVALID;
    rc = sb_bus_call(bus, SB_MSG_BUS, &req, sizeof(req), &ok, sizeof(ok), NULL);
    if (rc < 0)
        return rc;
    if (rc != (int)sizeof(ok))
        return SHMBUS_ERR_PROTOCOL; /* not the reply this version sends */
    *out = (shmbus_bus_info){.shm_bytes = ok.shm_bytes,
                             .max_shm = ok.max_shm,
                             .max_segment = ok.max_segment,
                             .topics = ok.topics,
                             .max_topics = ok.max_topics,
                             .clients = ok.clients,
                             .max_clients = ok.max_clients};
    return 0;
}
