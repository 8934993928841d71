/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's JSON lines end to end (shmbusd --bridge, bridgetest.h): PING,
 * SUB, PUB and UNSUB with ids echoed, binary, text and Unicode payloads,
 * errors, the request size limit, and payloads of control characters as
 * base64. Each test runs its own daemon; the teardown checks that it
 * exited 0 (a sanitizer report in it fails the test) and left no segment.
 */
#include "bridgetest.h"

/* JSON: PING, SUB, PUB, delivery, UNSUB; ids echoed; pipelining, blank
 * lines, CRLF endings and a command split into single bytes. */
static void test_bridge_json_roundtrip(void **state)
{
    struct bc *a, *b;
    struct jmsg m;
    const char *split = "{\"command\":\"PING\",\"id\":\"split\"}\n";
    struct timespec now;

    (void)state;
    a = bc_open();
    b = bc_open();
    bc_send_str(a, "{\"command\":\"PING\",\"id\":7}\n");
    bc_expect_line(a, "{\"ok\":true,\"command\":\"PING\",\"id\":7}");
    bc_send_str(a, "\r\n\n  {\"command\":\"SUB\", \"topic\":\"jt\", \"id\":\"a\"}\r\n"
                   "{\"command\":\"SUB\",\"topic\":\"jt\"}\n");
    bc_expect_line(a, "{\"ok\":true,\"command\":\"SUB\",\"id\":\"a\",\"topic\":\"jt\","
                      "\"subscriptions\":1}");
    bc_expect_line(a, "{\"ok\":true,\"command\":\"SUB\",\"topic\":\"jt\",\"subscriptions\":1}");
    /* The topic does not exist yet: this publish creates it. */
    bc_send_str(b, "{\"command\":\"PUB\",\"topic\":\"jt\",\"payload\":\"hello\",\"id\":1.5e3}\n");
    bc_expect_line(b, "{\"ok\":true,\"command\":\"PUB\",\"id\":1.5e3,\"topic\":\"jt\","
                      "\"receivers\":1}");
    bc_jmsg(a, "jt", &m);
    clock_gettime(CLOCK_REALTIME, &now);
    assert_int_equal(m.seq, 0);
    assert_int_equal(m.lost, 0);
    assert_false(m.b64);
    assert_memory_equal(m.data, "hello", 5);
    assert_int_equal(m.len, 5);
    assert_true(m.ts > 0 && (uint64_t)now.tv_sec * 1000000000u + 60000000000u > m.ts &&
                m.ts + 60000000000u > (uint64_t)now.tv_sec * 1000000000u);
    bc_send_str(a, "{\"id\":-2,\"topic\":\"jt\",\"command\":\"UNSUB\"}\n");
    bc_expect_line(a, "{\"ok\":true,\"command\":\"UNSUB\",\"id\":-2,\"topic\":\"jt\","
                      "\"subscriptions\":0}");
    bc_send_str(b, "{\"command\":\"PUB\",\"topic\":\"jt\",\"payload\":\"again\"}\n");
    bc_expect_line(b, "{\"ok\":true,\"command\":\"PUB\",\"topic\":\"jt\",\"receivers\":0}");
    for (size_t i = 0; split[i] != '\0'; i++)
        bc_send(a, split + i, 1);
    /* Nothing was delivered after UNSUB: the next line is the PING's. */
    bc_expect_line(a, "{\"ok\":true,\"command\":\"PING\",\"id\":\"split\"}");
    bc_close(a);
    bc_close(b);
}

/* Every byte 0..255 via payload_base64: exact to a local subscriber and to
 * a remote JSON one (as payload_base64: not UTF-8), and back from a local
 * publisher; NUL and escapes in a text payload; empty payloads. */
