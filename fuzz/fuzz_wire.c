/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the control-protocol decoders (registry/wire.c)
 * and the NATS reply body's (registry/monitor.c). Every input goes through
 * sb_wire_decode_req(), sb_wire_decode_reply() and sb_monitor_nats_page();
 * what they accept must satisfy the guarantees the daemon and the client
 * rely on (wire.h, monitor.h): exact body size, terminated and valid names,
 * options, states and flags in range, ids that grow, and nothing read
 * beyond the input (ASan watches libFuzzer's exact-size copy). A broken guarantee aborts, so
 * libFuzzer keeps the input.
 *
 * Built with -DFUZZ_WIRE_SEEDS instead, this file is a small program that
 * writes one valid message of each kind into a directory: the seed corpus
 * (scripts/fuzz.sh).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/monitor.h"
#include "registry/wire.h"
#include "util/name.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The body size of each request type, written down again independently. */
static size_t want_len(uint16_t type)
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
        return 0;
    }
}

static int terminated(const char *f, size_t cap)
{
    return memchr(f, '\0', cap) != NULL;
}

/* A name of [A-Za-z0-9._:-], 1..max long, not starting with '.'. */
static int name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max || s[0] == '.')
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == n;
}

/* What a decoded SUB_ADD asks of its group: an acknowledging member's
 * wishes in range, in a named group; none for any other subscriber. */
static void check_sub_ack(const struct sb_wire_sub *q)
{
    CHECK((q->flags & ~(uint32_t)SB_WIRE_SUB_ACK) == 0);
    CHECK(q->pad == 0);
    CHECK(terminated(q->dead_letter, sizeof(q->dead_letter)));
    CHECK(q->dead_letter[0] == '\0' || name_ok(q->dead_letter, SHMBUS_TOPIC_NAME_MAX));
    CHECK(q->max_deliveries <= SHMBUS_MAX_DELIVERIES_MAX);
    if (q->flags & SB_WIRE_SUB_ACK)
        CHECK(q->group[0] != '\0');
    else
        CHECK(q->max_deliveries == 0 && q->dead_letter[0] == '\0');
}

/* What an accepted request guarantees. */
static void check_req(const uint8_t *data, size_t size, const struct sb_wire_req *q)
{
    const size_t hl = sizeof(struct sb_wire_hdr);

    CHECK(size >= hl);
    CHECK(q->hdr.magic == SB_WIRE_MAGIC && q->hdr.version == SHMBUS_PROTOCOL_VERSION);
    CHECK(want_len(q->hdr.type) != 0);
    CHECK(q->hdr.len == size - hl && q->hdr.len == want_len(q->hdr.type));
    CHECK(memcmp(&q->hdr, data, hl) == 0);
    CHECK(memcmp(&q->u, data + hl, q->hdr.len) == 0);
    switch (q->hdr.type) {
    case SB_MSG_HELLO:
        CHECK(terminated(q->u.hello.name, sizeof(q->u.hello.name)));
        break;
    case SB_MSG_OPEN:
        CHECK(terminated(q->u.open.name, sizeof(q->u.open.name)));
        CHECK(name_ok(q->u.open.name, SHMBUS_TOPIC_NAME_MAX));
        CHECK(sb_name_valid(q->u.open.name, SHMBUS_TOPIC_NAME_MAX));
        CHECK((q->u.open.flags & ~(uint32_t)SHMBUS_OPEN_NOCREATE) == 0);
        CHECK(q->u.open.mode <= SHMBUS_RELIABLE);
        CHECK((q->u.open.topic_flags & ~(uint32_t)SHMBUS_TOPIC_EXCLUSIVE) == 0);
        break;
    case SB_MSG_SUB_ADD:
        CHECK(terminated(q->u.sub.group, sizeof(q->u.sub.group)));
        CHECK(q->u.sub.group[0] == '\0' || name_ok(q->u.sub.group, SHMBUS_GROUP_NAME_MAX));
        check_sub_ack(&q->u.sub);
        break;
    case SB_MSG_LIST:
        CHECK(terminated(q->u.list.after, sizeof(q->u.list.after)));
        break;
    case SB_MSG_REMOVE:
        CHECK(terminated(q->u.remove.name, sizeof(q->u.remove.name)));
        CHECK(sb_name_valid(q->u.remove.name, SHMBUS_TOPIC_NAME_MAX));
        CHECK((q->u.remove.flags & ~(uint32_t)SHMBUS_REMOVE_FORCE) == 0);
        break;
    case SB_MSG_BUS:
        CHECK(q->u.bus.zero == 0);
        break;
    default:
        break;
    }
}

