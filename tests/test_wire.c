/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control-protocol codec (registry/wire.c): every acceptance and
 * rejection path of the request and reply decoders, the name checks, and
 * the body layouts of this protocol version. Sending and receiving over a
 * socket is test_wire_io.c.
 */
#include "wiretest.h"

#include "util/name.h"

/* ---------------------------------------------------------------- names */

static void test_wire_name_valid_accepts(void **state)
{
    (void)state;
    char longest[SHMBUS_TOPIC_NAME_MAX + 1];
    char group[SHMBUS_GROUP_NAME_MAX + 1];

    assert_int_equal(sb_name_valid("a", SHMBUS_TOPIC_NAME_MAX), 1);
    assert_int_equal(sb_name_valid("Az09._:-", SHMBUS_TOPIC_NAME_MAX), 1);
    assert_int_equal(sb_name_valid("trailing.", SHMBUS_TOPIC_NAME_MAX), 1);
    assert_int_equal(sb_name_valid("-dash:first", SHMBUS_TOPIC_NAME_MAX), 1);
    memset(longest, 'x', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    assert_int_equal(sb_name_valid(longest, SHMBUS_TOPIC_NAME_MAX), 1);
    memset(group, 'g', sizeof(group) - 1);
    group[sizeof(group) - 1] = '\0';
    assert_int_equal(sb_name_valid(group, SHMBUS_GROUP_NAME_MAX), 1);
}

static void test_wire_name_valid_rejects(void **state)
{
    (void)state;
    const char *bad[] = {"",          ".hidden", ".",  "a b", "a/b",   "../x", "tab\t",
                         "new\nline", "ü",       "a*", "a,b", "x\x7f", "semi;"};
    char toolong[SHMBUS_TOPIC_NAME_MAX + 2];
    char group[SHMBUS_GROUP_NAME_MAX + 2];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sb_name_valid(bad[i], SHMBUS_TOPIC_NAME_MAX) != 0)
            fail_msg("name '%s' accepted", bad[i]);
    assert_int_equal(sb_name_valid(NULL, SHMBUS_TOPIC_NAME_MAX), 0);
    memset(toolong, 'x', sizeof(toolong) - 1);
    toolong[sizeof(toolong) - 1] = '\0';
    assert_int_equal(sb_name_valid(toolong, SHMBUS_TOPIC_NAME_MAX), 0);
    memset(group, 'g', sizeof(group) - 1);
    group[sizeof(group) - 1] = '\0';
    assert_int_equal(sb_name_valid(group, SHMBUS_GROUP_NAME_MAX), 0);
}