static void test_bridge_json_binary_payload(void **state)
{
    struct du_daemon *d = *state;
    unsigned char all[256];
    char b64[400], cmd[600];
    struct bc *r, *p;
    struct jmsg m;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "bin", 0, 0);
    shmbus_sub *s = local_sub(t);
    shmbus_pub *lp = local_pub(t);

    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    b64_encode(b64, all, sizeof(all));
    r = bc_open();
    p = bc_open();
    bc_send_str(r, "{\"command\":\"SUB\",\"topic\":\"bin\"}\n");
    bc_expect_line(r, "{\"ok\":true,\"command\":\"SUB\",\"topic\":\"bin\",\"subscriptions\":1}");
    snprintf(cmd, sizeof(cmd),
             "{\"command\":\"PUB\",\"topic\":\"bin\",\"payload_base64\":\"%s\"}\n", b64);
    bc_send_str(p, cmd);
    bc_expect_line(p, "{\"ok\":true,\"command\":\"PUB\",\"topic\":\"bin\",\"receivers\":2}");
    local_expect(s, all, sizeof(all));
    bc_jmsg(r, "bin", &m);
    assert_true(m.b64);
    assert_int_equal(m.len, 256);
    assert_memory_equal(m.data, all, 256);
    /* Local to remote. */
    assert_shmbus_ok(shmbus_publish(lp, all, sizeof(all), 0));
    local_expect(s, all, sizeof(all));
    bc_jmsg(r, "bin", &m);
    assert_true(m.b64 && m.len == 256 && m.seq == 1);
    assert_memory_equal(m.data, all, 256);
    bc_close(r);
    bc_close(p);
}

/* Text payloads with NUL, quote, backslash and controls, published as a
 * "payload" string: delivered exactly, as base64 when the escapes would be
 * longer (mostly control characters) and as text otherwise; and empty
 * payloads written either way. */
static void test_bridge_json_text_payload(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "txt", 0, 0);
    shmbus_sub *s = local_sub(t);
    struct bc *r = bc_open(), *p = bc_open();
    struct jmsg m;

    bc_send_str(r, "{\"command\":\"SUB\",\"topic\":\"txt\"}\n");
    bc_expect_line(r, "{\"ok\":true,\"command\":\"SUB\",\"topic\":\"txt\",\"subscriptions\":1}");
    bc_send_str(p, "{\"command\":\"PUB\",\"topic\":\"txt\",\"payload\":\"a\\u0000b\\n\\\"\\\\\\t"
                   "\\u001f\\u007f/\\/\"}\n");
    bc_expect_line(p, "{\"ok\":true,\"command\":\"PUB\",\"topic\":\"txt\",\"receivers\":2}");
    local_expect(s, "a\0b\n\"\\\t\x1f\x7f//", 11);
    bc_jmsg(r, "txt", &m);
    assert_true(m.b64); /* 30 bytes escaped, 16 in base64 */
    assert_int_equal(m.len, 11);
    assert_memory_equal(m.data, "a\0b\n\"\\\t\x1f\x7f//", 11);
    bc_send_str(p, "{\"command\":\"PUB\",\"topic\":\"txt\",\"payload\":\"line one\\nline "
                   "\\\"two\\\"\\t\\\\ end\"}\n");
    bc_expect_line(p, "{\"ok\":true,\"command\":\"PUB\",\"topic\":\"txt\",\"receivers\":2}");
    local_expect(s, "line one\nline \"two\"\t\\ end", 25);
    bc_jmsg(r, "txt", &m);
    assert_false(m.b64); /* 30 bytes escaped, 36 in base64 */
    assert_int_equal(m.len, 25);
    assert_memory_equal(m.data, "line one\nline \"two\"\t\\ end", 25);
    /* Empty payloads, both ways of writing them. */
    bc_send_str(p, "{\"command\":\"PUB\",\"topic\":\"txt\",\"payload\":\"\"}\n"
                   "{\"command\":\"PUB\",\"topic\":\"txt\",\"payload_base64\":\"\"}\n");
    for (int i = 0; i < 2; i++) {
        bc_expect_line(p, "{\"ok\":true,\"command\":\"PUB\",\"topic\":\"txt\",\"receivers\":2}");
        local_expect(s, "", 0);
        bc_jmsg(r, "txt", &m);
        assert_int_equal(m.len, 0);
        assert_int_equal(m.seq, 2 + i);
    }
    bc_close(r);
    bc_close(p);
}

