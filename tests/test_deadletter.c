/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dead-letter envelope (registry/deadletter.c): the daemon's builder
 * and the public reader, shmbus_dead_letter_parse(), byte by byte as
 * docs/protocol.md "Dead letters" states it, and every refusal of the
 * reader. Parses run on exact-size heap copies, so that ASan catches a
 * read past the message.
 */
#include "testutil.h"

#include "registry/deadletter.h"

static const struct sb_dl_meta META = {.topic = "jobs.eu",
                                       .group = "workers",
                                       .seq = 0x0102030405060708ull,
                                       .timestamp_ns = 1700000000123456789ull,
                                       .dead_ns = 1700000001000000000ull,
                                       .publisher_pid = 4242,
                                       .deliveries = 5,
                                       .reason = SHMBUS_DL_NACKED};

/* @p m's envelope around @p payload in @p buf. @return its length. */
static size_t envelope(uint8_t *buf, size_t cap, const struct sb_dl_meta *m, const char *payload)
{
    int hl = sb_dl_header_put(buf, cap, m);

    assert_true(hl > 0);
    memcpy(buf + hl, payload, strlen(payload));
    return (size_t)hl + strlen(payload);
}

/* shmbus_dead_letter_parse() on an exact-size heap copy of @p buf; the
 * parse's data is checked to point into the copy, then made relative to
 * @p buf. */
static int parse(const uint8_t *buf, size_t n, shmbus_dead_letter *d)
{
    uint8_t *copy = malloc(n ? n : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, buf, n);
    rc = shmbus_dead_letter_parse(copy, n, d);
    if (rc == 0) {
        assert_true((const uint8_t *)d->data >= copy &&
                    (const uint8_t *)d->data + d->len == copy + n);
        d->data = buf + ((const uint8_t *)d->data - copy);
    }
    free(copy);
    return rc;
}

static void test_deadletter_layout(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n = envelope(buf, sizeof(buf), &META, "payload");
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;

    assert_int_equal(n, 48 + 7 + 7 + 7);
    assert_memory_equal(buf, "SBDL", 4);
    memcpy(&v16, buf + 4, 2);
    assert_int_equal(v16, 1);
    memcpy(&v16, buf + 6, 2);
    assert_int_equal(v16, 62);
    memcpy(&v64, buf + 8, 8);
    assert_true(v64 == META.seq);
    memcpy(&v64, buf + 16, 8);
    assert_true(v64 == META.timestamp_ns);
    memcpy(&v64, buf + 24, 8);
    assert_true(v64 == META.dead_ns);
    memcpy(&v32, buf + 32, 4);
    assert_int_equal(v32, 4242);
    memcpy(&v32, buf + 36, 4);
    assert_int_equal(v32, 5);
    memcpy(&v32, buf + 40, 4);
    assert_int_equal(v32, SHMBUS_DL_NACKED);
    memcpy(&v16, buf + 44, 2);
    assert_int_equal(v16, 7);
    memcpy(&v16, buf + 46, 2);
    assert_int_equal(v16, 7);
    assert_memory_equal(buf + 48, "jobs.euworkerspayload", 21);
}

static void test_deadletter_round_trip(void **state)
{
    (void)state;
    uint8_t buf[1024];
    char topic[SHMBUS_TOPIC_NAME_MAX + 1], group[SHMBUS_GROUP_NAME_MAX + 1];
    struct sb_dl_meta m = META;
    shmbus_dead_letter d;
    size_t n = envelope(buf, sizeof(buf), &META, "payload");

    assert_shmbus_ok(parse(buf, n, &d));
    assert_string_equal(d.topic, "jobs.eu");
    assert_string_equal(d.group, "workers");
    assert_true(d.seq == META.seq && d.timestamp_ns == META.timestamp_ns &&
                d.dead_ns == META.dead_ns);
    assert_int_equal(d.publisher_pid, 4242);
    assert_int_equal(d.deliveries, 5);
    assert_int_equal(d.reason, SHMBUS_DL_NACKED);
    assert_int_equal(d.len, 7);
    assert_memory_equal(d.data, "payload", 7);
    /* The longest names: SB_DL_ROOM is the longest header; empty payload. */
    memset(topic, 't', sizeof(topic) - 1);
    topic[sizeof(topic) - 1] = '\0';
    memset(group, 'g', sizeof(group) - 1);
    group[sizeof(group) - 1] = '\0';
    m.topic = topic;
    m.group = group;
    n = envelope(buf, sizeof(buf), &m, "");
    assert_int_equal(n, SB_DL_ROOM);
    assert_shmbus_ok(parse(buf, n, &d));
    assert_string_equal(d.topic, topic);
    assert_string_equal(d.group, group);
    assert_int_equal(d.len, 0);
}

