/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Monitoring (registry/monitor.c). The monitoring bodies of the control
 * protocol: the LIST, BRIDGE and NATS replies are encoded and decoded field
 * by field, and their bytes must stay those of protocol 3, which older
 * clients and daemons copied to and from the public structs as they were.
 * Offsets are written out here as numbers, independently of wire.h.
 * shmbus_topic_groups_get() is tested in test_monitor_groups.c.
 */
#include "daemonutil.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "registry/monitor.h"

static uint32_t u32_at(const void *buf, size_t off)
{
    uint32_t v;

    memcpy(&v, (const uint8_t *)buf + off, sizeof(v));
    return v;
}

static uint64_t u64_at(const void *buf, size_t off)
{
    uint64_t v;

    memcpy(&v, (const uint8_t *)buf + off, sizeof(v));
    return v;
}

static void u32_put(void *buf, size_t off, uint32_t v)
{
    memcpy((uint8_t *)buf + off, &v, sizeof(v));
}

static void u64_put(void *buf, size_t off, uint64_t v)
{
    memcpy((uint8_t *)buf + off, &v, sizeof(v));
}

/* A listed topic with a distinct value in every field. */
static shmbus_topic_entry entry_sample(void)
{
    shmbus_topic_entry e;

    /* Zeroed padding too: that is what an older peer sent. */
    memset(&e, 0, sizeof(e));
    snprintf(e.name, sizeof(e.name), "orders.eu");
    e.mode = SHMBUS_RELIABLE;
    e.flags = SHMBUS_TOPIC_EXCLUSIVE;
    e.capacity = 4096;
    e.max_msg_size = 512;
    e.max_subscribers = 33;
    e.max_groups = 7;
    e.clients = 5;
    e.publishers = 3;
    e.subscribers = 2;
    e.segment_size = 0x0102030405060708ull;
    return e;
}

static void test_monitor_topic_put_offsets(void **state)
{
    shmbus_topic_entry e = entry_sample();
    struct sb_wire_topic w;
    const uint8_t *b = (const uint8_t *)&w;

    (void)state;
    memset(&w, 0xa5, sizeof(w));
    sb_monitor_topic_put(&w, &e);
    assert_int_equal(sizeof(w), 184);
    assert_string_equal((const char *)b, "orders.eu");
    for (size_t i = strlen("orders.eu"); i < 132; i++)
        assert_int_equal(b[i], 0); /* NUL padding, then the 3 bytes of padding */
    assert_int_equal(u32_at(b, 132), SHMBUS_RELIABLE);
    assert_int_equal(u32_at(b, 136), SHMBUS_TOPIC_EXCLUSIVE);
    assert_int_equal(u32_at(b, 140), 4096);
    assert_int_equal(u32_at(b, 144), 512);
    assert_int_equal(u32_at(b, 148), 33);
    assert_int_equal(u32_at(b, 152), 7);
    assert_int_equal(u32_at(b, 156), 5);
    assert_int_equal(u32_at(b, 160), 3);
    assert_int_equal(u32_at(b, 164), 2);
    assert_int_equal(u32_at(b, 168), 0);
    assert_true(u64_at(b, 176) == 0x0102030405060708ull);
}

/* Older peers sent and read shmbus_topic_entry itself: the encoding is
 * that struct's bytes, and their bytes decode to the same entry. */
static void test_monitor_topic_bytes_are_the_old_entry(void **state)
{
    shmbus_topic_entry e = entry_sample(), back;
    struct sb_wire_topic w;

    (void)state;
    assert_int_equal(sizeof(w), sizeof(e));
    sb_monitor_topic_put(&w, &e);
    assert_memory_equal(&w, &e, sizeof(e));
    memcpy(&w, &e, sizeof(e));
    sb_monitor_topic_get(&back, &w);
    assert_memory_equal(&back, &e, sizeof(e));
}

static void test_monitor_topic_get_terminates_name(void **state)
{
    struct sb_wire_topic w;
    shmbus_topic_entry e;

    (void)state;
    memset(&w, 0, sizeof(w));
    memset(w.name, 'a', sizeof(w.name));
    sb_monitor_topic_get(&e, &w);
    assert_int_equal(strlen(e.name), SHMBUS_TOPIC_NAME_MAX);
}

static void test_monitor_list_ok_offsets(void **state)
{
    (void)state;
    assert_int_equal(sizeof(struct sb_wire_list_ok), 8);
    assert_int_equal(offsetof(struct sb_wire_list_ok, count), 0);
    assert_int_equal(offsetof(struct sb_wire_list_ok, entries), 8);
}

/* The totals as protocol 3 lays them out: listen, twelve uint64 from 64,
 * the count at 160. Each total gets its position plus one. */