/* \u escapes (BMP and surrogate pairs) and raw UTF-8 in, UTF-8 bytes to a
 * local subscriber, and the same text out to a JSON subscriber; broken
 * escapes and broken UTF-8 are refused. */
static void test_bridge_json_unicode(void **state)
{
    struct du_daemon *d = *state;
    static const char want[] = "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80 \xc3\xa9\xf0\x9f\x98\x80";
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "uni", 0, 0);
    shmbus_sub *s = local_sub(t);
    struct bc *r = bc_open(), *p = bc_open();
    struct jmsg m;
    char *line;

    bc_send_str(r, "{\"command\":\"SUB\",\"topic\":\"uni\"}\n");
    bc_expect_line(r, "{\"ok\":true,\"command\":\"SUB\",\"topic\":\"uni\",\"subscriptions\":1}");
    bc_send_str(p, "{\"command\":\"PUB\",\"topic\":\"uni\",\"payload\":"
                   "\"\\u00e9\\u4E2D\\ud83d\\ude00 \xc3\xa9\xf0\x9f\x98\x80\"}\n");
    bc_expect_line(p, "{\"ok\":true,\"command\":\"PUB\",\"topic\":\"uni\",\"receivers\":2}");
    local_expect(s, want, sizeof(want) - 1);
    bc_jmsg(r, "uni", &m);
    assert_false(m.b64);
    assert_int_equal(m.len, sizeof(want) - 1);
    assert_memory_equal(m.data, want, sizeof(want) - 1);
    /* Refused: lone surrogates, a bad escape, bytes that are not UTF-8. */
    static const char *const bad[] = {
        "{\"command\":\"PUB\",\"topic\":\"uni\",\"payload\":\"\\ud800\"}\n",
        "{\"command\":\"PUB\",\"topic\":\"uni\",\"payload\":\"\\udc00x\"}\n",
        "{\"command\":\"PUB\",\"topic\":\"uni\",\"payload\":\"\\u12g4\"}\n",
        "{\"command\":\"PUB\",\"topic\":\"uni\",\"payload\":\"\\x\"}\n",
        "{\"command\":\"PUB\",\"topic\":\"uni\",\"payload\":\"\xff\"}\n",
        "{\"command\":\"PUB\",\"topic\":\"uni\",\"payload\":\"\xc0\xaf\"}\n",
        "{\"command\":\"PUB\",\"topic\":\"uni\",\"payload\":\"\xed\xa0\x80\"}\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bc_send_str(p, bad[i]);
        line = bc_line(p);
        if (strncmp(line, "{\"ok\":false,\"error\":\"", 21) != 0)
            fail_msg("%s: got '%s', want an error", esc(bad[i], strlen(bad[i])), line);
        free(line);
    }
    /* None of them was published: the next message is this one. */
    bc_send_str(p, "{\"command\":\"PUB\",\"topic\":\"uni\",\"payload\":\"ok\"}\n");
    bc_expect_line(p, "{\"ok\":true,\"command\":\"PUB\",\"topic\":\"uni\",\"receivers\":2}");
    local_expect(s, "ok", 2);
    bc_jmsg(r, "uni", &m);
    assert_int_equal(m.seq, 1);
    bc_close(r);
    bc_close(p);
}

/* One malformed or refused JSON command: the reply must be exactly @p want,
 * or (when @p want ends with '*') start with it. */
struct jcase {
    const char *send, *want;
};