static void test_wire_bus_valid_checks(void **state)
{
    (void)state;
    const char *good[] = {"default", "a", "A-z_09", "-lead", "_"};
    const char *bad[] = {"", "a.b", "a:b", "a/b", "a b", "ü", "x\n"};
    char name[SHMBUS_BUS_NAME_MAX + 2];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (sb_name_bus_valid(good[i]) != 1)
            fail_msg("bus '%s' refused", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sb_name_bus_valid(bad[i]) != 0)
            fail_msg("bus '%s' accepted", bad[i]);
    assert_int_equal(sb_name_bus_valid(NULL), 0);
    memset(name, 'b', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(sb_name_bus_valid(name), 0);
    name[SHMBUS_BUS_NAME_MAX] = '\0';
    assert_int_equal(sb_name_bus_valid(name), 1);
}

static void test_wire_put_name_pads_and_refuses(void **state)
{
    (void)state;
    char f[8];

    memset(f, 0x55, sizeof(f));
    assert_shmbus_ok(sb_wire_put_name(f, sizeof(f), "abc"));
    assert_memory_equal(f, "abc\0\0\0\0\0", sizeof(f));
    assert_shmbus_ok(sb_wire_put_name(f, sizeof(f), "1234567"));
    assert_memory_equal(f, "1234567\0", sizeof(f));
    assert_shmbus_ok(sb_wire_put_name(f, sizeof(f), ""));
    assert_memory_equal(f, "\0\0\0\0\0\0\0\0", sizeof(f));
    /* Too long: refused, and the field is left alone. */
    memset(f, 0x55, sizeof(f));
    assert_shmbus_rc(sb_wire_put_name(f, sizeof(f), "12345678"), SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(sb_wire_put_name(f, sizeof(f), "123456789abc"), SHMBUS_ERR_BAD_NAME);
    for (size_t i = 0; i < sizeof(f); i++)
        assert_int_equal((uint8_t)f[i], 0x55);
}

/* ------------------------------------------------------ decode_req: accept */

static void test_wire_decode_req_accepts_every_type(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_hello hello = {.pid = 4242};
    struct sb_wire_ref ref = {.topic = 7, .slot = 3};
    struct sb_wire_sub sub = {.topic = 9};
    struct sb_wire_list list = {{0}};
    const uint16_t refs[] = {SB_MSG_CLOSE, SB_MSG_PUB_ADD, SB_MSG_PUB_DEL, SB_MSG_SUB_DEL};
    struct sb_wire_req q;
    size_t n;

    snprintf(hello.name, sizeof(hello.name), "prog");
    n = msg_build(buf, SB_MSG_HELLO, 11, &hello, sizeof(hello));
    assert_shmbus_ok(decode_req(buf, n, &q));
    assert_int_equal(q.hdr.type, SB_MSG_HELLO);
    assert_int_equal(q.hdr.req, 11);
    assert_int_equal(q.hdr.len, sizeof(hello));
    assert_int_equal(q.u.hello.pid, 4242);
    assert_string_equal(q.u.hello.name, "prog");
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        n = msg_build(buf, refs[i], 12, &ref, sizeof(ref));
        assert_shmbus_ok(decode_req(buf, n, &q));
        assert_int_equal(q.hdr.type, refs[i]);
        assert_int_equal(q.u.ref.topic, 7);
        assert_int_equal(q.u.ref.slot, 3);
    }
    n = msg_build(buf, SB_MSG_SUB_ADD, 13, &sub, sizeof(sub));
    assert_shmbus_ok(decode_req(buf, n, &q));
    assert_string_equal(q.u.sub.group, "");
    snprintf(sub.group, sizeof(sub.group), "workers.a:1");
    n = msg_build(buf, SB_MSG_SUB_ADD, 13, &sub, sizeof(sub));
    assert_shmbus_ok(decode_req(buf, n, &q));
    assert_int_equal(q.u.sub.topic, 9);
    assert_string_equal(q.u.sub.group, "workers.a:1");
    n = msg_build(buf, SB_MSG_LIST, 14, &list, sizeof(list));
    assert_shmbus_ok(decode_req(buf, n, &q));
    assert_string_equal(q.u.list.after, "");
    snprintf(list.after, sizeof(list.after), "some.topic");
    n = msg_build(buf, SB_MSG_LIST, 14, &list, sizeof(list));
    assert_shmbus_ok(decode_req(buf, n, &q));
    assert_string_equal(q.u.list.after, "some.topic");
}

/* REMOVE: a valid name and FORCE pass; its length, terminator, name,
 * padding (0, as docs/protocol.md says, so that it may carry something
 * later) and flags are checked. */
static void test_wire_decode_req_remove(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_remove rm = {.flags = SHMBUS_REMOVE_FORCE};
    struct sb_wire_req q;
    size_t n;

    snprintf(rm.name, sizeof(rm.name), "orders.eu:1");
    n = msg_build(buf, SB_MSG_REMOVE, 15, &rm, sizeof(rm));
    assert_shmbus_ok(decode_req(buf, n, &q));
    assert_string_equal(q.u.remove.name, "orders.eu:1");
    assert_int_equal(q.u.remove.flags, SHMBUS_REMOVE_FORCE);
    n = msg_build(buf, SB_MSG_REMOVE, 15, &rm, sizeof(rm) - 1);
    assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
    for (unsigned i = 0; i < sizeof(rm.pad); i++) {
        rm.pad[i] = 1;
        n = msg_build(buf, SB_MSG_REMOVE, 15, &rm, sizeof(rm));
        assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
        rm.pad[i] = 0;
    }
    rm.flags = 2; /* no such flag */
    n = msg_build(buf, SB_MSG_REMOVE, 15, &rm, sizeof(rm));
    assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_INVALID);
    rm.flags = 0;
    snprintf(rm.name, sizeof(rm.name), ".hidden");
    n = msg_build(buf, SB_MSG_REMOVE, 15, &rm, sizeof(rm));
    assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_BAD_NAME);
    memset(rm.name, 'r', sizeof(rm.name));
    n = msg_build(buf, SB_MSG_REMOVE, 15, &rm, sizeof(rm));
    assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
}