static void test_monitor_bridge_get_offsets(void **state)
{
    static const char *const totals[] = {"connections", "accepted",     "slow_closed",  "refused",
                                         "auth_failed", "auth_expired", "proto_errors", "msgs_in",
                                         "msgs_out",    "bad_cells",    "memory",       "evicted"};
    uint8_t b[168];
    struct sb_wire_bridge_ok w;
    shmbus_bridge_info in;
    uint64_t got[12];

    (void)state;
    assert_int_equal(sizeof(w), sizeof(b));
    memset(b, 0, sizeof(b));
    memset(b, 'x', 64); /* listen, unterminated */
    for (size_t i = 0; i < 12; i++)
        u64_put(b, 64 + 8 * i, i + 1);
    u32_put(b, 160, 0);
    memcpy(&w, b, sizeof(w));
    sb_monitor_bridge_get(&in, &w);
    assert_int_equal(strlen(in.listen), 63);
    got[0] = in.connections;
    got[1] = in.accepted;
    got[2] = in.slow_closed;
    got[3] = in.refused;
    got[4] = in.auth_failed;
    got[5] = in.auth_expired;
    got[6] = in.proto_errors;
    got[7] = in.msgs_in;
    got[8] = in.msgs_out;
    got[9] = in.bad_cells;
    got[10] = in.memory;
    got[11] = in.evicted;
    for (size_t i = 0; i < 12; i++)
        if (got[i] != i + 1)
            fail_msg("%s: read %llu, the value at offset %zu is %zu", totals[i],
                     (unsigned long long)got[i], 64 + 8 * i, i + 1);
    assert_int_equal(offsetof(struct sb_wire_bridge_ok, count), 160);
}

/* One connection as protocol 3 lays it out: msgs_out (24) before msgs_in (32). */
static void test_monitor_conn_get_offsets(void **state)
{
    uint8_t b[240];
    struct sb_wire_bridge_conn w;
    shmbus_bridge_conn c;

    (void)state;
    assert_int_equal(sizeof(w), sizeof(b));
    memset(b, 0, sizeof(b));
    u64_put(b, 0, 11);
    u64_put(b, 8, 12);
    u64_put(b, 16, 13);
    u64_put(b, 24, 14);
    u64_put(b, 32, 15);
    u64_put(b, 40, 16);
    u32_put(b, 48, 17);
    u32_put(b, 52, 18);
    u32_put(b, 56, SHMBUS_BRIDGE_PROTO_RESP);
    u32_put(b, 60, SHMBUS_BRIDGE_AUTHED | SHMBUS_BRIDGE_PAUSED);
    memcpy(b + 64, "10.0.0.1:5000", 14);
    memcpy(b + 112, "feeder", 7);
    memset(b + 144, 's', 96); /* subs, unterminated */
    memcpy(&w, b, sizeof(w));
    sb_monitor_conn_get(&c, &w);
    assert_int_equal(c.id, 11);
    assert_int_equal(c.age_ms, 12);
    assert_int_equal(c.buffered, 13);
    assert_int_equal(c.msgs_out, 14);
    assert_int_equal(c.msgs_in, 15);
    assert_int_equal(c.memory, 16);
    assert_int_equal(c.channels, 17);
    assert_int_equal(c.patterns, 18);
    assert_int_equal(c.proto, SHMBUS_BRIDGE_PROTO_RESP);
    assert_int_equal(c.flags, SHMBUS_BRIDGE_AUTHED | SHMBUS_BRIDGE_PAUSED);
    assert_string_equal(c.peer, "10.0.0.1:5000");
    assert_string_equal(c.name, "feeder");
    assert_int_equal(strlen(c.subs), 95);
}

/* The daemon's encoding of the totals: listen, then each total at its
 * protocol-3 offset; the client decodes what was encoded. */
static void test_monitor_bridge_put_roundtrip(void **state)
{
    shmbus_bridge_info in, back;
    struct sb_wire_bridge_ok w;

    (void)state;
    memset(&in, 0, sizeof(in));
    snprintf(in.listen, sizeof(in.listen), "127.0.0.1:6379");
    for (size_t i = 0; i < 12; i++)
        u64_put(&in, 64 + 8 * i, 100 + i); /* the totals follow listen, one uint64_t each */
    memset(&w, 0, sizeof(w));
    sb_monitor_bridge_put(&w, &in);
    assert_string_equal((const char *)&w, "127.0.0.1:6379");
    assert_true(u64_at(&w, 64) == in.connections);
    assert_true(u64_at(&w, 80) == in.slow_closed);
    assert_true(u64_at(&w, 120) == in.msgs_in);
    assert_true(u64_at(&w, 144) == in.memory);
    assert_true(u64_at(&w, 152) == in.evicted);
    sb_monitor_bridge_get(&back, &w);
    assert_memory_equal(&back, &in, sizeof(in));
}