static void json_cases(struct bc *c, const struct jcase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t wl = strlen(cases[i].want);
        int prefix = cases[i].want[wl - 1] == '*';
        char *line;

        bc_send_str(c, cases[i].send);
        line = bc_line(c);
        if (prefix ? strncmp(line, cases[i].want, wl - 1) != 0 : strcmp(line, cases[i].want) != 0)
            fail_msg("sent '%s': got '%s', want '%s'", esc(cases[i].send, strlen(cases[i].send)),
                     esc(line, strlen(line)), cases[i].want);
        free(line);
    }
}

/* Error replies for malformed JSON and refused commands; the connection
 * and the daemon go on serving. */
static char json_big[2200]; /* a PUB of 2000 bytes, filled in by the test */

static const struct jcase json_error_cases[] = {
    {"{\"command\":\n", "{\"ok\":false,\"error\":\"expected a string at byte 11\"}"},
    {"not json\n", "{\"ok\":false,\"error\":\"expected a JSON object at byte 0\"}"},
    {"{\"command\":\"PING\"} x\n", "{\"ok\":false,\"error\":\"text after the object*"},
    {"{\"command\":\"FOO\",\"id\":1}\n",
     "{\"ok\":false,\"error\":\"unknown command (SUB, UNSUB, PUB, PING, AUTH)\"}"},
    {"{\"topic\":\"x\"}\n", "{\"ok\":false,\"error\":\"missing \\\"command\\\"\"}"},
    {"{\"command\":\"SUB\",\"topic\":\"x\",\"extra\":1}\n",
     "{\"ok\":false,\"error\":\"unknown field*"},
    {"{\"command\":\"SUB\",\"topic\":\"x\",\"topic\":\"y\"}\n",
     "{\"ok\":false,\"error\":\"repeated field*"},
    {"{\"command\":\"SUB\",\"topic\":7}\n", "{\"ok\":false,\"error\":\"expected a string*"},
    {"{\"command\":\"PING\",\"id\":[1]}\n", "{\"ok\":false,\"error\":\"expected a value*"},
    {"{\"command\":\"PING\",\"id\":01}\n", "{\"ok\":false,\"error\":\"bad number*"},
    {"{\"command\":\"SUB\",\"topic\":\"a/b\",\"id\":3}\n",
     "{\"ok\":false,\"command\":\"SUB\",\"id\":3,\"error\":\"invalid topic name: 1-128 "
     "characters of A-Z a-z 0-9 _ . : -, not starting with '.'\"}"},
    {"{\"command\":\"SUB\",\"topic\":\"\"}\n",
     "{\"ok\":false,\"command\":\"SUB\",\"error\":\"invalid topic name*"},
    {"{\"command\":\"PUB\",\"topic\":\".x\",\"payload\":\"\"}\n",
     "{\"ok\":false,\"command\":\"PUB\",\"error\":\"invalid topic name*"},
    {"{\"command\":\"SUB\",\"topic\":\"a\\u0000b\"}\n",
     "{\"ok\":false,\"command\":\"SUB\",\"error\":\"invalid topic name*"},
    {"{\"command\":\"SUB\",\"id\":\"q\"}\n",
     "{\"ok\":false,\"command\":\"SUB\",\"id\":\"q\",\"error\":\"missing \\\"topic\\\"\"}"},
    {"{\"command\":\"PUB\",\"topic\":\"x\"}\n",
     "{\"ok\":false,\"command\":\"PUB\",\"error\":\"missing \\\"payload\\\" or "
     "\\\"payload_base64\\\"\"}"},
    {"{\"command\":\"PUB\",\"topic\":\"x\",\"payload\":\"a\",\"payload_base64\":\"YQ==\"}\n",
     "{\"ok\":false,\"error\":\"both \\\"payload\\\" and \\\"payload_base64\\\"\"}"},
    {"{\"command\":\"PUB\",\"topic\":\"x\",\"payload_base64\":\"YQ=\"}\n",
     "{\"ok\":false,\"error\":\"\\\"payload_base64\\\" is not padded base64\"}"},
    {"{\"command\":\"PUB\",\"topic\":\"x\",\"payload_base64\":\"YR==\"}\n",
     "{\"ok\":false,\"error\":\"\\\"payload_base64\\\" is not padded base64\"}"},
    {"{\"command\":\"AUTH\",\"token\":\"x\"}\n",
     "{\"ok\":false,\"command\":\"AUTH\",\"error\":\"no token is configured: AUTH is not "
     "needed\"}"},
    {json_big, "{\"ok\":false,\"command\":\"PUB\",\"error\":\"message of 2000 bytes; topic 'big' "
               "takes at most 1024\"}"},
};