static void test_wire_decode_req_accepts_open(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_open o = open_body("orders.eu:1");
    struct sb_wire_req q;
    size_t n;

    o.flags = SHMBUS_OPEN_NOCREATE;
    o.topic_flags = SHMBUS_TOPIC_EXCLUSIVE;
    o.max_subscribers = 4;
    o.max_groups = 2;
    n = msg_build(buf, SB_MSG_OPEN, 99, &o, sizeof(o));
    assert_shmbus_ok(decode_req(buf, n, &q));
    assert_int_equal(q.hdr.len, sizeof(o));
    assert_memory_equal(&q.u.open, &o, sizeof(o));
    /* Every mode, and all-default options. */
    for (uint32_t mode = 0; mode <= SHMBUS_RELIABLE; mode++) {
        o = open_body("t");
        o.mode = mode;
        assert_shmbus_ok(decode_open(&o));
    }
    memset(&o, 0, sizeof(o));
    o.name[0] = 'z';
    assert_shmbus_ok(decode_open(&o));
}

/* ------------------------------------------------------ decode_req: reject */

static void test_wire_decode_req_rejects_short(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_ref ref = {1, 0};
    struct sb_wire_req q;

    msg_build(buf, SB_MSG_CLOSE, 1, &ref, sizeof(ref));
    for (size_t n = 0; n < sizeof(struct sb_wire_hdr); n++)
        assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
}

static void test_wire_decode_req_rejects_bad_magic(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_ref ref = {1, 0};
    struct sb_wire_req q;
    size_t n = msg_build(buf, SB_MSG_CLOSE, 1, &ref, sizeof(ref));
    const uint32_t magics[] = {0, SB_WIRE_MAGIC ^ 1, SB_WIRE_MAGIC << 8, 0x53424331u};

    for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
        msg_hdr(buf)->magic = magics[i];
        assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
    }
}

static void test_wire_decode_req_other_version_keeps_header(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_hello hello = {.pid = 1};
    struct sb_wire_req q;
    const uint16_t versions[] = {0, SHMBUS_PROTOCOL_VERSION + 1, 0xffff};

    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        size_t n = msg_build(buf, SB_MSG_HELLO, 0xabcd1234u, &hello, sizeof(hello));

        msg_hdr(buf)->version = versions[i];
        assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTO_VERSION);
        /* The reply must be able to carry the request id. */
        assert_int_equal(q.hdr.magic, SB_WIRE_MAGIC);
        assert_int_equal(q.hdr.version, versions[i]);
        assert_int_equal(q.hdr.type, SB_MSG_HELLO);
        assert_int_equal(q.hdr.req, 0xabcd1234u);
        /* A future version may have another body size: still a version error. */
        assert_shmbus_rc(decode_req(buf, sizeof(struct sb_wire_hdr), &q), SHMBUS_ERR_PROTO_VERSION);
        assert_int_equal(q.hdr.req, 0xabcd1234u);
    }
}

static void test_wire_decode_req_rejects_unknown_type(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    uint8_t body[256] = {0};
    struct sb_wire_req q;
    const uint16_t types[] = {0, SB_MSG_BUS + 1, 0x80, SB_MSG_OK, SB_MSG_ERR, 0xffff};

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        for (uint32_t len = 0; len <= sizeof(body); len += 8) {
            size_t n = msg_build(buf, types[i], 1, body, len);

            assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
        }
    }
}

