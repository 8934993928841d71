/*
 * The monitoring bodies of the control protocol (registry/monitor.c): the
 * LIST and BRIDGE replies are encoded and decoded field by field, and
 * their bytes must stay those of protocol 3, which older clients and
 * daemons copied to and from the public structs as they were. Offsets are
 * written out here as numbers, independently of wire.h.
 */
#include "testutil.h"

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
        cmocka_unit_test(test_monitor_counters_read_leaves_gauges),
    };

    return cmocka_run_group_tests_name("monitor", tests, NULL, NULL);
}
