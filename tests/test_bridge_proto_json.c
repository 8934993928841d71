/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's JSON-lines codec (daemon/bridge/json.c), driven directly:
 * the parser with its escapes, UTF-8 and field rules; the delivery encoder,
 * read back through the parser; the UTF-8 check against Unicode's table of
 * well-formed sequences. The parser gets exact-size heap copies and an
 * exact-size scratch buffer so that ASan catches any access past them.
 */
#include "prototest.h"

#include "bridge/json.h"
#include "util/utf8.h"

/* ========================================================== JSON lines */

/* The parser's state for one test: exact-size copies of its last line and
 * scratch buffer, which the decoded fields point into. */
struct jp {
    struct sbb_jcommand c;
    char err[128];
    char *line, *scratch;
    size_t len;
};

static int jp_setup(void **state)
{
    return state_alloc(state, sizeof(struct jp));
}

static int jp_teardown(void **state)
{
    struct jp *j = *state;

    free(j->line);
    free(j->scratch);
    free(j);
    return 0;
}

/* A decoded field lies within the scratch buffer. */
static void jp_in_scratch(const struct jp *j, const struct sbb_jstr *s)
{
    if (s->p == NULL)
        return;
    assert_true(s->p >= j->scratch && s->p + s->len <= j->scratch + j->len);
}

static int jp_parse_n(struct jp *j, const char *s, size_t n)
{
    int rc;

    free(j->line);
    free(j->scratch);
    j->line = exact_copy(s, n);
    j->scratch = malloc(n > 0 ? n : 1);
    assert_non_null(j->scratch);
    memset(j->scratch, 0xa5, n > 0 ? n : 1);
    j->len = n;
    memset(j->err, 0, sizeof(j->err));
    rc = sbb_json_parse(j->line, n, j->scratch, &j->c, j->err, sizeof(j->err));
    if (rc < 0) {
        assert_int_equal(rc, -1);
        assert_true(j->err[0] != '\0');
        return rc;
    }
    assert_int_equal(rc, 0);
    assert_true(j->c.cmd >= SBB_J_SUB && j->c.cmd <= SBB_J_AUTH);
    jp_in_scratch(j, &j->c.topic);
    jp_in_scratch(j, &j->c.payload);
    jp_in_scratch(j, &j->c.token);
    if (j->c.id.p != NULL) /* echoed as it was written */
        assert_true(j->c.id.p >= j->line && j->c.id.p + j->c.id.len <= j->line + n);
    return rc;
}

#define jp_parse(j, lit) jp_parse_n((j), (lit), sizeof(lit) - 1)

/* Parse {"command":"PUB","topic":"t",<field>} with <field> given whole. */
static int jp_field(struct jp *j, const char *field, size_t n)
{
    static const char head[] = "{\"command\":\"PUB\",\"topic\":\"t\",";
    char line[1024];

    assert_true(sizeof(head) + n < sizeof(line));
    memcpy(line, head, sizeof(head) - 1);
    memcpy(line + sizeof(head) - 1, field, n);
    line[sizeof(head) - 1 + n] = '}';
    return jp_parse_n(j, line, sizeof(head) + n);
}

#define jp_field_lit(j, lit) jp_field((j), (lit), sizeof(lit) - 1)

static void jp_str(const struct sbb_jstr *s, const void *want, size_t n)
{
    assert_non_null(s->p);
    assert_int_equal(s->len, n);
    if (n > 0)
        assert_memory_equal(s->p, want, n);
}

#define assert_jstr(s, lit) jp_str((s), (lit), sizeof(lit) - 1)