static void test_bridge_json_errors(void **state)
{
    struct bc *c = bc_open(), *other;

    (void)state;
    snprintf(json_big, sizeof(json_big),
             "{\"command\":\"PUB\",\"topic\":\"big\",\"payload\":\"%2000s\"}\n", "");
    json_cases(c, json_error_cases, sizeof(json_error_cases) / sizeof(json_error_cases[0]));
    bc_send_str(c, "{\"command\":\"PING\"}\n");
    bc_expect_line(c, "{\"ok\":true,\"command\":\"PING\"}");
    other = bc_open();
    bc_send_str(other, "PING\r\n");
    bc_expect(other, "+PONG\r\n");
    bc_close(other);
    bc_close(c);
}

static const struct bt_opts maxreq_opts = {.args = {"--bridge-max-request", "1024", NULL}};

/* A JSON line or a RESP request longer than --bridge-max-request gets an
 * error and is disconnected; requests under it go through; others are
 * served meanwhile. */
static void test_bridge_max_request(void **state)
{
    static const char prefix[] = "{\"command\":\"PUB\",\"topic\":\"x\",\"payload\":\"";
    static char line[2100], ok[1100];
    struct bc *j = bc_open(), *r = bc_open(), *i = bc_open(), *m = bc_open(), *good = bc_open();
    char *s;

    (void)state;
    memset(line, 'a', sizeof(line) - 1);
    memcpy(line, prefix, strlen(prefix));
    bc_send_str(j, line);
    bc_expect_line(j, "{\"ok\":false,\"error\":\"line longer than --bridge-max-request\"}");
    assert_true(bc_wait_eof(j, BT_MS, NULL));
    /* One bulk longer than the limit. */
    bc_send_str(r, "*3\r\n$7\r\nPUBLISH\r\n$1\r\nx\r\n$2000\r\n");
    bc_expect(r, "-ERR Protocol error: invalid bulk length\r\n");
    assert_true(bc_wait_eof(r, BT_MS, NULL));
    /* An inline command past 64 KiB without its end. */
    s = malloc(70000);
    assert_non_null(s);
    memset(s, 'a', 70000);
    memcpy(s, "PING ", 5);
    /* The daemon closes once it has read 64 KiB: the rest may not go. */
    bc_send_lossy(i, s, 70000);
    bc_expect(i, "-ERR Protocol error: too big inline request\r\n");
    assert_true(bc_wait_eof(i, BT_MS, NULL));
    /* Bulks each under the limit, but the command as a whole far past it. */
    bc_send_str(m, "*100\r\n");
    memset(s, 'b', 1000);
    for (int k = 0; k < 67; k++) { /* as above: it closes at the limit */
        bc_send_lossy(m, "$1000\r\n", 7);
        bc_send_lossy(m, s, 1000);
        bc_send_lossy(m, "\r\n", 2);
    }
    bc_expect(m, "-ERR Protocol error: request too large\r\n");
    assert_true(bc_wait_eof(m, BT_MS, NULL));
    free(s);
    /* A line just under the limit works. */
    snprintf(ok, sizeof(ok), "{\"command\":\"PUB\",\"topic\":\"x\",\"payload\":\"%960s\"}\n", "");
    assert_true(strlen(ok) < 1024);
    bc_send_str(good, ok);
    bc_expect_line(good, "{\"ok\":true,\"command\":\"PUB\",\"topic\":\"x\",\"receivers\":0}");
    bc_close(j);
    bc_close(r);
    bc_close(i);
    bc_close(m);
    bc_close(good);
}