/* Every request type with a body one byte short or long, header agreeing or not. */
static void test_wire_decode_req_rejects_length_mismatch(void **state)
{
    (void)state;
    const struct {
        uint16_t type;
        uint32_t size;
    } t[] = {{SB_MSG_HELLO, sizeof(struct sb_wire_hello)},
             {SB_MSG_OPEN, sizeof(struct sb_wire_open)},
             {SB_MSG_CLOSE, sizeof(struct sb_wire_ref)},
             {SB_MSG_PUB_ADD, sizeof(struct sb_wire_ref)},
             {SB_MSG_PUB_DEL, sizeof(struct sb_wire_ref)},
             {SB_MSG_SUB_ADD, sizeof(struct sb_wire_sub)},
             {SB_MSG_SUB_DEL, sizeof(struct sb_wire_ref)},
             {SB_MSG_LIST, sizeof(struct sb_wire_list)},
             {SB_MSG_BRIDGE, sizeof(struct sb_wire_bridge)},
             {SB_MSG_NATS, sizeof(struct sb_wire_nats)},
             {SB_MSG_JOURNAL, sizeof(struct sb_wire_ref)},
             {SB_MSG_BUS, sizeof(struct sb_wire_bus)}};
    uint8_t body[512] = {0}; /* zeros are valid in every field but OPEN's name */
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_req q;

    body[offsetof(struct sb_wire_open, name)] = 'n';

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uint32_t s = t[i].size;
        size_t n;

        n = msg_build(buf, t[i].type, 1, body, s); /* the right size passes */
        assert_shmbus_ok(decode_req(buf, n, &q));
        n = msg_build(buf, t[i].type, 1, body, s - 1); /* too short, header agrees */
        assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
        n = msg_build(buf, t[i].type, 1, body, s + 1); /* too long, header agrees */
        assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
        n = msg_build(buf, t[i].type, 1, body, 0); /* header only */
        assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
        n = msg_build(buf, t[i].type, 1, body, s); /* header claims more than came */
        assert_shmbus_rc(decode_req(buf, n - 1, &q), SHMBUS_ERR_PROTOCOL);
        msg_hdr(buf)->len = s + 1; /* more came than the header claims */
        assert_shmbus_rc(decode_req(buf, n + 1, &q), SHMBUS_ERR_PROTOCOL);
        msg_hdr(buf)->len = s - 1;
        assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
        msg_hdr(buf)->len = UINT32_MAX;
        assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
    }
}

static void test_wire_decode_req_rejects_unterminated(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_hello hello = {.pid = 1};
    struct sb_wire_open o = open_body("t");
    struct sb_wire_sub sub = {.topic = 1};
    struct sb_wire_list list;
    struct sb_wire_req q;
    size_t n;

    memset(hello.name, 'h', sizeof(hello.name));
    n = msg_build(buf, SB_MSG_HELLO, 1, &hello, sizeof(hello));
    assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
    memset(o.name, 'o', sizeof(o.name));
    n = msg_build(buf, SB_MSG_OPEN, 1, &o, sizeof(o));
    assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
    memset(sub.group, 'g', sizeof(sub.group));
    n = msg_build(buf, SB_MSG_SUB_ADD, 1, &sub, sizeof(sub));
    assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
    memset(list.after, 'l', sizeof(list.after));
    n = msg_build(buf, SB_MSG_LIST, 1, &list, sizeof(list));
    assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_PROTOCOL);
    /* The NUL in the last byte of each field is enough. */
    hello.name[sizeof(hello.name) - 1] = '\0';
    n = msg_build(buf, SB_MSG_HELLO, 1, &hello, sizeof(hello));
    assert_shmbus_ok(decode_req(buf, n, &q));
    list.after[sizeof(list.after) - 1] = '\0';
    n = msg_build(buf, SB_MSG_LIST, 1, &list, sizeof(list));
    assert_shmbus_ok(decode_req(buf, n, &q));
}

static void test_wire_decode_req_rejects_bad_names(void **state)
{
    (void)state;
    const char *bad[] = {"", ".dot", "sp ace", "a/b", "x*", "ü"};
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_open o;
    struct sb_wire_sub sub = {.topic = 1};
    struct sb_wire_req q;
    size_t n;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = open_body("t");
        memset(o.name, 0, sizeof(o.name));
        memcpy(o.name, bad[i], strlen(bad[i]));
        assert_shmbus_rc(decode_open(&o), SHMBUS_ERR_BAD_NAME);
        if (bad[i][0] == '\0')
            continue; /* "" is "no group" */
        memset(sub.group, 0, sizeof(sub.group));
        memcpy(sub.group, bad[i], strlen(bad[i]));
        n = msg_build(buf, SB_MSG_SUB_ADD, 1, &sub, sizeof(sub));
        assert_shmbus_rc(decode_req(buf, n, &q), SHMBUS_ERR_BAD_NAME);
    }
    /* Terminated inside the field, but longer than a topic name may be. */
    o = open_body("t");
    memset(o.name, 'x', SHMBUS_TOPIC_NAME_MAX + 1);
    assert_shmbus_rc(decode_open(&o), SHMBUS_ERR_BAD_NAME);
    o.name[SHMBUS_TOPIC_NAME_MAX] = '\0';
    assert_shmbus_ok(decode_open(&o));
}

/* The reason a refused name gets states the rule with its limit; a group
 * name may not start with '.' either. */