static void test_json_parse_every_command(void **state)
{
    struct jp *j = *state;

    assert_int_equal(jp_parse(j, "{\"command\":\"SUB\",\"topic\":\"orders.eu\"}"), 0);
    assert_int_equal(j->c.cmd, SBB_J_SUB);
    assert_jstr(&j->c.topic, "orders.eu");
    assert_null(j->c.payload.p);
    assert_null(j->c.token.p);
    assert_null(j->c.id.p);
    assert_int_equal(jp_parse(j, "{\"command\":\"UNSUB\",\"topic\":\"orders.*\"}"), 0);
    assert_int_equal(j->c.cmd, SBB_J_UNSUB);
    assert_jstr(&j->c.topic, "orders.*");
    assert_int_equal(jp_parse(j, "{\"command\":\"PUB\",\"topic\":\"t\",\"payload\":\"hi\"}"), 0);
    assert_int_equal(j->c.cmd, SBB_J_PUB);
    assert_jstr(&j->c.topic, "t");
    assert_jstr(&j->c.payload, "hi");
    assert_int_equal(jp_parse(j, "{\"command\":\"PUB\",\"topic\":\"t\",\"payload\":\"\"}"), 0);
    assert_jstr(&j->c.payload, "");
    assert_int_equal(jp_parse(j, "{\"command\":\"PING\"}"), 0);
    assert_int_equal(j->c.cmd, SBB_J_PING);
    assert_null(j->c.topic.p);
    assert_int_equal(jp_parse(j, "{\"command\":\"AUTH\",\"token\":\"s3cret\"}"), 0);
    assert_int_equal(j->c.cmd, SBB_J_AUTH);
    assert_jstr(&j->c.token, "s3cret");
    /* Any order, any JSON whitespace. */
    assert_int_equal(jp_parse(j, " \t{ \"payload\" :\t\"x\" ,\r\n\"topic\":\"t\" , \"command\""
                                 " : \"PUB\" } \t\r\n"),
                     0);
    assert_int_equal(j->c.cmd, SBB_J_PUB);
    assert_jstr(&j->c.payload, "x");
    /* A key may be written with escapes like any string. */
    assert_int_equal(jp_parse(j, "{\"\\u0063ommand\":\"PING\"}"), 0);
    assert_int_equal(j->c.cmd, SBB_J_PING);
}

static void test_json_parse_rejects_bad_commands(void **state)
{
    struct jp *j = *state;

    assert_int_equal(jp_parse(j, "{}"), -1);
    assert_string_equal(j->err, "missing \"command\"");
    assert_int_equal(jp_parse(j, "{\"topic\":\"t\"}"), -1);
    assert_int_equal(jp_parse(j, "{\"command\":\"PUBLISH\"}"), -1);
    assert_int_equal(jp_parse(j, "{\"command\":\"\"}"), -1);
    assert_int_equal(jp_parse(j, "{\"command\":\"PING\\u0000\"}"), -1);
    assert_int_equal(jp_parse(j, "{\"command\":\"PUB\",\"payload\":\"a\","
                                 "\"payload_base64\":\"YQ==\"}"),
                     -1);
    /* Fields other than "id" are strings. */
    assert_int_equal(jp_parse(j, "{\"command\":1}"), -1);
    assert_int_equal(jp_field_lit(j, "\"payload\":1"), -1);
    assert_int_equal(jp_field_lit(j, "\"payload\":null"), -1);
    assert_int_equal(jp_field_lit(j, "\"payload\":true"), -1);
    assert_int_equal(jp_field_lit(j, "\"payload\":[\"a\"]"), -1);
    assert_int_equal(jp_field_lit(j, "\"payload\":{\"a\":\"b\"}"), -1);
    assert_int_equal(jp_field_lit(j, "\"token\":0"), -1);
}

static void test_json_parse_rejects_unknown_and_repeated_fields(void **state)
{
    struct jp *j = *state;

    assert_int_equal(jp_parse(j, "{\"command\":\"PING\",\"extra\":\"x\"}"), -1);
    assert_non_null(strstr(j->err, "unknown field"));
    assert_int_equal(jp_parse(j, "{\"command\":\"PING\",\"Command\":\"PING\"}"), -1);
    assert_int_equal(jp_parse(j, "{\"command\":\"PING\",\"\":\"x\"}"), -1);
    assert_int_equal(jp_parse(j, "{\"command\":\"PING\",\"topic \":\"x\"}"), -1);
    assert_int_equal(jp_parse(j, "{\"command\":\"PING\",\"command\":\"PING\"}"), -1);
    assert_non_null(strstr(j->err, "repeated field"));
    assert_int_equal(jp_field_lit(j, "\"topic\":\"u\""), -1);
    assert_non_null(strstr(j->err, "repeated field"));
    assert_int_equal(jp_field_lit(j, "\"\\u0074opic\":\"u\""), -1);
    assert_int_equal(jp_field_lit(j, "\"payload\":\"\",\"payload\":\"\""), -1);
    assert_int_equal(jp_field_lit(j, "\"payload_base64\":\"\",\"payload_base64\":\"\""), -1);
    assert_int_equal(jp_field_lit(j, "\"token\":\"a\",\"token\":\"a\""), -1);
    assert_int_equal(jp_field_lit(j, "\"id\":1,\"id\":2"), -1);
    assert_non_null(strstr(j->err, "repeated field"));
    assert_int_equal(jp_field_lit(j, "\"id\":\"a\",\"id\":\"a\""), -1);
}

