/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Control protocol codec (wire.h): the checks every request and reply
 * passes before anyone reads a field, and the send/receive calls that move
 * one message and, for OPEN replies, one file descriptor.
 */
#include "registry/wire.h"

#include "shm/layout.h"
#include "util/name.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int sb_wire_put_name(char *dst, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap);

    if (n == cap)
        return SHMBUS_ERR_BAD_NAME;
    memset(dst, 0, cap);
    memcpy(dst, s, n);
    return 0;
}

/* A fixed name field must hold its NUL inside the field. */
static int field_terminated(const char *f, size_t cap)
{
    return memchr(f, '\0', cap) != NULL;
}

static uint32_t body_size(uint16_t type)
{
    switch (type) {
    case SB_MSG_HELLO:
        return sizeof(struct sb_wire_hello);
    case SB_MSG_OPEN:
        return sizeof(struct sb_wire_open);
    case SB_MSG_CLOSE:
    case SB_MSG_PUB_ADD:
    case SB_MSG_PUB_DEL:
    case SB_MSG_SUB_DEL:
    case SB_MSG_SUB_ADOPT:
    case SB_MSG_JOURNAL:
        return sizeof(struct sb_wire_ref);
    case SB_MSG_SUB_ADD:
        return sizeof(struct sb_wire_sub);
    case SB_MSG_LIST:
        return sizeof(struct sb_wire_list);
    case SB_MSG_BRIDGE:
        return sizeof(struct sb_wire_bridge);
    case SB_MSG_NATS:
        return sizeof(struct sb_wire_nats);
    case SB_MSG_REMOVE:
        return sizeof(struct sb_wire_remove);
    case SB_MSG_BUS:
        return sizeof(struct sb_wire_bus);
    default:
        return UINT32_MAX;
    }
}

/* Ranges are the ring's (segment.c checks them again when it creates). */
static int open_check(const struct sb_wire_open *o, const char **why)
{
    if (!field_terminated(o->name, sizeof(o->name))) {
        *why = "topic name not terminated";
        return SHMBUS_ERR_PROTOCOL;
    }
    if (!sb_name_valid(o->name, SHMBUS_TOPIC_NAME_MAX)) {
        *why = "bad topic name: " SB_NAME_TOPIC_RULE;
        return SHMBUS_ERR_BAD_NAME;
    }
    if (o->flags & ~(uint32_t)SHMBUS_OPEN_NOCREATE) {
        *why = "unknown open flag";
        return SHMBUS_ERR_INVALID;
    }
    if (o->mode != 0 && o->mode != SHMBUS_LOSSY && o->mode != SHMBUS_RELIABLE) {
        *why = "mode must be lossy (1) or reliable (2)";
        return SHMBUS_ERR_INVALID;
    }
    if (o->topic_flags & ~(uint32_t)SHMBUS_TOPIC_EXCLUSIVE) {
        *why = "unknown topic flag";
        return SHMBUS_ERR_INVALID;
    }
    if ((o->capacity & (o->capacity - 1)) != 0 || o->capacity == 1 ||
        o->capacity > SB_CAPACITY_MAX || o->max_msg_size > SB_MAX_MSG_MAX ||
        o->max_subscribers > SB_SUBS_MAX || o->max_groups > SB_GROUPS_MAX ||
        o->max_publishers > SB_PUBS_MAX) {
        /* The numbers in the text are layout.h's limits (asserted below). */
        *why = "option out of range: capacity a power of two 2..2^24, max_msg_size up to "
               "16 MiB, max_subscribers and max_publishers up to 1024, max_groups up to "
               "256 (0: default)";
        return SHMBUS_ERR_INVALID;
    }
    return 0;
}

static_assert(SB_CAPACITY_MIN == 2u && SB_CAPACITY_MAX == 1u << 24 && SB_MAX_MSG_MAX == 16u << 20 &&
                  SB_SUBS_MAX == 1024u && SB_PUBS_MAX == 1024u && SB_GROUPS_MAX == 256u,
              "open_check()'s text names these limits: change it with them");