/* Bytes between the names and the header length are skipped (room for
 * fields a later builder adds). */
static void test_deadletter_skips_room(void **state)
{
    (void)state;
    uint8_t buf[512];
    shmbus_dead_letter d;
    size_t n = envelope(buf, sizeof(buf), &META, "0123456789");
    uint16_t hl = 62 + 4;

    memcpy(buf + 6, &hl, 2);
    assert_shmbus_ok(parse(buf, n, &d));
    assert_int_equal(d.len, 6);
    assert_memory_equal(d.data, "456789", 6);
}

static void test_deadletter_builder_refuses(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct sb_dl_meta m = META;

    assert_shmbus_rc(sb_dl_header_put(buf, 61, &META), SHMBUS_ERR_TOO_BIG);
    assert_int_equal(sb_dl_header_put(buf, 62, &META), 62);
    m.topic = ".hidden";
    assert_shmbus_rc(sb_dl_header_put(buf, sizeof(buf), &m), SHMBUS_ERR_BAD_NAME);
    m.topic = "t";
    m.group = "";
    assert_shmbus_rc(sb_dl_header_put(buf, sizeof(buf), &m), SHMBUS_ERR_BAD_NAME);
}

/* Damage field @p off (2 bytes) of a good envelope to @p v: refused, and
 * the output left zeroed. */
static void refused16(size_t off, uint16_t v)
{
    uint8_t buf[512];
    shmbus_dead_letter d, zero;
    size_t n = envelope(buf, sizeof(buf), &META, "payload");

    memcpy(buf + off, &v, 2);
    memset(&zero, 0, sizeof(zero));
    assert_shmbus_rc(parse(buf, n, &d), SHMBUS_ERR_CORRUPT);
    assert_memory_equal(&d, &zero, sizeof(d));
}

static void test_deadletter_parse_refuses(void **state)
{
    (void)state;
    uint8_t buf[512];
    shmbus_dead_letter d;
    size_t n = envelope(buf, sizeof(buf), &META, "payload");

    assert_shmbus_rc(shmbus_dead_letter_parse(NULL, n, &d), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_dead_letter_parse(buf, n, NULL), SHMBUS_ERR_INVALID);
    /* Every truncation of the header. */
    for (size_t k = 0; k < 62; k++)
        assert_shmbus_rc(parse(buf, k, &d), SHMBUS_ERR_CORRUPT);
    assert_shmbus_ok(parse(buf, 62, &d));
    assert_int_equal(d.len, 0);
    refused16(0, 0x4253 ^ 1);        /* magic */
    refused16(4, 2);                 /* version */
    refused16(4, 0);                 /* version */
    refused16(6, 61);                /* header shorter than its names */
    refused16(6, (uint16_t)(n + 1)); /* header beyond the message */
    refused16(44, 0);                /* empty topic */
    refused16(44, 129);              /* topic longer than a topic name */
    refused16(44, 600);              /* topic beyond the header */
    refused16(46, 0);                /* empty group */
    refused16(46, 64);               /* group longer than a group name */
    refused16(48, '.' | 'x' << 8);   /* topic starts with '.' */
    refused16(55, 'a' | ' ' << 8);   /* bad character in the group */
    refused16(50, 0);                /* NUL inside the topic */
}

/* Every reason has the name events and `shmbus sub --dead-letters` print;
 * anything else, from a newer daemon or a forged envelope, is "unknown". */
static void test_deadletter_reason_names(void **state)
{
    (void)state;
    assert_string_equal(shmbus_dead_letter_reason(SHMBUS_DL_NACKED), "nacked");
    assert_string_equal(shmbus_dead_letter_reason(SHMBUS_DL_DIED), "died");
    assert_string_equal(shmbus_dead_letter_reason(SHMBUS_DL_EVICTED), "evicted");
    assert_string_equal(shmbus_dead_letter_reason(SHMBUS_DL_STALLED), "stalled");
    assert_string_equal(shmbus_dead_letter_reason(SHMBUS_DL_LEFT), "left");
    assert_string_equal(shmbus_dead_letter_reason(0), "unknown");
    assert_string_equal(shmbus_dead_letter_reason(UINT32_MAX), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadletter_layout),
        cmocka_unit_test(test_deadletter_round_trip),
        cmocka_unit_test(test_deadletter_skips_room),
        cmocka_unit_test(test_deadletter_builder_refuses),
        cmocka_unit_test(test_deadletter_parse_refuses),
        cmocka_unit_test(test_deadletter_reason_names),
    };
    tu_init();
    return cmocka_run_group_tests_name("deadletter", tests, NULL, NULL);
}