static const struct {
    const char *in; /* the JSON string, quotes included */
    size_t len;
    const char *out; /* its decoded bytes */
    size_t outl;
} json_escapes[] = {
    {LIT("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), LIT("\"\\/\b\f\n\r\t")},
    {LIT("\"\\u0041\""), LIT("A")},
    {LIT("\"\\u0000\""), LIT("\0")},
    {LIT("\"a\\u0000b\""), LIT("a\0b")},
    {LIT("\"\\u001f\\u007f\""), LIT("\x1f\x7f")},
    {LIT("\"\\u0080\\u07ff\\u0800\""), LIT("\xc2\x80\xdf\xbf\xe0\xa0\x80")},
    {LIT("\"\\u00e9\\u00E9\""), LIT("\xc3\xa9\xc3\xa9")},
    {LIT("\"\\u20ac\""), LIT("\xe2\x82\xac")},
    {LIT("\"\\ud7ff\\ue000\\uffff\""), LIT("\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf")},
    {LIT("\"\\ud83d\\ude00\""), LIT("\xf0\x9f\x98\x80")},
    {LIT("\"\\uD83D\\uDE00\""), LIT("\xf0\x9f\x98\x80")},
    {LIT("\"\\ud800\\udc00\""), LIT("\xf0\x90\x80\x80")},
    {LIT("\"\\udbff\\udfff\""), LIT("\xf4\x8f\xbf\xbf")},
    {LIT("\"x\\ud83d\\ude00\\ud83d\\ude00y\""), LIT("x\xf0\x9f\x98\x80\xf0\x9f\x98\x80y")},
    {LIT("\"h\xc3\xa9 \xf0\x9f\x98\x80 \x7f\""), LIT("h\xc3\xa9 \xf0\x9f\x98\x80 \x7f")},
};

static void test_json_parse_escapes(void **state)
{
    struct jp *j = *state;
    char field[256];

    for (size_t i = 0; i < sizeof(json_escapes) / sizeof(json_escapes[0]); i++) {
        size_t n = (size_t)sprintf(field, "\"payload\":");

        memcpy(field + n, json_escapes[i].in, json_escapes[i].len);
        if (jp_field(j, field, n + json_escapes[i].len) != 0)
            fail_msg("#%zu %s: %s", i, json_escapes[i].in, j->err);
        jp_str(&j->c.payload, json_escapes[i].out, json_escapes[i].outl);
        /* The same in the topic and the token. */
        n = (size_t)sprintf(field, "{\"command\":\"AUTH\",\"token\":");
        memcpy(field + n, json_escapes[i].in, json_escapes[i].len);
        field[n + json_escapes[i].len] = '}';
        assert_int_equal(jp_parse_n(j, field, n + json_escapes[i].len + 1), 0);
        jp_str(&j->c.token, json_escapes[i].out, json_escapes[i].outl);
    }
}

static const struct {
    const char *in;
    size_t len;
} json_bad_strings[] = {
    /* lone or broken surrogates */
    {LIT("\"\\ud83d\"")},
    {LIT("\"\\ud83dx\"")},
    {LIT("\"\\ud83d\\n\"")},
    {LIT("\"\\ud83d\\u0041\"")},
    {LIT("\"\\ud83d\\ud83d\"")},
    {LIT("\"\\ude00\"")},
    {LIT("\"\\udfff\"")},
    {LIT("\"\\ude00\\ud83d\"")},
    {LIT("\"\\ud83d\\ude0\"")},
    {LIT("\"\\ud83d\\")},
    {LIT("\"\\ud83d\\u")},
    {LIT("\"\\udbff\\ue000\"")},
    /* bad escapes */
    {LIT("\"\\u12\"")},
    {LIT("\"\\u12g4\"")},
    {LIT("\"\\u\"")},
    {LIT("\"\\u-123\"")},
    {LIT("\"\\x41\"")},
    {LIT("\"\\a\"")},
    {LIT("\"\\U0041\"")},
    {LIT("\"\\'\"")},
    {LIT("\"\\0\"")},
    {LIT("\"\\")},
    {LIT("\"abc")},
    {LIT("\"")},
    /* invalid UTF-8 */
    {LIT("\"\xc0\x80\"")},
    {LIT("\"\xc1\xbf\"")},
    {LIT("\"\xe0\x80\x80\"")},
    {LIT("\"\xe0\x9f\xbf\"")},
    {LIT("\"\xed\xa0\x80\"")},
    {LIT("\"\xed\xbf\xbf\"")},
    {LIT("\"\xf0\x8f\xbf\xbf\"")},
    {LIT("\"\xf4\x90\x80\x80\"")},
    {LIT("\"\xf5\x80\x80\x80\"")},
    {LIT("\"\xff\"")},
    {LIT("\"\xfe\"")},
    {LIT("\"\x80\"")},
    {LIT("\"\xbf\"")},
    {LIT("\"\xe2\x82\"")},
    {LIT("\"\xc3\"")},
    {LIT("\"\xc3")},
    {LIT("\"\xf0\x9f\x98\"")},
    {LIT("\"\xc3\x41\"")},
    /* raw control characters */
    {LIT("\"\x01\"")},
    {LIT("\"\x1f\"")},
    {LIT("\"a\nb\"")},
    {LIT("\"\t\"")},
    {LIT("\"\r\"")},
    {LIT("\"a\0b\"")},
};

