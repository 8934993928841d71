/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation's pure parsers (daemon/fed/meta.c): the prefix and origin
 * rules, the default origin, topic <-> subject with the refusal of names
 * that cannot be subjects, bounded decimal parsing, and the Shmbus-*
 * headers encoded and decoded, with every missing or malformed field
 * refused and named.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fed/meta.h"

static void test_fed_meta_prefix(void **state)
{
    (void)state;
    assert_int_equal(sbd_fed_prefix_ok("shmbus"), 1);
    assert_int_equal(sbd_fed_prefix_ok("a.b-c.d_e"), 1);
    assert_int_equal(sbd_fed_prefix_ok(""), 0);
    assert_int_equal(sbd_fed_prefix_ok(".a"), 0);
    assert_int_equal(sbd_fed_prefix_ok("a."), 0);
    assert_int_equal(sbd_fed_prefix_ok("a..b"), 0);
    assert_int_equal(sbd_fed_prefix_ok("a*"), 0);
    assert_int_equal(sbd_fed_prefix_ok("a>"), 0);
    assert_int_equal(sbd_fed_prefix_ok("a b"), 0);
    assert_int_equal(sbd_fed_prefix_ok("a:b"), 0);
    char p[80];
    memset(p, 'x', sizeof(p));
    p[SBD_NATS_NAME_MAX] = '\0';
    assert_int_equal(sbd_fed_prefix_ok(p), 1);
    p[SBD_NATS_NAME_MAX] = 'x';
    p[SBD_NATS_NAME_MAX + 1] = '\0';
    assert_int_equal(sbd_fed_prefix_ok(p), 0);
}