static void test_wire_decode_req_bad_name_says_rule(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_open o = open_body(".t");
    struct sb_wire_sub sub = {.topic = 1, .group = ".g"};
    struct sb_wire_req q;
    const char *why = NULL;
    size_t n;

    n = msg_build(buf, SB_MSG_OPEN, 1, &o, sizeof(o));
    assert_shmbus_rc(sb_wire_decode_req(buf, n, &q, &why), SHMBUS_ERR_BAD_NAME);
    assert_string_equal(why, "bad topic name: 1-128 characters of A-Z a-z 0-9 _ . : -, "
                             "not starting with '.'");
    n = msg_build(buf, SB_MSG_SUB_ADD, 1, &sub, sizeof(sub));
    assert_shmbus_rc(sb_wire_decode_req(buf, n, &q, &why), SHMBUS_ERR_BAD_NAME);
    assert_string_equal(why, "bad group name: 1-63 characters of A-Z a-z 0-9 _ . : -, "
                             "not starting with '.'");
}

/* Decode a SUB_ADD body; @p why receives the reason. */
static int decode_sub(const struct sb_wire_sub *sub, const char **why)
{
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_req q;
    size_t n = msg_build(buf, SB_MSG_SUB_ADD, 1, sub, sizeof(*sub));

    *why = "";
    return sb_wire_decode_req(buf, n, &q, why);
}

/* An acknowledging member's SUB_ADD travels whole; what it asks is checked
 * once, here: each refusal has its code and a reason that says it. */
static void test_wire_decode_req_sub_ack(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_sub sub = {.topic = 3, .flags = SB_WIRE_SUB_ACK, .max_deliveries = 7};
    struct sb_wire_req q;
    const char *why;
    size_t n;

    snprintf(sub.group, sizeof(sub.group), "workers");
    snprintf(sub.dead_letter, sizeof(sub.dead_letter), "jobs.poison");
    n = msg_build(buf, SB_MSG_SUB_ADD, 5, &sub, sizeof(sub));
    assert_shmbus_ok(sb_wire_decode_req(buf, n, &q, &why));
    assert_int_equal(q.u.sub.flags, SB_WIRE_SUB_ACK);
    assert_int_equal(q.u.sub.max_deliveries, 7);
    assert_string_equal(q.u.sub.dead_letter, "jobs.poison");
    /* 0 and "": what the group has, or the defaults. */
    sub.max_deliveries = 0;
    memset(sub.dead_letter, 0, sizeof(sub.dead_letter));
    assert_shmbus_ok(decode_sub(&sub, &why));
    sub.max_deliveries = SHMBUS_MAX_DELIVERIES_MAX;
    assert_shmbus_ok(decode_sub(&sub, &why));

    sub.max_deliveries = SHMBUS_MAX_DELIVERIES_MAX + 1;
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_INVALID);
    assert_string_equal(why, "max_deliveries out of range: 1-1000 (0: the group's, or 5)");
    sub.max_deliveries = UINT32_MAX;
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_INVALID);
    sub.max_deliveries = 0;

    sub.flags = SB_WIRE_SUB_ACK | 2u;
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_INVALID);
    assert_string_equal(why, "unknown subscribe flag");
    sub.flags = 0x80000000u;
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_INVALID);
    sub.flags = SB_WIRE_SUB_ACK;

    sub.pad = 1;
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_PROTOCOL);
    sub.pad = 0;

    memset(sub.group, 0, sizeof(sub.group));
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_INVALID);
    assert_string_equal(why, "an acknowledging subscriber must be a member of a named group");
    snprintf(sub.group, sizeof(sub.group), "workers");

    snprintf(sub.dead_letter, sizeof(sub.dead_letter), ".hidden");
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_BAD_NAME);
    assert_string_equal(why, "bad dead-letter topic name: 1-128 characters of A-Z a-z 0-9 _ . "
                             ": -, not starting with '.'");
    memset(sub.dead_letter, 'x', SHMBUS_TOPIC_NAME_MAX + 1);
    sub.dead_letter[SHMBUS_TOPIC_NAME_MAX + 1] = '\0';
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_BAD_NAME);
    sub.dead_letter[SHMBUS_TOPIC_NAME_MAX] = '\0';
    assert_shmbus_ok(decode_sub(&sub, &why));
    memset(sub.dead_letter, 'x', sizeof(sub.dead_letter));
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_PROTOCOL);
    assert_string_equal(why, "dead-letter topic name not terminated");
    memset(sub.dead_letter, 0, sizeof(sub.dead_letter));

    /* What only an acknowledging member may ask. */
    sub.flags = 0;
    sub.max_deliveries = 3;
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_INVALID);
    assert_string_equal(why, "max_deliveries and dead_letter are for acknowledging members only");
    sub.max_deliveries = 0;
    snprintf(sub.dead_letter, sizeof(sub.dead_letter), "jobs.dlq");
    assert_shmbus_rc(decode_sub(&sub, &why), SHMBUS_ERR_INVALID);
    memset(sub.dead_letter, 0, sizeof(sub.dead_letter));
    assert_shmbus_ok(decode_sub(&sub, &why));
}