static_assert(SHMBUS_MAX_DELIVERIES_MAX == 1000 && SHMBUS_MAX_DELIVERIES_DEFAULT == 5,
              "sub_ack_check()'s text names these limits: change it with them");

/* What an acknowledging member asks of its group (SB_WIRE_SUB_ACK), or
 * nothing of the kind for any other subscriber. */
static int sub_ack_check(const struct sb_wire_sub *q, const char **why)
{
    if (!field_terminated(q->dead_letter, sizeof(q->dead_letter))) {
        *why = "dead-letter topic name not terminated";
        return SHMBUS_ERR_PROTOCOL;
    }
    if (q->pad != 0) {
        *why = "padding not zero";
        return SHMBUS_ERR_PROTOCOL;
    }
    if (!(q->flags & SB_WIRE_SUB_ACK)) {
        if (q->max_deliveries == 0 && q->dead_letter[0] == '\0')
            return 0;
        *why = "max_deliveries and dead_letter are for acknowledging members only";
        return SHMBUS_ERR_INVALID;
    }
    if (q->group[0] == '\0') {
        *why = "an acknowledging subscriber must be a member of a named group";
        return SHMBUS_ERR_INVALID;
    }
    if (q->max_deliveries > SHMBUS_MAX_DELIVERIES_MAX) {
        *why = "max_deliveries out of range: 1-1000 (0: the group's, or 5)";
        return SHMBUS_ERR_INVALID;
    }
    if (q->dead_letter[0] != '\0' && !sb_name_valid(q->dead_letter, SHMBUS_TOPIC_NAME_MAX)) {
        *why = "bad dead-letter topic name: " SB_NAME_TOPIC_RULE;
        return SHMBUS_ERR_BAD_NAME;
    }
    return 0;
}

static int sub_check(const struct sb_wire_sub *q, const char **why)
{
    if (!field_terminated(q->group, sizeof(q->group))) {
        *why = "group name not terminated";
        return SHMBUS_ERR_PROTOCOL;
    }
    if (q->group[0] != '\0' && !sb_name_valid(q->group, SHMBUS_GROUP_NAME_MAX)) {
        *why = "bad group name: " SB_NAME_GROUP_RULE;
        return SHMBUS_ERR_BAD_NAME;
    }
    if (q->flags & ~(uint32_t)SB_WIRE_SUB_ACK) {
        *why = "unknown subscribe flag";
        return SHMBUS_ERR_INVALID;
    }
    return sub_ack_check(q, why);
}

static int remove_check(const struct sb_wire_remove *q, const char **why)
{
    if (!field_terminated(q->name, sizeof(q->name))) {
        *why = "topic name not terminated";
        return SHMBUS_ERR_PROTOCOL;
    }
    if (!sb_name_valid(q->name, SHMBUS_TOPIC_NAME_MAX)) {
        *why = "bad topic name: " SB_NAME_TOPIC_RULE;
        return SHMBUS_ERR_BAD_NAME;
    }
    if (q->pad[0] != 0 || q->pad[1] != 0 || q->pad[2] != 0) {
        *why = "padding not zero";
        return SHMBUS_ERR_PROTOCOL;
    }
    if ((q->flags & ~(uint32_t)SHMBUS_REMOVE_FORCE) != 0) {
        *why = "unknown remove flag";
        return SHMBUS_ERR_INVALID;
    }
    return 0;
}

static int body_check(const struct sb_wire_req *r, const char **why)
{
    switch (r->hdr.type) {
    case SB_MSG_HELLO:
        if (field_terminated(r->u.hello.name, sizeof(r->u.hello.name)))
            return 0;
        *why = "client name not terminated";
        return SHMBUS_ERR_PROTOCOL;
    case SB_MSG_OPEN:
        return open_check(&r->u.open, why);
    case SB_MSG_SUB_ADD:
        return sub_check(&r->u.sub, why);
    case SB_MSG_LIST:
        if (field_terminated(r->u.list.after, sizeof(r->u.list.after)))
            return 0;
        *why = "list start not terminated";
        return SHMBUS_ERR_PROTOCOL;
    case SB_MSG_REMOVE:
        return remove_check(&r->u.remove, why);
    case SB_MSG_BUS:
        if (r->u.bus.zero == 0)
            return 0;
        *why = "reserved field not zero";
        return SHMBUS_ERR_PROTOCOL;
    default:
        return 0; /* references are checked against the session's tables */
    }
}