static void test_fed_meta_origin(void **state)
{
    char o[SBD_NATS_NAME_MAX + 1], host[200];

    (void)state;
    assert_int_equal(sbd_fed_origin_ok("host1_bus-a"), 1);
    assert_int_equal(sbd_fed_origin_ok(""), 0);
    assert_int_equal(sbd_fed_origin_ok("a.b"), 0);
    assert_int_equal(sbd_fed_origin_ok("a/b"), 0);
    sbd_fed_default_origin("web-1.example.com", "main", o);
    assert_string_equal(o, "web-1_main");
    sbd_fed_default_origin("we+b@x", "b", o);
    assert_string_equal(o, "we_b_x_b");
    sbd_fed_default_origin("", "b", o);
    assert_string_equal(o, "host_b");
    memset(host, 'h', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    sbd_fed_default_origin(host, "0123456789abcdef0123456789abcdef", o);
    assert_int_equal(strlen(o), SBD_NATS_NAME_MAX);
    assert_int_equal(sbd_fed_origin_ok(o), 1);
    assert_string_equal(o + SBD_NATS_NAME_MAX - 33, "_0123456789abcdef0123456789abcdef");
}

static void test_fed_meta_subject(void **state)
{
    char s[SBF_SUBJECT_MAX + 1], t[SHMBUS_TOPIC_NAME_MAX + 1], big[300];

    (void)state;
    assert_int_equal(sbf_meta_subject("shmbus", "prices.eu:x-1", s), 0);
    assert_string_equal(s, "shmbus.prices.eu:x-1");
    assert_int_equal(sbf_meta_subject("shmbus", "a..b", s), -EINVAL);
    assert_int_equal(sbf_meta_subject("shmbus", "a.", s), -EINVAL);
    assert_int_equal(sbf_meta_subject("shmbus", ".a", s), -EINVAL);
    assert_int_equal(sbf_meta_subject("shmbus", "a b", s), -EINVAL);
    assert_int_equal(sbf_meta_topic("shmbus", "shmbus.prices.eu", 16, t), 0);
    assert_string_equal(t, "prices.eu");
    /* Only the bytes given count: the rest of the buffer is not read. */
    assert_int_equal(sbf_meta_topic("shmbus", "shmbus.abcdef", 8, t), 0);
    assert_string_equal(t, "a");
    assert_int_equal(sbf_meta_topic("shmbus", "shmbus.", 7, t), -EINVAL);
    assert_int_equal(sbf_meta_topic("shmbus", "shmbus", 6, t), -EINVAL);
    assert_int_equal(sbf_meta_topic("shmbus", "shmbusx.a", 9, t), -EINVAL);
    assert_int_equal(sbf_meta_topic("shmbus", "other.a", 7, t), -EINVAL);
    assert_int_equal(sbf_meta_topic("shmbus", "shmbus.a..b", 11, t), -EINVAL);
    assert_int_equal(sbf_meta_topic("shmbus", "shmbus.a.", 9, t), -EINVAL);
    assert_int_equal(sbf_meta_topic("shmbus", "shmbus..a", 9, t), -EINVAL);
    assert_int_equal(sbf_meta_topic("shmbus", "shmbus.*", 8, t), -EINVAL);
    assert_int_equal(sbf_meta_topic("shmbus", "shmbus.a\0b", 10, t), -EINVAL);
    memcpy(big, "shmbus.", 7);
    memset(big + 7, 'x', sizeof(big) - 7);
    assert_int_equal(sbf_meta_topic("shmbus", big, 7 + SHMBUS_TOPIC_NAME_MAX, t), 0);
    assert_int_equal(strlen(t), SHMBUS_TOPIC_NAME_MAX);
    assert_int_equal(sbf_meta_topic("shmbus", big, 8 + SHMBUS_TOPIC_NAME_MAX, t), -EINVAL);
    assert_int_equal(sbf_meta_topic("p.q", "p.q.t", 5, t), 0);
    assert_string_equal(t, "t");
}

static void test_fed_meta_u64(void **state)
{
    uint64_t v = 7;

    (void)state;
    assert_int_equal(sbf_meta_u64("0", 1, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(sbf_meta_u64("18446744073709551615", 20, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(sbf_meta_u64("18446744073709551616", 20, &v), -EINVAL);
    assert_int_equal(sbf_meta_u64("99999999999999999999", 20, &v), -EINVAL);
    assert_int_equal(sbf_meta_u64("000000000000000000001", 21, &v), -EINVAL);
    assert_int_equal(sbf_meta_u64("", 0, &v), -EINVAL);
    assert_int_equal(sbf_meta_u64("-1", 2, &v), -EINVAL);
    assert_int_equal(sbf_meta_u64("+1", 2, &v), -EINVAL);
    assert_int_equal(sbf_meta_u64(" 1", 2, &v), -EINVAL);
    assert_int_equal(sbf_meta_u64("1x", 2, &v), -EINVAL);
    assert_int_equal(sbf_meta_u64("12", 1, &v), 0);
    assert_int_equal(v, 1);
}

/* Headers for sbf_meta_decode(): keys and values, NULL-terminated. */
struct hdrs {
    const char *kv[16];
};

static const char *hdr_get(void *arg, const char *key, size_t *len)
{
    struct hdrs *h = arg;

    for (unsigned i = 0; h->kv[i] != NULL; i += 2) {
        if (strcmp(h->kv[i], key) == 0) {
            *len = strlen(h->kv[i + 1]);
            return h->kv[i + 1];
        }
    }
    return NULL;
}

static void test_fed_meta_roundtrip(void **state)
{
    struct sbf_meta m = {.origin = "h1_bus",
                         .epoch = 1700000000123456789ull,
                         .seq = 42,
                         .prev = 41,
                         .time_ns = 1700000000999ull,
                         .pid = 4242,
                         .has_prev = 1},
                    d;
    struct sbf_meta_text x;
    const char *bad = "x";

    (void)state;
    sbf_meta_encode(&m, "a.b", &x);
    assert_string_equal(x.msg_id, "h1_bus/a.b/1700000000123456789/42");
    struct hdrs h = {{SBF_HDR_ORIGIN, m.origin, SBF_HDR_EPOCH, x.epoch, SBF_HDR_SEQ, x.seq,
                      SBF_HDR_PREV, x.prev, SBF_HDR_TIME, x.time, SBF_HDR_PID, x.pid, NULL}};
    assert_int_equal(sbf_meta_decode(hdr_get, &h, &d, &bad), 0);
    assert_null(bad);
    assert_memory_equal(&m, &d, sizeof(m));
    /* No Shmbus-Prev: none. */
    m.has_prev = 0;
    m.prev = 0;
    sbf_meta_encode(&m, "a.b", &x);
    assert_string_equal(x.prev, "");
    h.kv[6] = SBF_HDR_TIME;
    h.kv[7] = x.time;
    h.kv[8] = SBF_HDR_PID;
    h.kv[9] = x.pid;
    h.kv[10] = NULL;
    assert_int_equal(sbf_meta_decode(hdr_get, &h, &d, &bad), 0);
    assert_memory_equal(&m, &d, sizeof(m));
    /* Shmbus-Count, as core-NATS exports carry it. */
    m.count = 17;
    m.has_count = 1;
    sbf_meta_encode(&m, "a.b", &x);
    assert_string_equal(x.count, "17");
    h.kv[10] = SBF_HDR_COUNT;
    h.kv[11] = x.count;
    h.kv[12] = NULL;
    assert_int_equal(sbf_meta_decode(hdr_get, &h, &d, &bad), 0);
    assert_memory_equal(&m, &d, sizeof(m));
}

/* Each field missing or malformed is refused and named. */
static void test_fed_meta_refused(void **state)
{
    static const struct {
        const char *key, *value; /* NULL value: the header is absent */
    } cases[] = {
        {SBF_HDR_ORIGIN, NULL},
        {SBF_HDR_ORIGIN, ""},
        {SBF_HDR_ORIGIN, "a.b"},
        {SBF_HDR_ORIGIN, "a b"},
        {SBF_HDR_EPOCH, NULL},
        {SBF_HDR_EPOCH, "-1"},
        {SBF_HDR_SEQ, NULL},
        {SBF_HDR_SEQ, "1 "},
        {SBF_HDR_SEQ, "0x10"},
        {SBF_HDR_TIME, "99999999999999999999"},
        {SBF_HDR_PID, NULL},
        {SBF_HDR_PID, "4294967296"},
        {SBF_HDR_PREV, ""},
        {SBF_HDR_PREV, "1.5"},
        {SBF_HDR_PREV, "2"},
        {SBF_HDR_PREV, "3"},
        {SBF_HDR_COUNT, "0"},
        {SBF_HDR_COUNT, "x"},
        /* a ring cannot mark it imported (1 + seq): refused, so that it
         * never takes a place in its origin's order */
        {SBF_HDR_SEQ, "18446744073709551615"},
    };
    char longo[100];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hdrs h = {{SBF_HDR_ORIGIN, "o", SBF_HDR_EPOCH, "1", SBF_HDR_SEQ, "2", SBF_HDR_TIME,
                          "3", SBF_HDR_PID, "4", NULL}};
        struct sbf_meta d;
        const char *bad = NULL;
        unsigned k = 0;

        while (h.kv[k] != NULL && strcmp(h.kv[k], cases[i].key) != 0)
            k += 2;
        if (h.kv[k] == NULL) {
            h.kv[k] = cases[i].key;
            h.kv[k + 2] = NULL;
        }
        if (cases[i].value == NULL) {
            h.kv[k] = "Other";
            h.kv[k + 1] = "1";
        } else {
            h.kv[k + 1] = cases[i].value;
        }
        assert_int_equal(sbf_meta_decode(hdr_get, &h, &d, &bad), -EINVAL);
        assert_non_null(bad);
        assert_string_equal(bad, cases[i].key);
    }
    memset(longo, 'o', sizeof(longo) - 1);
    longo[SBD_NATS_NAME_MAX + 1] = '\0';
    struct hdrs h = {{SBF_HDR_ORIGIN, longo, SBF_HDR_EPOCH, "1", SBF_HDR_SEQ, "2", SBF_HDR_TIME,
                      "3", SBF_HDR_PID, "4", NULL}};
    struct sbf_meta d;
    const char *bad = NULL;
    assert_int_equal(sbf_meta_decode(hdr_get, &h, &d, &bad), -EINVAL);
    assert_string_equal(bad, SBF_HDR_ORIGIN);
    longo[SBD_NATS_NAME_MAX] = '\0';
    assert_int_equal(sbf_meta_decode(hdr_get, &h, &d, &bad), 0);
    assert_string_equal(d.origin, longo);
}

/* Order per origin: no loss where the origin's own imports took seqs
 * between the messages it sent (its count goes on by one); the messages
 * its count skips are lost; repeats; an exporter that starts again; a new
 * epoch; and the least recently heard origin forgotten past
 * SBF_ORIGINS_MAX. */
static void test_fed_meta_order(void **state)
{
    static struct sbf_origins t; /* large: not on the stack */
    struct sbf_meta m = {.origin = "b", .epoch = 7, .seq = 5, .count = 1, .has_count = 1};
    uint64_t lost = 9, clock = 0;

    (void)state;
    memset(&t, 0, sizeof(t));
    /* First message: taken, nothing known before it. */
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 0);
    /* Seqs 6..8 were imports on b, never sent: its count says none lost. */
    m.seq = 9, m.count = 2;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 0);
    /* b sent 3 messages (counts 3..5) that never came. */
    m.seq = 20, m.count = 6;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 3);
    /* Repeats are refused. */
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 0);
    m.seq = 11, m.count = 3;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 0);
    /* b's daemon started again: its count starts at 1; the first one it
     * sent is here, so nothing is lost; then two of the next are. */
    m.seq = 30, m.count = 1;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 0);
    m.seq = 33, m.count = 4;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 2);
    /* Started again, and its first two never came. */
    m.seq = 40, m.count = 3;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 2);
    /* No count: nothing known. */
    m.seq = 50, m.has_count = 0;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 0);
    m.seq = 60, m.count = 9, m.has_count = 1;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 0);
    /* The topic made again on b: seqs start over. */
    m.epoch = 8, m.seq = 0, m.count = 10;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 0);
    m.seq = 1, m.count = 11;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 0);
    /* Another origin is its own. */
    struct sbf_meta c = {.origin = "c", .epoch = 1, .seq = 1};
    assert_int_equal(sbf_meta_order(&t, &c, ++clock, &lost), 1);
    assert_int_equal(t.n, 2);
    /* Full: the least recently heard ("b", then "c") are replaced. */
    for (unsigned i = 0; i < SBF_ORIGINS_MAX; i++) {
        struct sbf_meta x = {.epoch = 1, .seq = 100};

        snprintf(x.origin, sizeof(x.origin), "x%u", i);
        assert_int_equal(sbf_meta_order(&t, &x, ++clock, &lost), 1);
        assert_true(t.n <= SBF_ORIGINS_MAX);
    }
    assert_int_equal(t.n, SBF_ORIGINS_MAX);
    for (unsigned i = 0; i < t.n; i++)
        assert_true(strcmp(t.o[i].name, "b") != 0 && strcmp(t.o[i].name, "c") != 0);
    /* b comes back: a new start, its old seqs are not repeats. */
    m.seq = 1, m.count = 12;
    assert_int_equal(sbf_meta_order(&t, &m, ++clock, &lost), 1);
    assert_int_equal(lost, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fed_meta_prefix),    cmocka_unit_test(test_fed_meta_origin),
        cmocka_unit_test(test_fed_meta_subject),   cmocka_unit_test(test_fed_meta_u64),
        cmocka_unit_test(test_fed_meta_roundtrip), cmocka_unit_test(test_fed_meta_refused),
        cmocka_unit_test(test_fed_meta_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