static void test_monitor_conn_put_roundtrip(void **state)
{
    shmbus_bridge_conn c = {.id = 4,
                            .age_ms = 5,
                            .buffered = 6,
                            .msgs_in = 7,
                            .msgs_out = 8,
                            .memory = 9,
                            .channels = 2,
                            .patterns = 1,
                            .proto = SHMBUS_BRIDGE_PROTO_JSON,
                            .flags = SHMBUS_BRIDGE_AUTHED};
    shmbus_bridge_conn back;
    struct sb_wire_bridge_conn w;

    (void)state;
    snprintf(c.peer, sizeof(c.peer), "[::1]:40000");
    snprintf(c.name, sizeof(c.name), "dash");
    snprintf(c.subs, sizeof(c.subs), "prices,p:orders.*");
    sb_monitor_conn_put(&w, &c);
    assert_true(u64_at(&w, 24) == 8); /* msgs_out */
    assert_true(u64_at(&w, 32) == 7); /* msgs_in */
    assert_int_equal(u32_at(&w, 56), SHMBUS_BRIDGE_PROTO_JSON);
    assert_string_equal((const char *)&w + 64, "[::1]:40000");
    sb_monitor_conn_get(&back, &w);
    assert_memory_equal(&back, &c, sizeof(c));
}

/* Only the strings travel: not what their fields hold after the NUL (the
 * end of a client's earlier, longer name), and every field ends in NUL. */
static void test_monitor_put_sends_nothing_after_nul(void **state)
{
    shmbus_bridge_conn c;
    shmbus_topic_entry e = entry_sample();
    shmbus_bridge_info in;
    struct sb_wire_bridge_conn wc;
    struct sb_wire_bridge_ok wb;
    struct sb_wire_topic wt;
    const uint8_t *b = (const uint8_t *)&wc;

    (void)state;
    memset(&c, 0, sizeof(c));
    memset(c.name, 'x', sizeof(c.name)); /* a long name, then "ab" set over it */
    memcpy(c.name, "ab", 3);
    memset(c.peer, 'p', sizeof(c.peer)); /* unterminated */
    memset(c.subs, 's', sizeof(c.subs));
    sb_monitor_conn_put(&wc, &c);
    assert_string_equal((const char *)b + 112, "ab");
    for (size_t i = 112 + 2; i < 144; i++)
        assert_int_equal(b[i], 0);
    assert_int_equal(b[64 + 47], 0);
    assert_int_equal(b[144 + 95], 0);
    memset(e.name + 10, 'y', sizeof(e.name) - 10); /* "orders.eu\0yyy..." */
    sb_monitor_topic_put(&wt, &e);
    for (size_t i = strlen("orders.eu"); i < sizeof(wt.name); i++)
        assert_int_equal(wt.name[i], 0);
    memset(&in, 0, sizeof(in));
    memset(in.listen, 'l', sizeof(in.listen));
    memcpy(in.listen, "h:1", 4);
    sb_monitor_bridge_put(&wb, &in);
    for (size_t i = 3; i < sizeof(wb.listen); i++)
        assert_int_equal(wb.listen[i], 0);
}

/* The daemon's counters fill the COUNTER totals and leave the gauges. */
static void test_monitor_counters_read_leaves_gauges(void **state)
{
    struct sb_monitor_bridge_counters n;
    shmbus_bridge_info in;

    (void)state;
    memset(&in, 0, sizeof(in));
    in.connections = 3;
    in.memory = 4096;
    atomic_init(&n.accepted, 10);
    atomic_init(&n.slow_closed, 11);
    atomic_init(&n.refused, 12);
    atomic_init(&n.auth_failed, 13);
    atomic_init(&n.auth_expired, 14);
    atomic_init(&n.proto_errors, 15);
    atomic_init(&n.msgs_in, 16);
    atomic_init(&n.msgs_out, 17);
    atomic_init(&n.bad_cells, 18);
    atomic_init(&n.evicted, 19);
    sb_monitor_counters_read(&n, &in);
    assert_int_equal(in.connections, 3);
    assert_int_equal(in.memory, 4096);
    assert_int_equal(in.accepted, 10);
    assert_int_equal(in.proto_errors, 15);
    assert_int_equal(in.msgs_out, 17);
    assert_int_equal(in.evicted, 19);
    assert_int_equal(sizeof(n), 10 * sizeof(uint64_t));
}

/* ------------------------------------------------------------------ NATS */

/* The link of a NATS reply with a distinct value in every field. */
static shmbus_nats_info nats_info_sample(void)
{
    shmbus_nats_info in;

    memset(&in, 0, sizeof(in));
    snprintf(in.server, sizeof(in.server), "nats://10.1.2.3:4222");
    snprintf(in.origin, sizeof(in.origin), "host1_default");
    snprintf(in.prefix, sizeof(in.prefix), "shmbus.eu");
    in.state = SHMBUS_NATS_CONNECTED;
    in.topics = 2;
    in.reconnects = 3;
    in.refused = 4;
    in.errors = 5;
    in.msgs_out = 6;
    in.msgs_in = 7;
    in.lost_out = 8;
    in.lost_in = 9;
    in.dups = 10;
    in.pending = 11;
    return in;
}

/* A federated topic, its counters from @p base on. */
static shmbus_nats_topic nats_topic_sample(uint64_t id, const char *name, uint32_t flags,
                                           uint64_t base)
{
    shmbus_nats_topic t;

    memset(&t, 0, sizeof(t));
    t.id = id;
    snprintf(t.name, sizeof(t.name), "%s", name);
    t.flags = flags;
    t.msgs_out = base;
    t.msgs_in = base + 1;
    t.lost_out = base + 2;
    t.lost_in = base + 3;
    t.dups = base + 4;
    t.pending = base + 5;
    return t;
}