static void fuzz_req(const uint8_t *data, size_t size)
{
    struct sb_wire_req q;
    const char *why = NULL;
    int rc = sb_wire_decode_req(data, size, &q, &why);

    if (rc == 0) {
        check_req(data, size, &q);
        return;
    }
    CHECK(why != NULL && why[0] != '\0');
    CHECK(rc == SHMBUS_ERR_PROTOCOL || rc == SHMBUS_ERR_PROTO_VERSION ||
          rc == SHMBUS_ERR_BAD_NAME || rc == SHMBUS_ERR_INVALID);
    if (rc == SHMBUS_ERR_PROTO_VERSION) /* the header is kept for the reply */
        CHECK(memcmp(&q.hdr, data, sizeof(q.hdr)) == 0);
}

static void fuzz_reply(const uint8_t *data, size_t size, uint32_t req)
{
    const size_t hl = sizeof(struct sb_wire_hdr);
    const void *body = NULL;
    struct sb_wire_hdr h;
    int rc = sb_wire_decode_reply(data, size, req, &body);

    if (rc >= 0) {
        CHECK(size >= hl && body == data + hl && (size_t)rc == size - hl);
        memcpy(&h, data, hl);
        CHECK(h.type == SB_MSG_OK && h.req == req);
        return;
    }
    if (rc == SHMBUS_ERR_PROTOCOL || rc == SHMBUS_ERR_PROTO_VERSION)
        return;
    /* Any other code came from an ERR reply to this very request. */
    CHECK(size == hl + sizeof(struct sb_wire_err));
    memcpy(&h, data, hl);
    CHECK(h.type == SB_MSG_ERR && h.req == req);
}

/* What an accepted NATS reply body of @p size bytes guarantees: the
 * count's length, a known state, no topic when OFF, terminated strings,
 * and each stored topic's id above the one before (from @p after), a
 * direction, no unknown flag, a valid name. */
static void check_nats(size_t size, int count, uint64_t after, const shmbus_nats_info *in,
                       const shmbus_nats_topic *t, unsigned cap)
{
    const uint32_t dirs = SHMBUS_NATS_EXPORT | SHMBUS_NATS_IMPORT;

    CHECK(count >= 0 && (unsigned)count <= SB_WIRE_NATS_MAX);
    CHECK(size ==
          sizeof(struct sb_wire_nats_ok) + (size_t)count * sizeof(struct sb_wire_nats_topic));
    CHECK(in->state <= SHMBUS_NATS_CLOSED);
    CHECK(in->state != SHMBUS_NATS_OFF || (count == 0 && in->topics == 0));
    CHECK(terminated(in->server, sizeof(in->server)) &&
          terminated(in->origin, sizeof(in->origin)) && terminated(in->prefix, sizeof(in->prefix)));
    for (int i = 0; i < count && (unsigned)i < cap; i++) {
        CHECK(t[i].id > after);
        after = t[i].id;
        CHECK((t[i].flags & dirs) != 0 && (t[i].flags & ~(dirs | SHMBUS_NATS_PERSIST)) == 0);
        CHECK(terminated(t[i].name, sizeof(t[i].name)));
        CHECK(name_ok(t[i].name, SHMBUS_TOPIC_NAME_MAX));
    }
}

/* The input as a NATS reply body, paged from 0 and from its first id,
 * every topic stored and only the first. */
static void fuzz_nats(const uint8_t *data, size_t size)
{
    static shmbus_nats_topic t[SB_WIRE_NATS_MAX];
    shmbus_nats_info in;
    int n = sb_monitor_nats_page(data, size, 0, &in, t, SB_WIRE_NATS_MAX);

    CHECK(n >= 0 || n == SHMBUS_ERR_PROTOCOL);
    if (n < 0)
        return;
    check_nats(size, n, 0, &in, t, SB_WIRE_NATS_MAX);
    CHECK(sb_monitor_nats_page(data, size, 0, &in, t, 1) == n);
    if (n > 0) /* the first id is not above itself */
        CHECK(sb_monitor_nats_page(data, size, t[0].id, &in, t, 1) == SHMBUS_ERR_PROTOCOL);
}

