/*
 * The monitoring requests of shmbus/monitor.h that go through the daemon:
 * shmbus_list() and shmbus_bridge_stat() page through its LIST and BRIDGE
 * replies, checking each body before copying it out.
 */
#include <stdio.h>
#include <string.h>

#include "registry/client.h"
#include "shmbus/monitor.h"

int shmbus_list(shmbus_bus *bus, const char *after, shmbus_topic_entry *out, unsigned cap)
{
    uint8_t reply[SB_WIRE_MAX];
    struct sb_wire_list req;
    struct sb_wire_list_ok ok;
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
            (size_t)rc != sizeof(ok) + ok.count * sizeof(shmbus_topic_entry))
            return SHMBUS_ERR_PROTOCOL;
        for (uint32_t i = 0; i < ok.count && n < cap; i++, n++) {
            memcpy(&out[n], reply + sizeof(ok) + i * sizeof(shmbus_topic_entry), sizeof(*out));
            out[n].name[SHMBUS_TOPIC_NAME_MAX] = '\0';
        }
        if (ok.count < SB_WIRE_LIST_MAX)
            break; /* the daemon had no more */
        snprintf(req.after, sizeof(req.after), "%s", out[n - 1].name);
    }
    return (int)n;
}

/* The public bridge structs are the wire's, field by field (copied, not
 * cast, so either can be laid out anew without touching the other). */
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
/* Public ABI: a size changed here changes the library's ABI (checked so
 * that it never changes by accident). */
static_assert(sizeof(shmbus_bridge_info) == 160, "shmbus_bridge_info");
static_assert(sizeof(shmbus_bridge_conn) == 240, "shmbus_bridge_conn");

/* Copy a fixed string field of the wire, NUL-terminated whatever was sent. */
#define BRIDGE_STR(dst, src)                                                                       \
    do {                                                                                           \
        memcpy((dst), (src), sizeof(dst));                                                         \
        (dst)[sizeof(dst) - 1] = '\0';                                                             \
    } while (0)

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
    BRIDGE_STR(info->listen, ok.listen);
    info->connections = ok.connections;
    info->accepted = ok.accepted;
    info->slow_closed = ok.slow_closed;
    info->refused = ok.refused;
    info->auth_failed = ok.auth_failed;
    info->auth_expired = ok.auth_expired;
    info->proto_errors = ok.proto_errors;
    info->msgs_in = ok.msgs_in;
    info->msgs_out = ok.msgs_out;
    info->bad_cells = ok.bad_cells;
    info->memory = ok.memory;
    info->evicted = ok.evicted;
    return (int)ok.count;
}

/* Copy the wire's connection at @p src (unaligned) into @p d. */
static void bridge_conn_copy(shmbus_bridge_conn *d, const uint8_t *src)
{
    struct sb_wire_bridge_conn c;

    memcpy(&c, src, sizeof(c));
    d->id = c.id;
    d->age_ms = c.age_ms;
    d->buffered = c.buffered;
    d->msgs_in = c.msgs_in;
    d->msgs_out = c.msgs_out;
    d->memory = c.memory;
    d->channels = c.channels;
    d->patterns = c.patterns;
    d->proto = c.proto;
    d->flags = c.flags;
    BRIDGE_STR(d->peer, c.peer);
    BRIDGE_STR(d->name, c.name);
    BRIDGE_STR(d->subs, c.subs);
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