static void test_wire_decode_req_rejects_bad_options(void **state)
{
    (void)state;
    struct sb_wire_open o;
    const uint32_t bad_flags[] = {2, 4, 0x80000000u, SHMBUS_OPEN_NOCREATE | 2u, UINT32_MAX};
    const uint32_t bad_modes[] = {3, 4, 0x101, UINT32_MAX};

    for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
        o = open_body("t");
        o.flags = bad_flags[i];
        assert_shmbus_rc(decode_open(&o), SHMBUS_ERR_INVALID);
        o = open_body("t");
        o.topic_flags = bad_flags[i];
        assert_shmbus_rc(decode_open(&o), SHMBUS_ERR_INVALID);
    }
    for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
        o = open_body("t");
        o.mode = bad_modes[i];
        assert_shmbus_rc(decode_open(&o), SHMBUS_ERR_INVALID);
    }
}

/*
 * wire.h: "option ranges are all checked here, once, before the daemon ...
 * looks at a field", and decode_req returns SHMBUS_ERR_INVALID for "an
 * option out of range". The ranges are those of shmbus_topic_opts.
 */
static void test_wire_decode_req_rejects_option_out_of_range(void **state)
{
    (void)state;
    struct {
        uint32_t capacity, max_msg_size, max_subscribers, max_groups;
    } bad[] = {{.capacity = 1},
               {.capacity = 3},
               {.capacity = 1u << 25},
               {.capacity = 12},
               {.max_msg_size = (16u << 20) + 1},
               {.max_subscribers = 1025},
               {.max_groups = 257}},
      good[] = {{2, 1, 1, 1}, {1u << 24, 16u << 20, 1024, 256}};
    struct sb_wire_open o;
    int accepted = 0;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        o = open_body("t");
        o.capacity = good[i].capacity;
        o.max_msg_size = good[i].max_msg_size;
        o.max_subscribers = good[i].max_subscribers;
        o.max_groups = good[i].max_groups;
        assert_shmbus_ok(decode_open(&o));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = open_body("t");
        o.capacity = bad[i].capacity;
        o.max_msg_size = bad[i].max_msg_size;
        o.max_subscribers = bad[i].max_subscribers;
        o.max_groups = bad[i].max_groups;
        if (decode_open(&o) != SHMBUS_ERR_INVALID) {
            print_message("option set %zu (capacity %u, max_msg_size %u, max_subscribers %u, "
                          "max_groups %u) accepted\n",
                          i, o.capacity, o.max_msg_size, o.max_subscribers, o.max_groups);
            accepted++;
        }
    }
    assert_int_equal(accepted, 0);
}

/* ---------------------------------------------------------- decode_reply */

static void test_wire_decode_reply_accepts_ok(void **state)
{
    (void)state;
    static uint8_t big[SB_WIRE_MAX - sizeof(struct sb_wire_hdr)];
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_open_ok ok = {.topic = 5, .created = 1};
    const void *body = NULL;
    size_t n;

    n = msg_build(buf, SB_MSG_OK, 77, &ok, sizeof(ok));
    assert_int_equal(decode_reply(buf, n, 77), (int)sizeof(ok));
    assert_int_equal(sb_wire_decode_reply(buf, n, 77, &body), (int)sizeof(ok));
    assert_memory_equal(body, &ok, sizeof(ok));
    n = msg_build(buf, SB_MSG_OK, 78, NULL, 0);
    assert_int_equal(decode_reply(buf, n, 78), 0);
    /* The largest message either end sends. */
    memset(big, 0xa5, sizeof(big));
    n = msg_build(buf, SB_MSG_OK, 79, big, sizeof(big));
    assert_int_equal(decode_reply(buf, n, 79), (int)sizeof(big));
}