int sb_wire_decode_req(const void *buf, size_t n, struct sb_wire_req *out, const char **why)
{
    uint32_t want;

    memset(out, 0, sizeof(*out));
    if (n < sizeof(out->hdr)) {
        *why = "message shorter than the header";
        return SHMBUS_ERR_PROTOCOL;
    }
    memcpy(&out->hdr, buf, sizeof(out->hdr));
    if (out->hdr.magic != SB_WIRE_MAGIC) {
        *why = "bad magic: not a shmbus control message";
        return SHMBUS_ERR_PROTOCOL;
    }
    if (out->hdr.version != SHMBUS_PROTOCOL_VERSION) {
        *why = "protocol version not supported";
        return SHMBUS_ERR_PROTO_VERSION;
    }
    want = body_size(out->hdr.type);
    if (want == UINT32_MAX) {
        *why = "unknown command";
        return SHMBUS_ERR_PROTOCOL;
    }
    if (out->hdr.len != n - sizeof(out->hdr) || out->hdr.len != want) {
        *why = "body length does not match the command";
        return SHMBUS_ERR_PROTOCOL;
    }
    memcpy(&out->u, (const uint8_t *)buf + sizeof(out->hdr), want);
    return body_check(out, why);
}

int sb_wire_decode_reply(const void *buf, size_t n, uint32_t req, const void **body)
{
    struct sb_wire_hdr h;
    struct sb_wire_err e;

    if (n < sizeof(h))
        return SHMBUS_ERR_PROTOCOL;
    memcpy(&h, buf, sizeof(h));
    if (h.magic != SB_WIRE_MAGIC)
        return SHMBUS_ERR_PROTOCOL;
    if (h.version != SHMBUS_PROTOCOL_VERSION)
        return SHMBUS_ERR_PROTO_VERSION;
    if (h.len != n - sizeof(h) || h.req != req)
        return SHMBUS_ERR_PROTOCOL;
    if (h.type == SB_MSG_OK) {
        *body = (const uint8_t *)buf + sizeof(h);
        return (int)h.len;
    }
    if (h.type != SB_MSG_ERR || h.len != sizeof(e))
        return SHMBUS_ERR_PROTOCOL;
    memcpy(&e, (const uint8_t *)buf + sizeof(h), sizeof(e));
    /* An error reply must carry an error: a code >= 0 would read as success. */
    return e.code < 0 ? e.code : SHMBUS_ERR_PROTOCOL;
}

int sb_wire_send(int sock, uint16_t type, uint32_t req, const void *body, uint32_t len, int fd)
{
    struct sb_wire_hdr h = {SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, type, len, req};
    struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)body, len}};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    ssize_t rc;

    if (fd >= 0) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof(ctl.buf);
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    do
        rc = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

int sb_wire_send_err(int sock, uint32_t req, int code, const char *text)
{
    struct sb_wire_err e = {.code = code};

    strncpy(e.text, text ? text : shmbus_strerror(code), sizeof(e.text) - 1);
    return sb_wire_send(sock, SB_MSG_ERR, req, &e, sizeof(e), -1);
}

/* Take the descriptors out of @p m: keep the first in *fd when wanted, close the rest. */
static void recv_fds(struct msghdr *m, int *fd)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
        size_t nfd;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int f;

            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (fd != NULL && *fd < 0)
                *fd = f;
            else
                close(f);
        }
    }
}

long sb_wire_recv(int sock, void *buf, size_t cap, int *fd)
{
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {buf, cap};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl.buf,
                       .msg_controllen = sizeof(ctl.buf)};
    ssize_t rc;

    if (fd != NULL)
        *fd = -1;
    do
        rc = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    recv_fds(&m, fd);
    if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        if (fd != NULL && *fd >= 0) {
            close(*fd);
            *fd = -1;
        }
        return SHMBUS_ERR_PROTOCOL;
    }
    return (long)rc;
}