/* The name checks on the input as a string, against name_ok(). */
static void fuzz_names(const uint8_t *data, size_t size)
{
    char s[256], f[SHMBUS_TOPIC_NAME_MAX + 1];
    size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
    int valid;

    memcpy(s, data, n);
    s[n] = '\0';
    CHECK(sb_name_valid(s, SHMBUS_TOPIC_NAME_MAX) == name_ok(s, SHMBUS_TOPIC_NAME_MAX));
    CHECK(sb_name_valid(s, SHMBUS_GROUP_NAME_MAX) == name_ok(s, SHMBUS_GROUP_NAME_MAX));
    valid = sb_name_bus_valid(s);
    CHECK(valid == (strlen(s) >= 1 && strlen(s) <= SHMBUS_BUS_NAME_MAX &&
                    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
                        strlen(s)));
    if (sb_wire_put_name(f, sizeof(f), s) == 0)
        CHECK(strlen(s) < sizeof(f) && strcmp(f, s) == 0);
    else
        CHECK(strlen(s) >= sizeof(f));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_wire_hdr h;

    fuzz_req(data, size);
    fuzz_reply(data, size, 0);
    if (size >= sizeof(h)) {
        memcpy(&h, data, sizeof(h));
        fuzz_reply(data, size, h.req);
        fuzz_reply(data, size, h.req + 1);
    }
    fuzz_nats(data, size);
    fuzz_names(data, size);
    return 0;
}

#ifdef FUZZ_WIRE_SEEDS
/* ------------------------------------------------------ seed generator */