static void test_wire_decode_reply_rejects_header(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_sub_ok ok = {1, 2};
    size_t n = msg_build(buf, SB_MSG_OK, 5, &ok, sizeof(ok));

    for (size_t k = 0; k < sizeof(struct sb_wire_hdr); k++)
        assert_shmbus_rc(decode_reply(buf, k, 5), SHMBUS_ERR_PROTOCOL);
    assert_shmbus_rc(decode_reply(buf, n, 4), SHMBUS_ERR_PROTOCOL);     /* another request's */
    assert_shmbus_rc(decode_reply(buf, n, 6), SHMBUS_ERR_PROTOCOL);     /* another request's */
    assert_shmbus_rc(decode_reply(buf, n - 1, 5), SHMBUS_ERR_PROTOCOL); /* body cut short */
    msg_hdr(buf)->len = sizeof(ok) - 1;                                 /* more than it says */
    assert_shmbus_rc(decode_reply(buf, n, 5), SHMBUS_ERR_PROTOCOL);
    msg_hdr(buf)->len = UINT32_MAX;
    assert_shmbus_rc(decode_reply(buf, n, 5), SHMBUS_ERR_PROTOCOL);
    n = msg_build(buf, SB_MSG_OK, 5, &ok, sizeof(ok));
    msg_hdr(buf)->magic = ~SB_WIRE_MAGIC;
    assert_shmbus_rc(decode_reply(buf, n, 5), SHMBUS_ERR_PROTOCOL);
    n = msg_build(buf, SB_MSG_OK, 5, &ok, sizeof(ok));
    msg_hdr(buf)->version = SHMBUS_PROTOCOL_VERSION + 1;
    assert_shmbus_rc(decode_reply(buf, n, 5), SHMBUS_ERR_PROTO_VERSION);
    /* A request type is no reply. */
    n = msg_build(buf, SB_MSG_OPEN, 5, &ok, sizeof(ok));
    assert_shmbus_rc(decode_reply(buf, n, 5), SHMBUS_ERR_PROTOCOL);
    n = msg_build(buf, 0xffff, 5, &ok, sizeof(ok));
    assert_shmbus_rc(decode_reply(buf, n, 5), SHMBUS_ERR_PROTOCOL);
}

static void test_wire_decode_reply_err_codes(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_err e = {.code = SHMBUS_ERR_MISMATCH};
    const int32_t codes[] = {SHMBUS_ERR_MISMATCH, -ENOENT, -1, SHMBUS_ERR_LIMIT, INT32_MIN};
    const int32_t not_errors[] = {0, 1, 5, 1000, INT32_MAX};
    size_t n;

    snprintf(e.text, sizeof(e.text), "detail");
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        e.code = codes[i];
        n = msg_build(buf, SB_MSG_ERR, 3, &e, sizeof(e));
        assert_int_equal(decode_reply(buf, n, 3), codes[i]);
        assert_shmbus_rc(decode_reply(buf, n, 4), SHMBUS_ERR_PROTOCOL);
    }
    /* An error reply whose code would read as success. */
    for (size_t i = 0; i < sizeof(not_errors) / sizeof(not_errors[0]); i++) {
        e.code = not_errors[i];
        n = msg_build(buf, SB_MSG_ERR, 3, &e, sizeof(e));
        assert_shmbus_rc(decode_reply(buf, n, 3), SHMBUS_ERR_PROTOCOL);
    }
}

static void test_wire_decode_reply_rejects_truncated_err(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    uint8_t body[sizeof(struct sb_wire_err) + 8];
    int32_t code = -EPERM;
    size_t n;

    memset(body, 0, sizeof(body));
    memcpy(body, &code, sizeof(code));
    for (uint32_t len = 0; len <= sizeof(body); len++) {
        n = msg_build(buf, SB_MSG_ERR, 9, body, len);
        if (len == sizeof(struct sb_wire_err))
            assert_int_equal(decode_reply(buf, n, 9), -EPERM);
        else
            assert_shmbus_rc(decode_reply(buf, n, 9), SHMBUS_ERR_PROTOCOL);
    }
    /* The header says a whole error, the packet holds less. */
    n = msg_build(buf, SB_MSG_ERR, 9, body, sizeof(struct sb_wire_err));
    assert_shmbus_rc(decode_reply(buf, n - 4, 9), SHMBUS_ERR_PROTOCOL);
}