static const struct bt_opts bigjson_opts = {.args = {"--bridge-max-output", "4M", NULL}};

#define BJ_N    32
#define BJ_SIZE 65536

/*
 * Payloads of control characters go out in JSON as base64, not escaped:
 * BJ_N messages of BJ_SIZE zero bytes (valid UTF-8) from a local publisher
 * reach a JSON subscriber, which reads as they come, on a daemon with
 * --bridge-max-output 4M: each as "payload_base64" with the exact bytes,
 * in order, nothing lost, and the connection stays. Guards
 * sbb_json_delivery() (bridge/json.c) and the rounds' byte bound
 * (SBB_ROUND_BYTES): each 0 byte used to become \u0000, six times the
 * payload, and one round of these messages passed the output limit, so
 * the subscriber was cut off.
 */
static void test_bridge_json_zeros_as_base64(void **state)
{
    static unsigned char zeros[BJ_SIZE], got[BJ_SIZE + 3];
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic_opts o = {.capacity = 2 * BJ_N, .max_msg_size = BJ_SIZE};
    shmbus_topic *t = NULL;
    struct bc *c = bc_open();

    assert_shmbus_ok(shmbus_open(bus, "zeros", &o, 0, &t));
    BT_TRACK(bt_topics, t);
    bc_send_str(c, "{\"command\":\"SUB\",\"topic\":\"zeros\"}\n");
    bc_expect_line(c, "{\"ok\":true,\"command\":\"SUB\",\"topic\":\"zeros\",\"subscriptions\":1}");
    for (int i = 0; i < BJ_N; i++)
        assert_shmbus_ok(shmbus_publish(local_pub(t), zeros, BJ_SIZE, 0));
    for (int i = 0; i < BJ_N; i++) {
        char *s = bc_line(c);
        const char *b, *seq = NULL;
        struct jobj m;
        size_t blen = 0;
        long n;

        if (jobj_parse(s, &m) < 0 || (seq = jobj_get(&m, "seq", NULL)) == NULL)
            fail_msg("message %d: not a delivery: '%s'", i, esc(s, strlen(s)));
        b = jobj_get(&m, "payload_base64", &blen);
        if (b == NULL)
            fail_msg("message %d: want \"payload_base64\", got a line of %zu bytes: '%s'", i,
                     strlen(s), esc(s, strlen(s)));
        n = b64_decode(got, b, blen);
        if (n != BJ_SIZE || memcmp(got, zeros, BJ_SIZE) != 0)
            fail_msg("message %d: %ld bytes decoded, want %d zero bytes", i, n, BJ_SIZE);
        assert_int_equal(strtoull(seq, NULL, 10), i);
        assert_null(jobj_get(&m, "lost", NULL));
        free(m.mem);
        free(s);
    }
    bc_send_str(c, "{\"command\":\"PING\"}\n");
    bc_expect_line(c, "{\"ok\":true,\"command\":\"PING\"}");
    bc_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BRIDGE_TEST(test_bridge_json_roundtrip),
        BRIDGE_TEST(test_bridge_json_binary_payload),
        BRIDGE_TEST(test_bridge_json_text_payload),
        BRIDGE_TEST(test_bridge_json_unicode),
        BRIDGE_TEST(test_bridge_json_errors),
        BRIDGE_TEST_ARGS(test_bridge_max_request, &maxreq_opts),
        BRIDGE_TEST_ARGS(test_bridge_json_zeros_as_base64, &bigjson_opts),
    };

    bt_init();
    return cmocka_run_group_tests_name("bridge_json", tests, NULL, NULL);
}