static int seed_write(const char *dir, const char *name, uint16_t type, const void *body,
                      uint32_t len)
{
    struct sb_wire_hdr h = {SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, type, len, 7};
    char path[4096];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    ok = fwrite(&h, sizeof(h), 1, f) == 1 && (len == 0 || fwrite(body, len, 1, f) == 1);
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int seed_requests(const char *dir)
{
    struct sb_wire_hello hello = {.pid = 1234};
    struct sb_wire_open open = {.mode = SHMBUS_RELIABLE, .capacity = 8, .max_msg_size = 64};
    struct sb_wire_ref ref = {.topic = 1, .slot = 2};
    struct sb_wire_sub sub = {.topic = 1};
    struct sb_wire_list list = {{0}};
    struct sb_wire_bridge bridge = {.after = 3};
    struct sb_wire_nats nats = {.after = 2};
    struct sb_wire_remove rm = {.flags = SHMBUS_REMOVE_FORCE};
    struct sb_wire_bus bus = {0};
    int rc = 0;

    sb_wire_put_name(hello.name, sizeof(hello.name), "seed");
    sb_wire_put_name(open.name, sizeof(open.name), "orders.eu:1");
    sb_wire_put_name(sub.group, sizeof(sub.group), "workers");
    sb_wire_put_name(list.after, sizeof(list.after), "orders");
    rc |= seed_write(dir, "req-hello", SB_MSG_HELLO, &hello, sizeof(hello));
    rc |= seed_write(dir, "req-open", SB_MSG_OPEN, &open, sizeof(open));
    open.flags = SHMBUS_OPEN_NOCREATE;
    open.topic_flags = SHMBUS_TOPIC_EXCLUSIVE;
    rc |= seed_write(dir, "req-open-nocreate", SB_MSG_OPEN, &open, sizeof(open));
    rc |= seed_write(dir, "req-close", SB_MSG_CLOSE, &ref, sizeof(ref));
    rc |= seed_write(dir, "req-pub-add", SB_MSG_PUB_ADD, &ref, sizeof(ref));
    rc |= seed_write(dir, "req-pub-del", SB_MSG_PUB_DEL, &ref, sizeof(ref));
    rc |= seed_write(dir, "req-sub-add", SB_MSG_SUB_ADD, &sub, sizeof(sub));
    sub.flags = SB_WIRE_SUB_ACK;
    sub.max_deliveries = 3;
    sb_wire_put_name(sub.dead_letter, sizeof(sub.dead_letter), "orders.poison");
    rc |= seed_write(dir, "req-sub-add-ack", SB_MSG_SUB_ADD, &sub, sizeof(sub));
    rc |= seed_write(dir, "req-sub-del", SB_MSG_SUB_DEL, &ref, sizeof(ref));
    rc |= seed_write(dir, "req-sub-adopt", SB_MSG_SUB_ADOPT, &ref, sizeof(ref));
    rc |= seed_write(dir, "req-list", SB_MSG_LIST, &list, sizeof(list));
    rc |= seed_write(dir, "req-bridge", SB_MSG_BRIDGE, &bridge, sizeof(bridge));
    rc |= seed_write(dir, "req-nats", SB_MSG_NATS, &nats, sizeof(nats));
    sb_wire_put_name(rm.name, sizeof(rm.name), "orders.eu:1");
    rc |= seed_write(dir, "req-remove", SB_MSG_REMOVE, &rm, sizeof(rm));
    rc |= seed_write(dir, "req-bus", SB_MSG_BUS, &bus, sizeof(bus));
    return rc;
}

static int seed_replies(const char *dir)
{
    struct sb_wire_hello_ok hello = {.session = 1, .daemon_pid = 99};
    struct sb_wire_open_ok open = {.topic = 1, .created = 1};
    struct sb_wire_sub_ok sub = {.slot = 0, .group = 1};
    struct sb_wire_err err = {.code = SHMBUS_ERR_MISMATCH};
    uint8_t list[sizeof(struct sb_wire_list_ok) + sizeof(struct sb_wire_topic)] = {0};
    struct sb_wire_list_ok lh = {.count = 1};
    struct sb_wire_topic e = {.mode = SHMBUS_LOSSY, .capacity = 8, .max_msg_size = 64};
    int rc = 0;

    snprintf(err.text, sizeof(err.text), "topic exists with capacity 8, asked 16");
    snprintf(e.name, sizeof(e.name), "orders");
    memcpy(list, &lh, sizeof(lh));
    memcpy(list + sizeof(lh), &e, sizeof(e));
    rc |= seed_write(dir, "reply-hello", SB_MSG_OK, &hello, sizeof(hello));
    rc |= seed_write(dir, "reply-open", SB_MSG_OK, &open, sizeof(open));
    rc |= seed_write(dir, "reply-sub", SB_MSG_OK, &sub, sizeof(sub));
    rc |= seed_write(dir, "reply-empty", SB_MSG_OK, NULL, 0);
    rc |= seed_write(dir, "reply-list", SB_MSG_OK, list, sizeof(list));
    rc |= seed_write(dir, "reply-err", SB_MSG_ERR, &err, sizeof(err));
    return rc;
}

/* A NATS reply body alone, as sb_monitor_nats_page() reads it: a
 * connected link with two topics. */
static int seed_nats(const char *dir)
{
    uint8_t b[sizeof(struct sb_wire_nats_ok) + 2 * sizeof(struct sb_wire_nats_topic)];
    shmbus_nats_info in = {.state = SHMBUS_NATS_CONNECTED, .topics = 2, .msgs_out = 5};
    shmbus_nats_topic t = {.id = 3, .flags = SHMBUS_NATS_EXPORT | SHMBUS_NATS_PERSIST};
    struct sb_wire_nats_ok ok;
    struct sb_wire_nats_topic w;
    char path[4096];
    FILE *f;
    int good;

    memset(&ok, 0, sizeof(ok));
    snprintf(in.server, sizeof(in.server), "nats://127.0.0.1:4222");
    snprintf(in.origin, sizeof(in.origin), "host_default");
    snprintf(in.prefix, sizeof(in.prefix), "shmbus");
    sb_monitor_nats_put(&ok, &in);
    ok.count = 2;
    memcpy(b, &ok, sizeof(ok));
    snprintf(t.name, sizeof(t.name), "prices.eu");
    sb_monitor_nats_topic_put(&w, &t);
    memcpy(b + sizeof(ok), &w, sizeof(w));
    t.id = 9;
    t.flags = SHMBUS_NATS_IMPORT;
    sb_monitor_nats_topic_put(&w, &t);
    memcpy(b + sizeof(ok) + sizeof(w), &w, sizeof(w));
    snprintf(path, sizeof(path), "%s/body-nats", dir);
    f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    good = fwrite(b, sizeof(b), 1, f) == 1;
    return fclose(f) == 0 && good ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    return seed_requests(argv[1]) | seed_replies(argv[1]) | seed_nats(argv[1]) ? 1 : 0;
}
#endif