/* The body layouts of this protocol version: a change to any of them (the
 * bridge reply's memory and evicted fields took 152 -> 168 and 232 -> 240
 * bytes in protocol 3; SUB_ADD's acknowledging member 72 -> 216 in 4) needs a new
 * SHMBUS_PROTOCOL_VERSION, so that a library and a daemon of different builds say
 * SHMBUS_ERR_PROTO_VERSION instead of misreading each other. Update both together. */
static void test_wire_layout_matches_version(void **state)
{
    static const struct {
        const char *name;
        size_t size, want;
    } bodies[] = {
        {"sb_wire_hdr", sizeof(struct sb_wire_hdr), 16},
        {"sb_wire_hello", sizeof(struct sb_wire_hello), 40},
        {"sb_wire_hello_ok", sizeof(struct sb_wire_hello_ok), 8},
        {"sb_wire_open", sizeof(struct sb_wire_open), 176},
        {"sb_wire_open_ok", sizeof(struct sb_wire_open_ok), 8},
        {"sb_wire_ref", sizeof(struct sb_wire_ref), 8},
        {"sb_wire_sub", sizeof(struct sb_wire_sub), 216},
        {"sb_wire_sub_ok", sizeof(struct sb_wire_sub_ok), 8},
        {"sb_wire_list", sizeof(struct sb_wire_list), 136},
        {"sb_wire_list_ok", sizeof(struct sb_wire_list_ok), 8},
        {"sb_wire_bridge", sizeof(struct sb_wire_bridge), 8},
        {"sb_wire_bridge_conn", sizeof(struct sb_wire_bridge_conn), 240},
        {"sb_wire_bridge_ok", sizeof(struct sb_wire_bridge_ok), 168},
        {"sb_wire_nats", sizeof(struct sb_wire_nats), 8},
        {"sb_wire_nats_topic", sizeof(struct sb_wire_nats_topic), 192},
        {"sb_wire_nats_ok", sizeof(struct sb_wire_nats_ok), 344},
        {"sb_wire_remove", sizeof(struct sb_wire_remove), 136},
        {"sb_wire_bus", sizeof(struct sb_wire_bus), 8},
        {"sb_wire_bus_ok", sizeof(struct sb_wire_bus_ok), 40},
        {"sb_wire_err", sizeof(struct sb_wire_err), 124},
        {"sb_wire_journal_ok", sizeof(struct sb_wire_journal_ok), 4096},
    };

    (void)state;
    assert_int_equal(SHMBUS_PROTOCOL_VERSION, 5);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        if (bodies[i].size != bodies[i].want)
            fail_msg("struct %s: %zu bytes, protocol 5 has %zu: bump SHMBUS_PROTOCOL_VERSION",
                     bodies[i].name, bodies[i].size, bodies[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_layout_matches_version),
        cmocka_unit_test(test_wire_name_valid_accepts),
        cmocka_unit_test(test_wire_name_valid_rejects),
        cmocka_unit_test(test_wire_bus_valid_checks),
        cmocka_unit_test(test_wire_put_name_pads_and_refuses),
        cmocka_unit_test(test_wire_decode_req_accepts_every_type),
        cmocka_unit_test(test_wire_decode_req_accepts_open),
        cmocka_unit_test(test_wire_decode_req_remove),
        cmocka_unit_test(test_wire_decode_req_rejects_short),
        cmocka_unit_test(test_wire_decode_req_rejects_bad_magic),
        cmocka_unit_test(test_wire_decode_req_other_version_keeps_header),
        cmocka_unit_test(test_wire_decode_req_rejects_unknown_type),
        cmocka_unit_test(test_wire_decode_req_rejects_length_mismatch),
        cmocka_unit_test(test_wire_decode_req_rejects_unterminated),
        cmocka_unit_test(test_wire_decode_req_rejects_bad_names),
        cmocka_unit_test(test_wire_decode_req_bad_name_says_rule),
        cmocka_unit_test(test_wire_decode_req_sub_ack),
        cmocka_unit_test(test_wire_decode_req_rejects_bad_options),
        cmocka_unit_test(test_wire_decode_req_rejects_option_out_of_range),
        cmocka_unit_test(test_wire_decode_reply_accepts_ok),
        cmocka_unit_test(test_wire_decode_reply_rejects_header),
        cmocka_unit_test(test_wire_decode_reply_err_codes),
        cmocka_unit_test(test_wire_decode_reply_rejects_truncated_err),
    };
    tu_init();
    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