/* The reply as protocol 3 lays it out: server, origin, prefix, state,
 * topics, reconnects, refused, errors, the six sums from 288 in
 * SHMBUS_NATS_TOPIC_COUNTERS' order, the count at 336; and a topic: id,
 * name from 8, flags at 140, the counters from 144. */
static void test_monitor_nats_put_offsets(void **state)
{
    shmbus_nats_info in = nats_info_sample();
    shmbus_nats_topic t = nats_topic_sample(42, "orders.eu", SHMBUS_NATS_EXPORT, 100);
    struct sb_wire_nats_topic wt;
    struct sb_wire_nats_ok w;
    const uint8_t *b = (const uint8_t *)&w;

    (void)state;
    memset(&w, 0xa5, sizeof(w));
    sb_monitor_nats_put(&w, &in);
    assert_string_equal((const char *)b, "nats://10.1.2.3:4222");
    for (size_t i = strlen(in.server); i < 128; i++)
        assert_int_equal(b[i], 0);
    assert_string_equal((const char *)b + 128, "host1_default");
    assert_string_equal((const char *)b + 192, "shmbus.eu");
    assert_int_equal(b[192 + 63], 0);
    assert_int_equal(u32_at(b, 256), SHMBUS_NATS_CONNECTED);
    assert_int_equal(u32_at(b, 260), 2);
    for (size_t i = 0; i < 9; i++) /* reconnects .. pending: 3 .. 11 */
        if (u64_at(b, 264 + 8 * i) != 3 + i)
            fail_msg("offset %zu: %llu, want %zu", 264 + 8 * i,
                     (unsigned long long)u64_at(b, 264 + 8 * i), 3 + i);
    assert_int_equal(offsetof(struct sb_wire_nats_ok, count), 336);
    b = (const uint8_t *)&wt;
    memset(&wt, 0xa5, sizeof(wt));
    sb_monitor_nats_topic_put(&wt, &t);
    assert_true(u64_at(b, 0) == 42);
    assert_string_equal((const char *)b + 8, "orders.eu");
    for (size_t i = 8 + strlen("orders.eu"); i < 140; i++)
        assert_int_equal(b[i], 0); /* NUL padding, then the 3 bytes of padding */
    assert_int_equal(u32_at(b, 140), SHMBUS_NATS_EXPORT);
    for (size_t i = 0; i < 6; i++) /* out, in, lost_out, lost_in, dups, pending */
        assert_true(u64_at(b, 144 + 8 * i) == 100 + i);
}

/* A NATS reply body: the link @p in and @p n topics; @return its length. */
static size_t nats_body(uint8_t *b, const shmbus_nats_info *in, const shmbus_nats_topic *t,
                        uint32_t n)
{
    struct sb_wire_nats_ok ok;
    struct sb_wire_nats_topic w;

    memset(&ok, 0, sizeof(ok));
    sb_monitor_nats_put(&ok, in);
    ok.count = n;
    memcpy(b, &ok, sizeof(ok));
    for (uint32_t i = 0; i < n; i++) {
        sb_monitor_nats_topic_put(&w, &t[i]);
        memcpy(b + sizeof(ok) + i * sizeof(w), &w, sizeof(w));
    }
    return sizeof(ok) + n * sizeof(w);
}

/* What the daemon encodes, the client decodes to the same structs; a cap
 * below the page's count checks every topic and stores the first ones. */
static void test_monitor_nats_page_roundtrip(void **state)
{
    static uint8_t b[SB_WIRE_MAX];
    shmbus_nats_info in = nats_info_sample(), back;
    shmbus_nats_topic t[3], out[3];
    size_t len;

    (void)state;
    t[0] = nats_topic_sample(3, "prices", SHMBUS_NATS_EXPORT | SHMBUS_NATS_IMPORT, 10);
    t[1] = nats_topic_sample(7, "orders:eu.1", SHMBUS_NATS_IMPORT | SHMBUS_NATS_PERSIST, 20);
    t[2] = nats_topic_sample(8, "x", SHMBUS_NATS_EXPORT | SHMBUS_NATS_PERSIST, 30);
    len = nats_body(b, &in, t, 3);
    assert_int_equal(len, 344 + 3 * 192);
    assert_int_equal(sb_monitor_nats_page(b, len, 2, &back, out, 3), 3);
    assert_memory_equal(&back, &in, sizeof(in));
    assert_memory_equal(out, t, sizeof(t));
    memset(out, 0, sizeof(out));
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 1), 3);
    assert_memory_equal(&out[0], &t[0], sizeof(t[0]));
    assert_int_equal(out[1].id, 0);
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, NULL, 0), 3);
    memset(&in, 0, sizeof(in)); /* a daemon without --nats */
    len = nats_body(b, &in, NULL, 0);
    memset(&back, 0xa5, sizeof(back));
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 3), 0);
    assert_memory_equal(&back, &in, sizeof(in));
}