static void test_json_parse_rejects_bad_strings(void **state)
{
    static const char key_tail[] = ":\"x\",\"command\":\"PING\"}";
    static const char id_head[] = "{\"command\":\"PING\",\"id\":";
    struct jp *j = *state;
    char field[64];

    for (size_t i = 0; i < sizeof(json_bad_strings) / sizeof(json_bad_strings[0]); i++) {
        const char *in = json_bad_strings[i].in;
        size_t len = json_bad_strings[i].len;
        size_t n = (size_t)sprintf(field, "\"payload\":");

        memcpy(field + n, in, len);
        if (jp_field(j, field, n + len) != -1)
            fail_msg("#%zu accepted as a payload", i);
        /* As a key, and at the very end of the line. */
        field[0] = '{';
        memcpy(field + 1, in, len);
        memcpy(field + 1 + len, key_tail, sizeof(key_tail) - 1);
        if (jp_parse_n(j, field, 1 + len + sizeof(key_tail) - 1) != -1)
            fail_msg("#%zu accepted as a key", i);
        memcpy(field, id_head, sizeof(id_head) - 1);
        memcpy(field + sizeof(id_head) - 1, in, len);
        if (jp_parse_n(j, field, sizeof(id_head) - 1 + len) != -1)
            fail_msg("#%zu accepted at the end of the line", i);
    }
}

static void test_json_parse_payload_base64(void **state)
{
    struct jp *j = *state;

    assert_int_equal(jp_field_lit(j, "\"payload_base64\":\"\""), 0);
    assert_jstr(&j->c.payload, "");
    assert_int_equal(jp_field_lit(j, "\"payload_base64\":\"AA==\""), 0);
    assert_jstr(&j->c.payload, "\0");
    assert_int_equal(jp_field_lit(j, "\"payload_base64\":\"AAE=\""), 0);
    assert_jstr(&j->c.payload, "\0\x01");
    assert_int_equal(jp_field_lit(j, "\"payload_base64\":\"AAEC\""), 0);
    assert_jstr(&j->c.payload, "\0\x01\x02");
    assert_int_equal(jp_field_lit(j, "\"payload_base64\":\"/+8=\""), 0);
    assert_jstr(&j->c.payload, "\xff\xef");
    assert_int_equal(jp_field_lit(j, "\"payload_base64\":\"aGVsbG8gd29ybGQ=\""), 0);
    assert_jstr(&j->c.payload, "hello world");
    assert_int_equal(jp_field_lit(j, "\"payload_base64\":\"AAECAwQF/w==\""), 0);
    assert_jstr(&j->c.payload, "\0\x01\x02\x03\x04\x05\xff");
    /* JSON escapes are decoded first. */
    assert_int_equal(jp_field_lit(j, "\"payload_base64\":\"\\u0041\\u0041\\u003d=\""), 0);
    assert_jstr(&j->c.payload, "\0");
}

static void test_json_parse_rejects_bad_base64(void **state)
{
    static const char *const bad[] = {
        "A",          "AA",
        "AAA",        "AAAAA",
        "A===",       "====",
        "AA=A",       "=AAA",
        "A=AA",       "AA==AAAA",
        "AAA=AAAA",   "AA==\\u0000",
        "AB==",       "AAB=",
        "AP==",       "AAD=",
        "/w=A",       "AA A",
        "AAA ",       "AA-_",
        "AA.A",       "\xc3\xa9\x41\x41",
        "AA\\u0000A", "AAA=\\n",
    };
    struct jp *j = *state;
    char field[64];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = (size_t)sprintf(field, "\"payload_base64\":\"%s\"", bad[i]);

        if (jp_field(j, field, n) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
    }
    assert_int_equal(jp_field_lit(j, "\"payload_base64\":\"AB==\""), -1);
    assert_string_equal(j->err, "\"payload_base64\" is not padded base64");
}

static void test_json_parse_id_echo(void **state)
{
    static const char *const good[] = {
        "\"abc\"",    "\"\"",
        "\"a\\\"b\"", "\"\\u00e9\"",
        "42",         "0",
        "-7",         "-0",
        "1.5",        "-1.5e+10",
        "2E-3",       "1e5",
        "0.25",       "12345678901234567890123456789012",
    };
    struct jp *j = *state;
    char line[160];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int n = sprintf(line, "{\"id\":%s,\"command\":\"PING\"}", good[i]);

        if (jp_parse_n(j, line, (size_t)n) != 0)
            fail_msg("id %s: %s", good[i], j->err);
        jp_str(&j->c.id, good[i], strlen(good[i]));
        assert_ptr_equal(j->c.id.p, j->line + 6);
        n = sprintf(line, "{\"command\":\"PING\",\"id\":%s}", good[i]);
        assert_int_equal(jp_parse_n(j, line, (size_t)n), 0);
        jp_str(&j->c.id, good[i], strlen(good[i]));
    }
    /* 64 bytes of string, 32 characters of number, no more. */
    memset(line, 0, sizeof(line));
    strcpy(line, "{\"command\":\"PING\",\"id\":\"");
    memset(line + 24, 'i', 64);
    strcpy(line + 88, "\"}");
    assert_int_equal(jp_parse_n(j, line, 90), 0);
    assert_int_equal(j->c.id.len, 66);
    memset(line + 24, 'i', 65);
    strcpy(line + 89, "\"}");
    assert_int_equal(jp_parse_n(j, line, 91), -1);
    assert_int_equal(jp_parse(j, "{\"command\":\"PING\",\"id\":123456789012345678901234567890123}"),
                     -1);
}

static void test_json_parse_rejects_bad_ids(void **state)
{
    /* What is not a JSON string or number would make the reply that
     * echoes it invalid JSON. */
    static const char *const bad[] = {
        "true", "false", "null",        "-",   "1-2", "1..2",  "1e",    "1e+",   "01",
        "-01",  "+1",    ".5",          "1.",  "--1", "1e5e5", "1.2.3", "0x10",  "{}",
        "[]",   "1 2",   "\"\\ud800\"", "\"a", "",    "NaN",   "-1.e3", "1E--2", "00",
    };
    struct jp *j = *state;
    char line[96];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int n = sprintf(line, "{\"command\":\"PING\",\"id\":%s}", bad[i]);

        if (jp_parse_n(j, line, (size_t)n) != -1)
            fail_msg("id %s accepted as \"%.*s\"", bad[i], (int)j->c.id.len, j->c.id.p);
    }
}