/* Every malformed NATS reply is refused, each for its own reason. */
static void test_monitor_nats_page_refuses_malformed(void **state)
{
    static uint8_t b[SB_WIRE_MAX];
    static const char *const bad_names[] = {"", ".hidden", "a/b", "a b", "caf\xc3\xa9"};
    shmbus_nats_info in = nats_info_sample(), off, back;
    shmbus_nats_topic t[SB_WIRE_NATS_MAX + 1], out[SB_WIRE_NATS_MAX + 1];
    const size_t one = sizeof(struct sb_wire_nats_topic);
    size_t len;

    (void)state;
    for (uint32_t i = 0; i <= SB_WIRE_NATS_MAX; i++)
        t[i] = nats_topic_sample(i + 1, "t", SHMBUS_NATS_EXPORT, i);
    len = nats_body(b, &in, t, 2);
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 2), 2);
    /* Lengths: too short for the link, one byte short or long, a topic
     * fewer or more than the count. */
    assert_int_equal(sb_monitor_nats_page(b, 343, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(sb_monitor_nats_page(b, 0, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(sb_monitor_nats_page(b, len - 1, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(sb_monitor_nats_page(b, len + 1, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(sb_monitor_nats_page(b, len - one, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(sb_monitor_nats_page(b, len + one, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    /* More than a page, with a length that agrees. */
    len = nats_body(b, &in, t, SB_WIRE_NATS_MAX + 1);
    assert_true(len <= sizeof(b));
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, SB_WIRE_NATS_MAX + 1),
                     SHMBUS_ERR_PROTOCOL);
    len = nats_body(b, &in, t, SB_WIRE_NATS_MAX);
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, SB_WIRE_NATS_MAX),
                     (int)SB_WIRE_NATS_MAX);
    /* A state this library does not know. */
    in.state = SHMBUS_NATS_CLOSED + 1;
    len = nats_body(b, &in, t, 1);
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    in.state = SHMBUS_NATS_CLOSED;
    len = nats_body(b, &in, t, 1);
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 2), 1);
    /* A daemon OFF listing topics, or counting them. */
    memset(&off, 0, sizeof(off));
    len = nats_body(b, &off, t, 1);
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    off.topics = 1;
    len = nats_body(b, &off, t, 0);
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    /* Ids: not above `after`, not growing, repeated; after a stored topic
     * too (cap 1). */
    in.state = SHMBUS_NATS_CONNECTED;
    len = nats_body(b, &in, t, 2);
    assert_int_equal(sb_monitor_nats_page(b, len, 1, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(sb_monitor_nats_page(b, len, 9, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    t[1].id = 1;
    len = nats_body(b, &in, t, 2);
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 1), SHMBUS_ERR_PROTOCOL);
    t[1].id = 0;
    len = nats_body(b, &in, t, 2);
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    t[1].id = 2;
    /* Flags: unknown, neither direction, persist alone. */
    for (uint32_t f = 0; f < 16; f++) {
        int want = (f & 8) == 0 && (f & (SHMBUS_NATS_EXPORT | SHMBUS_NATS_IMPORT)) != 0;

        t[1].flags = f;
        len = nats_body(b, &in, t, 2);
        assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 2),
                         want ? 2 : SHMBUS_ERR_PROTOCOL);
    }
    t[1].flags = 0x80000000u | SHMBUS_NATS_EXPORT;
    len = nats_body(b, &in, t, 2);
    assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    t[1].flags = SHMBUS_NATS_IMPORT;
    /* Names that are no topic names. */
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        snprintf(t[1].name, sizeof(t[1].name), "%s", bad_names[i]);
        len = nats_body(b, &in, t, 2);
        assert_int_equal(sb_monitor_nats_page(b, len, 0, &back, out, 2), SHMBUS_ERR_PROTOCOL);
    }
}

/* Strings sent without their NUL come out terminated, and nothing after
 * a string's NUL travels. */
static void test_monitor_nats_strings_terminated(void **state)
{
    static uint8_t b[SB_WIRE_MAX];
    shmbus_nats_info in = nats_info_sample(), back;
    shmbus_nats_topic t = nats_topic_sample(1, "n", SHMBUS_NATS_EXPORT, 0), out;
    struct sb_wire_nats_ok ok;
    struct sb_wire_nats_topic w;

    (void)state;
    memset(in.prefix, 'p', sizeof(in.prefix));
    memcpy(in.prefix, "ab", 3); /* "ab\0ppp...": only "ab" travels */
    sb_monitor_nats_put(&ok, &in);
    for (size_t i = 2; i < sizeof(ok.prefix); i++)
        assert_int_equal(ok.prefix[i], 0);
    memset(ok.server, 's', sizeof(ok.server));
    memset(ok.origin, 'o', sizeof(ok.origin));
    ok.count = 1;
    memcpy(b, &ok, sizeof(ok));
    sb_monitor_nats_topic_put(&w, &t);
    memset(w.name, 'n', sizeof(w.name)); /* unterminated: 128 'n' remain, a valid name */
    memcpy(b + sizeof(ok), &w, sizeof(w));
    assert_int_equal(sb_monitor_nats_page(b, sizeof(ok) + sizeof(w), 0, &back, &out, 1), 1);
    assert_int_equal(strlen(back.server), sizeof(back.server) - 1);
    assert_int_equal(strlen(back.origin), sizeof(back.origin) - 1);
    assert_string_equal(back.prefix, "ab");
    assert_int_equal(strlen(out.name), SHMBUS_TOPIC_NAME_MAX);
}

/* ------------------------------------------------------- a hostile daemon */

/* A daemon that answers HELLO, then every request with the body the test
 * put in reply[]: the client must bound what it reads from any reply. */
struct fake {
    char dir[64];
    char bus[16];
    int lsock;
    pthread_t thread;
    pthread_mutex_t mu;
    int conn;                   /* the client's socket, or -1; under mu */
    uint8_t reply[SB_WIRE_MAX]; /* under mu */
    size_t len;                 /* under mu */
};

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_hdr h;
    ssize_t n;
    int s = accept(f->lsock, NULL, NULL);

    pthread_mutex_lock(&f->mu);
    f->conn = s;
    pthread_mutex_unlock(&f->mu);
    while (s >= 0 && (n = recv(s, buf, sizeof(buf), 0)) >= (ssize_t)sizeof(h)) {
        memcpy(&h, buf, sizeof(h));
        if (h.type == SB_MSG_HELLO) {
            struct sb_wire_hello_ok ok = {.session = 1, .daemon_pid = (uint32_t)getpid()};

            sb_wire_send(s, SB_MSG_OK, h.req, &ok, sizeof(ok), -1);
            continue;
        }
        pthread_mutex_lock(&f->mu);
        sb_wire_send(s, SB_MSG_OK, h.req, f->reply, (uint32_t)f->len, -1);
        pthread_mutex_unlock(&f->mu);
    }
    if (s >= 0)
        close(s);
    return NULL;
}

static int fake_setup(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct sockaddr_un a = {.sun_family = AF_UNIX};

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/shmbus-monitor-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->bus, sizeof(f->bus), "fake%d", (int)getpid());
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s.sock", f->dir, f->bus);
    f->lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    assert_true(f->lsock >= 0);
    assert_int_equal(bind(f->lsock, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lsock, 1), 0);
    pthread_mutex_init(&f->mu, NULL);
    f->conn = -1;
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    setenv("SHMBUS_RUNTIME_DIR", f->dir, 1);
    *state = f;
    return 0;
}

static int fake_teardown(void **state)
{
    struct fake *f = *state;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int s;

    snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s.sock", f->dir, f->bus);
    /* A test that failed midway leaves its client open, or never connected:
     * end the fake's connection, or hand it one that ends at once. */
    pthread_mutex_lock(&f->mu);
    s = f->conn;
    if (s >= 0)
        shutdown(s, SHUT_RDWR);
    pthread_mutex_unlock(&f->mu);
    if (s < 0 && (s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) >= 0) {
        (void)connect(s, (struct sockaddr *)&a, sizeof(a));
        close(s);
    }
    pthread_join(f->thread, NULL);
    close(f->lsock);
    pthread_mutex_destroy(&f->mu);
    unlink(a.sun_path);
    rmdir(f->dir);
    unsetenv("SHMBUS_RUNTIME_DIR");
    free(f);
    return 0;
}

/* The body of the replies from now on: @p len bytes of @p body. */
static void fake_reply(struct fake *f, const void *body, size_t len)
{
    pthread_mutex_lock(&f->mu);
    memcpy(f->reply, body, len);
    f->len = len;
    pthread_mutex_unlock(&f->mu);
}

/* A LIST reply of @p count topics and @p len bytes (NUL topics after the
 * first, whose name fills its field without a terminator). */
static void fake_list(struct fake *f, uint32_t count, size_t len)
{
    static uint8_t b[SB_WIRE_MAX];
    struct sb_wire_list_ok ok = {.count = count};

    memset(b, 0, sizeof(b));
    memcpy(b, &ok, sizeof(ok));
    memset(b + sizeof(ok), 'n', SHMBUS_TOPIC_NAME_MAX + 1);
    fake_reply(f, b, len);
}

static void test_monitor_list_bounds_hostile_replies(void **state)
{
    struct fake *f = *state;
    shmbus_topic_entry e[SB_WIRE_LIST_MAX + 1];
    const size_t ok = sizeof(struct sb_wire_list_ok), one = sizeof(struct sb_wire_topic);
    shmbus_bus *bus;

    assert_shmbus_ok(shmbus_connect(f->bus, &bus));
    fake_list(f, 0, 4); /* shorter than the count */
    assert_int_equal(shmbus_list(bus, "", e, 4), SHMBUS_ERR_PROTOCOL);
    fake_list(f, 2, ok + one); /* a count the body does not hold */
    assert_int_equal(shmbus_list(bus, "", e, 4), SHMBUS_ERR_PROTOCOL);
    fake_list(f, 1, ok + 2 * one); /* a body longer than its count */
    assert_int_equal(shmbus_list(bus, "", e, 4), SHMBUS_ERR_PROTOCOL);
    fake_list(f, SB_WIRE_LIST_MAX + 1, ok + (SB_WIRE_LIST_MAX + 1) * one); /* over a page */
    assert_int_equal(shmbus_list(bus, "", e, SB_WIRE_LIST_MAX + 1), SHMBUS_ERR_PROTOCOL);
    fake_list(f, 1, ok + one); /* an unterminated name */
    assert_int_equal(shmbus_list(bus, "", e, 4), 1);
    assert_int_equal(strlen(e[0].name), SHMBUS_TOPIC_NAME_MAX);
    shmbus_close(bus);
}

/* A LIST reply of the @p count topics named in @p names, in that order. */
static void fake_list_names(struct fake *f, const char *const *names, uint32_t count)
{
    static uint8_t b[SB_WIRE_MAX];
    struct sb_wire_list_ok ok = {.count = count};
    struct sb_wire_topic t;

    memset(b, 0, sizeof(b));
    memcpy(b, &ok, sizeof(ok));
    for (uint32_t i = 0; i < count; i++) {
        memset(&t, 0, sizeof(t));
        snprintf(t.name, sizeof(t.name), "%s", names[i]);
        memcpy(b + sizeof(ok) + i * sizeof(t), &t, sizeof(t));
    }
    fake_reply(f, b, sizeof(ok) + count * sizeof(t));
}

/* Paging by name ends only if the names grow: a reply whose names do not
 * sort strictly after the page's `after`, each after the one before, is
 * refused, or `shmbus stat` would ask for the same page for ever. */
static void test_monitor_list_refuses_names_that_do_not_grow(void **state)
{
    struct fake *f = *state;
    shmbus_topic_entry e[2 * SB_WIRE_LIST_MAX];
    char names[SB_WIRE_LIST_MAX][16];
    const char *full[SB_WIRE_LIST_MAX];
    const char *const up[] = {"a", "b"}, *const down[] = {"b", "a"}, *const twice[] = {"a", "a"};
    shmbus_bus *bus;

    for (unsigned i = 0; i < SB_WIRE_LIST_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "t%02u", i);
        full[i] = names[i];
    }
    assert_shmbus_ok(shmbus_connect(f->bus, &bus));
    fake_list_names(f, up, 2);
    assert_int_equal(shmbus_list(bus, "", e, 4), 2);
    assert_string_equal(e[1].name, "b");
    fake_list_names(f, down, 2); /* out of order */
    assert_int_equal(shmbus_list(bus, "", e, 4), SHMBUS_ERR_PROTOCOL);
    fake_list_names(f, twice, 2); /* a name twice */
    assert_int_equal(shmbus_list(bus, "", e, 4), SHMBUS_ERR_PROTOCOL);
    fake_list_names(f, up, 2); /* the first name is `after` itself */
    assert_int_equal(shmbus_list(bus, "a", e, 4), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(shmbus_list(bus, "c", e, 4), SHMBUS_ERR_PROTOCOL); /* before it */
    /* The same full page for every request: the second is not past the
     * first's last name. */
    fake_list_names(f, full, SB_WIRE_LIST_MAX);
    assert_int_equal(shmbus_list(bus, "", e, 2 * SB_WIRE_LIST_MAX), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(shmbus_list(bus, "", e, SB_WIRE_LIST_MAX), SB_WIRE_LIST_MAX);
    shmbus_close(bus);
}

/* A BRIDGE reply of @p count connections and @p len bytes: listen and
 * every string of the connections unterminated, ids from @p first_id. */
static void fake_bridge(struct fake *f, uint32_t count, uint64_t first_id, size_t len)
{
    static uint8_t b[SB_WIRE_MAX];
    struct sb_wire_bridge_ok ok;
    struct sb_wire_bridge_conn c;

    memset(b, 0, sizeof(b));
    memset(&ok, 0, sizeof(ok));
    memset(ok.listen, 'l', sizeof(ok.listen));
    ok.count = count;
    memcpy(b, &ok, sizeof(ok));
    for (uint32_t i = 0; i < count && sizeof(ok) + (i + 1) * sizeof(c) <= sizeof(b); i++) {
        memset(&c, 'c', sizeof(c));
        c.id = first_id + i;
        memcpy(b + sizeof(ok) + i * sizeof(c), &c, sizeof(c));
    }
    fake_reply(f, b, len);
}

static void test_monitor_bridge_bounds_hostile_replies(void **state)
{
    struct fake *f = *state;
    shmbus_bridge_conn c[SB_WIRE_BRIDGE_MAX + 1];
    shmbus_bridge_info in;
    const size_t ok = sizeof(struct sb_wire_bridge_ok), one = sizeof(struct sb_wire_bridge_conn);
    const unsigned cap = SB_WIRE_BRIDGE_MAX + 1;
    shmbus_bus *bus;

    assert_shmbus_ok(shmbus_connect(f->bus, &bus));
    fake_bridge(f, 0, 1, ok - 8); /* shorter than the totals */
    assert_int_equal(shmbus_bridge_stat(bus, 0, &in, c, cap), SHMBUS_ERR_PROTOCOL);
    fake_bridge(f, 2, 1, ok + one); /* a count the body does not hold */
    assert_int_equal(shmbus_bridge_stat(bus, 0, &in, c, cap), SHMBUS_ERR_PROTOCOL);
    fake_bridge(f, SB_WIRE_BRIDGE_MAX + 1, 1, ok + (SB_WIRE_BRIDGE_MAX + 1) * one);
    assert_int_equal(shmbus_bridge_stat(bus, 0, &in, c, cap), SHMBUS_ERR_PROTOCOL);
    fake_bridge(f, 1, 0, ok + one); /* an id that does not grow: paging would not end */
    assert_int_equal(shmbus_bridge_stat(bus, 0, &in, c, cap), SHMBUS_ERR_PROTOCOL);
    fake_bridge(f, 1, 7, ok + one); /* unterminated strings */
    assert_int_equal(shmbus_bridge_stat(bus, 0, &in, c, cap), 1);
    assert_int_equal(strlen(in.listen), sizeof(in.listen) - 1);
    assert_int_equal(c[0].id, 7);
    assert_int_equal(strlen(c[0].peer), sizeof(c[0].peer) - 1);
    assert_int_equal(strlen(c[0].name), sizeof(c[0].name) - 1);
    assert_int_equal(strlen(c[0].subs), sizeof(c[0].subs) - 1);
    shmbus_close(bus);
}

/* NATS replies of @p count topics named "t", ids from @p first_id. */
static void fake_nats(struct fake *f, uint32_t count, uint64_t first_id)
{
    static uint8_t b[SB_WIRE_MAX];
    shmbus_nats_info in = nats_info_sample();
    shmbus_nats_topic t[SB_WIRE_NATS_MAX];

    for (uint32_t i = 0; i < count; i++)
        t[i] = nats_topic_sample(first_id + i, "t", SHMBUS_NATS_IMPORT, i);
    fake_reply(f, b, nats_body(b, &in, t, count));
}

/* Through a daemon: a malformed reply is refused; a full page is followed
 * by the next, whose ids must grow past it (the fake repeats its page, so
 * paging would never end); a short page ends. */
static void test_monitor_nats_stat_bounds_hostile_replies(void **state)
{
    struct fake *f = *state;
    shmbus_nats_topic t[2 * SB_WIRE_NATS_MAX];
    shmbus_nats_info in;
    shmbus_bus *bus;

    assert_shmbus_ok(shmbus_connect(f->bus, &bus));
    fake_reply(f, "short", 5);
    assert_int_equal(shmbus_nats_stat(bus, 0, &in, t, 4), SHMBUS_ERR_PROTOCOL);
    fake_nats(f, 2, 5);
    assert_int_equal(shmbus_nats_stat(bus, 4, &in, t, 4), 2);
    assert_string_equal(in.origin, "host1_default");
    assert_int_equal(t[1].id, 6);
    assert_int_equal(shmbus_nats_stat(bus, 5, &in, t, 4), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(shmbus_nats_stat(bus, 0, &in, NULL, 0), 0); /* the link; topics checked */
    fake_nats(f, SB_WIRE_NATS_MAX, 1);
    assert_int_equal(shmbus_nats_stat(bus, 0, &in, t, SB_WIRE_NATS_MAX), (int)SB_WIRE_NATS_MAX);
    assert_int_equal(shmbus_nats_stat(bus, 0, &in, t, 2 * SB_WIRE_NATS_MAX), SHMBUS_ERR_PROTOCOL);
    shmbus_close(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monitor_topic_put_offsets),
        cmocka_unit_test(test_monitor_topic_bytes_are_the_old_entry),
        cmocka_unit_test(test_monitor_topic_get_terminates_name),
        cmocka_unit_test(test_monitor_list_ok_offsets),
        cmocka_unit_test(test_monitor_bridge_get_offsets),
        cmocka_unit_test(test_monitor_conn_get_offsets),
        cmocka_unit_test(test_monitor_bridge_put_roundtrip),
        cmocka_unit_test(test_monitor_conn_put_roundtrip),
        cmocka_unit_test(test_monitor_put_sends_nothing_after_nul),
        cmocka_unit_test(test_monitor_counters_read_leaves_gauges),
        cmocka_unit_test(test_monitor_nats_put_offsets),
        cmocka_unit_test(test_monitor_nats_page_roundtrip),
        cmocka_unit_test(test_monitor_nats_page_refuses_malformed),
        cmocka_unit_test(test_monitor_nats_strings_terminated),
        cmocka_unit_test_setup_teardown(test_monitor_list_bounds_hostile_replies, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_list_refuses_names_that_do_not_grow,
                                        fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_bridge_bounds_hostile_replies, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_nats_stat_bounds_hostile_replies, fake_setup,
                                        fake_teardown),
    };

    tu_init();

    return cmocka_run_group_tests_name("monitor", tests, NULL, NULL);
}