static void test_json_parse_rejects_trailing_garbage(void **state)
{
    static const char *const bad[] = {
        "{\"command\":\"PING\"}x",
        "{\"command\":\"PING\"}}",
        "{\"command\":\"PING\"}{}",
        "{\"command\":\"PING\"},",
        "{\"command\":\"PING\"} x",
        "{\"command\":\"PING\",}",
        "{\"command\":\"PING\" \"id\":1}",
        "{\"command\":\"PING\"",
        "{\"command\" \"PING\"}",
        "{\"command\":\"PING\";}",
        "[{\"command\":\"PING\"}]",
        "",
        "   ",
        "\"PING\"",
        "{,\"command\":\"PING\"}",
        "{\"command\":\"PING\",,\"id\":1}",
        "{\"command\":}",
        "{\"command\"}",
        "{command:\"PING\"}",
        "{'command':'PING'}",
        "{\"command\":\"PING\"}\xff",
        "{\"command\":\"PING\"}\f",
    };
    struct jp *j = *state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (jp_parse_n(j, bad[i], strlen(bad[i])) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(jp_parse(j, "{\"command\":\"PING\"}\0"), -1);
    assert_int_equal(jp_parse(j, "{\"command\":\"PING\"} \t\r\n"), 0);
}

static void test_json_parse_error_names_offset(void **state)
{
    struct jp *j = *state;

    assert_int_equal(jp_parse(j, "{\"command\":\"PING\"}x"), -1);
    assert_string_equal(j->err, "text after the object at byte 18");
    assert_int_equal(jp_parse(j, "{\"command\":\"PING\",\"bogus\":\"x\"}"), -1);
    assert_string_equal(j->err, "unknown field at byte 26");
    assert_int_equal(jp_parse(j, "x"), -1);
    assert_string_equal(j->err, "expected a JSON object at byte 0");
    /* A short buffer gets a truncated, terminated message. */
    char small[8], scratch[1];

    memset(small, 'z', sizeof(small));
    assert_int_equal(sbb_json_parse("x", 1, scratch, &j->c, small, sizeof(small)), -1);
    assert_string_equal(small, "expecte");
}

/* ------------------------------------------------------------ delivery */

/* Encode one delivery into a buffer of exactly sbb_json_delivery_max()
 * bytes, check its shape, then send its topic and payload back through the
 * parser as a PUB command: they must decode to what was encoded. */
/* Does a delivery carry @p data as text? Valid UTF-8 whose escaped form is
 * no longer than its base64 form (counted here independently). */
static int text_wins(const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t esc = 0;

    for (size_t i = 0; i < len; i++) {
        if (strchr("\"\\\n\r\t", p[i]) != NULL && p[i] != '\0')
            esc += 2;
        else if (p[i] < 0x20 || p[i] == 0x7f)
            esc += 6;
        else
            esc += 1;
    }
    return sb_utf8_valid(data, len) && esc <= (len + 2) / 3 * 4;
}

static void jp_delivery_roundtrip(struct jp *j, const char *topic, size_t topicl, const void *data,
                                  size_t len)
{
    size_t max = sbb_json_delivery_max(topicl, len);
    char *out = malloc(max), *cmd = malloc(max + 32);
    const char *seq, *pl;
    size_t n, c;

    assert_non_null(out);
    assert_non_null(cmd);
    n = sbb_json_delivery(out, topic, topicl, data, len, len, UINT64_MAX, len & 1);
    assert_true(n <= max);
    assert_true(sb_utf8_valid(out, n));
    assert_memory_equal(out + n - 2, "}\n", 2);
    assert_ptr_equal(memchr(out, '\n', n), out + n - 1);
    assert_memory_equal(out, "{\"topic\":\"", 10);
    seq = memmem(out, n, ",\"seq\":", 7);
    pl = memmem(out, n, ",\"payload", 9);
    assert_non_null(seq);
    assert_non_null(pl);
    c = (size_t)sprintf(cmd, "{\"command\":\"PUB\",\"topic\":");
    memcpy(cmd + c, out + 9, (size_t)(seq - out - 9));
    c += (size_t)(seq - out - 9);
    memcpy(cmd + c, pl, (size_t)(out + n - 1 - pl));
    c += (size_t)(out + n - 1 - pl);
    assert_int_equal(jp_parse_n(j, cmd, c), 0);
    jp_str(&j->c.topic, topic, topicl);
    jp_str(&j->c.payload, data, len);
    assert_int_equal(memcmp(pl, ",\"payload\":", 11) == 0, text_wins(data, len));
    free(out);
    free(cmd);
}

#define assert_delivery(out, n, lit)                                                               \
    do {                                                                                           \
        assert_int_equal((n), sizeof(lit) - 1);                                                    \
        assert_memory_equal((out), (lit), sizeof(lit) - 1);                                        \
    } while (0)

static void test_json_delivery_exact(void **state)
{
    /* Escaped: 85 bytes, base64: 88. Text stays text. */
    static const char utf8[] = "h\xc3\xa9 \"q\" \\ \n\r\t\x01\x1f\x7f/ and then a good many "
                               "ordinary words after them";
    static const char want1[] = "{\"topic\":\"news\",\"seq\":7,\"ts\":123,\"payload\":\"h\xc3\xa9 "
                                "\\\"q\\\" \\\\ \\n\\r\\t\\u0001\\u001f\\u007f/ and then a "
                                "good many ordinary words after them\"}\n";
    /* Escaped: 38 bytes, base64: 24. Mostly control characters go as
     * base64, though they are valid UTF-8. */
    static const char ctl[] = "h\xc3\xa9 \"q\" \\ \n\r\t\x01\x1f\x7f/";
    static const char want4[] = "{\"topic\":\"t\",\"seq\":1,\"ts\":2,"
                                "\"payload_base64\":\"aMOpICJxIiBcIAoNCQEffy8=\"}\n";
    static const char want2[] = "{\"topic\":\"t\",\"seq\":0,\"ts\":0,\"lost\":3,"
                                "\"payload_base64\":\"/wAB\"}\n";
    static const char want3[] = "{\"topic\":\"t\",\"seq\":18446744073709551615,"
                                "\"ts\":18446744073709551615,\"lost\":18446744073709551615,"
                                "\"payload\":\"\"}\n";
    char out[512];

    (void)state;
    assert_delivery(out, sbb_json_delivery(out, "news", 4, utf8, sizeof(utf8) - 1, 7, 123, 0),
                    want1);
    assert_delivery(out, sbb_json_delivery(out, "t", 1, "\xff\x00\x01", 3, 0, 0, 3), want2);
    assert_delivery(out, sbb_json_delivery(out, "t", 1, "", 0, UINT64_MAX, UINT64_MAX, UINT64_MAX),
                    want3);
    assert_delivery(out, sbb_json_delivery(out, "t", 1, "\xff", 1, 1, 2, 0),
                    "{\"topic\":\"t\",\"seq\":1,\"ts\":2,\"payload_base64\":\"/w==\"}\n");
    assert_delivery(out, sbb_json_delivery(out, "t", 1, "\xff\xfe", 2, 1, 2, 0),
                    "{\"topic\":\"t\",\"seq\":1,\"ts\":2,\"payload_base64\":\"//4=\"}\n");
    assert_delivery(out, sbb_json_delivery(out, "t", 1, ctl, sizeof(ctl) - 1, 1, 2, 0), want4);
}

static void test_json_delivery_roundtrip(void **state)
{
    struct jp *j = *state;
    static const char topic[] = "t\"\\\x01\xc3\xa9/";
    unsigned char data[200];
    uint64_t seed = 0x9e3779b97f4a7c15ull;

    for (unsigned b = 0; b < 256; b++) {
        data[0] = (unsigned char)b;
        jp_delivery_roundtrip(j, "t", 1, data, 1);
    }
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)i;
    for (size_t len = 0; len <= sizeof(data); len++)
        jp_delivery_roundtrip(j, topic, sizeof(topic) - 1, data, len);
    for (int round = 0; round < 2000; round++) {
        size_t len = tu_rng_next(&seed) % 64;

        /* Mostly printable and control ASCII, so that half are UTF-8. */
        for (size_t i = 0; i < len; i++) {
            uint64_t x = tu_rng_next(&seed);

            data[i] = (unsigned char)(round & 1 ? x & 0x7f : x);
        }
        jp_delivery_roundtrip(j, "orders.eu", 9, data, len);
    }
    /* Valid multi-byte UTF-8 stays text. */
    jp_delivery_roundtrip(j, "t", 1, "\xf4\x8f\xbf\xbf\xed\x9f\xbf\xc2\x80", 9);
}

static void test_json_str_bounds(void **state)
{
    char in[40], out[SBB_JSON_STR_MAX(40) + 1];

    (void)state;
    assert_int_equal(sbb_json_str(out, "", 0), 2);
    assert_memory_equal(out, "\"\"", 2);
    memset(in, 1, sizeof(in));
    assert_int_equal(sbb_json_str(out, in, sizeof(in)), SBB_JSON_STR_MAX(sizeof(in)));
    assert_memory_equal(out, "\"\\u0001\\u0001", 13);
    assert_int_equal(sbb_json_str(out, "a\0b", 3), 10);
    assert_memory_equal(out, "\"a\\u0000b\"", 10);
}

/* ================================================================ UTF-8 */

/* Length of the well-formed sequence at @p s, per Unicode 15 Table 3-7
 * ("Well-Formed UTF-8 Byte Sequences"), or 0. */
static size_t ref_utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xbf;
    size_t need;

    if (c <= 0x7f)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return need;
}

static int ref_utf8_valid(const uint8_t *s, size_t n)
{
    while (n > 0) {
        size_t k = ref_utf8_seq(s, n);

        if (k == 0)
            return 0;
        s += k;
        n -= k;
    }
    return 1;
}

#define assert_utf8(lit, want) assert_int_equal(sb_utf8_valid((lit), sizeof(lit) - 1), (want))

static void test_utf8_valid_edges(void **state)
{
    (void)state;
    assert_utf8("", 1);
    assert_utf8("plain ascii \x7f", 1);
    assert_utf8("\0", 1);
    assert_utf8("\xc2\x80\xdf\xbf", 1);                 /* U+0080, U+07FF */
    assert_utf8("\xe0\xa0\x80\xef\xbf\xbf", 1);         /* U+0800, U+FFFF */
    assert_utf8("\xed\x9f\xbf\xee\x80\x80", 1);         /* U+D7FF, U+E000 */
    assert_utf8("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 1); /* U+10000, U+10FFFF */
    /* overlong forms */
    assert_utf8("\xc0\x80", 0);
    assert_utf8("\xc1\xbf", 0);
    assert_utf8("\xe0\x80\x80", 0);
    assert_utf8("\xe0\x9f\xbf", 0);
    assert_utf8("\xf0\x80\x80\x80", 0);
    assert_utf8("\xf0\x8f\xbf\xbf", 0);
    /* surrogates */
    assert_utf8("\xed\xa0\x80", 0);
    assert_utf8("\xed\xbf\xbf", 0);
    assert_utf8("\xed\xa0\xbd\xed\xb8\x80", 0); /* a CESU-8 pair */
    /* beyond U+10FFFF */
    assert_utf8("\xf4\x90\x80\x80", 0);
    assert_utf8("\xf5\x80\x80\x80", 0);
    assert_utf8("\xf7\xbf\xbf\xbf", 0);
    assert_utf8("\xf8\x88\x80\x80\x80", 0);
    assert_utf8("\xfe", 0);
    assert_utf8("\xff", 0);
    /* stray continuation bytes, truncated and broken sequences */
    assert_utf8("\x80", 0);
    assert_utf8("a\xbf", 0);
    assert_utf8("\xc2", 0);
    assert_utf8("\xe0\xa0", 0);
    assert_utf8("\xf0\x90\x80", 0);
    assert_utf8("\xe0\xa0\x41", 0);
    assert_utf8("\xc2\x41", 0);
    assert_utf8("\xc2\xc2\x80", 0);
    assert_utf8("\xf0\x90\x80\xc0", 0);
    /* The length is honoured: a valid sequence cut by it is not valid. */
    assert_int_equal(sb_utf8_valid("\xe2\x82\xac", 2), 0);
    assert_int_equal(sb_utf8_valid("a\xe2\x82\xac", 1), 1);
}

static void test_utf8_valid_matches_table(void **state)
{
    static const uint8_t edge[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                   0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff};
    uint8_t s[4];

    (void)state;
    for (uint32_t v = 0; v < (1u << 24); v++) { /* every string of 1 to 3 bytes */
        s[0] = (uint8_t)v;
        s[1] = (uint8_t)(v >> 8);
        s[2] = (uint8_t)(v >> 16);
        for (size_t n = v < 256 ? 1 : v < 65536 ? 2 : 3; n <= 3; n++)
            if (sb_utf8_valid(s, n) != ref_utf8_valid(s, n))
                fail_msg("%02x %02x %02x (%zu bytes)", s[0], s[1], s[2], n);
    }
    for (unsigned a = 0; a < 256; a++) /* 4 bytes: any lead, edge values behind */
        for (size_t b = 0; b < sizeof(edge); b++)
            for (size_t c = 0; c < sizeof(edge); c++)
                for (size_t d = 0; d < sizeof(edge); d++) {
                    s[0] = (uint8_t)a;
                    s[1] = edge[b];
                    s[2] = edge[c];
                    s[3] = edge[d];
                    if (sb_utf8_valid(s, 4) != ref_utf8_valid(s, 4))
                        fail_msg("%02x %02x %02x %02x", s[0], s[1], s[2], s[3]);
                }
}

int main(void)
{
#define JT(fn) cmocka_unit_test_setup_teardown(fn, jp_setup, jp_teardown)
    const struct CMUnitTest tests[] = {
        JT(test_json_parse_every_command),
        JT(test_json_parse_rejects_bad_commands),
        JT(test_json_parse_rejects_unknown_and_repeated_fields),
        JT(test_json_parse_escapes),
        JT(test_json_parse_rejects_bad_strings),
        JT(test_json_parse_payload_base64),
        JT(test_json_parse_rejects_bad_base64),
        JT(test_json_parse_id_echo),
        JT(test_json_parse_rejects_bad_ids),
        JT(test_json_parse_rejects_trailing_garbage),
        JT(test_json_parse_error_names_offset),
        cmocka_unit_test(test_json_delivery_exact),
        JT(test_json_delivery_roundtrip),
        cmocka_unit_test(test_json_str_bounds),
        cmocka_unit_test(test_utf8_valid_edges),
        cmocka_unit_test(test_utf8_valid_matches_table),
    };
#undef JT
    tu_init();
    return cmocka_run_group_tests_name("bridge_proto_json", tests, NULL, NULL);
}
