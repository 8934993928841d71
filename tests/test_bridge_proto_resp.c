/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's RESP2 codec (daemon/bridge/resp.c), driven directly: the
 * command parser whole, split at every byte and pipelined, with every
 * protocol error and binary bulk strings, its cost when a command comes a
 * byte at a time; the bulk encoder and the exact bytes of the pushes
 * Redis sends, read back through the parser. The parser gets exact-size
 * heap copies so that ASan catches any access past them.
 */
#include "prototest.h"

#include "bridge/resp.h"

/* ================================================================ RESP2 */

/* The parser's state for one test: its last input (an exact-size heap
 * copy, which the arguments point into) and its answer. */
struct rp {
    struct sbb_argv av;
    const char *err;
    char *copy;
};

static int rp_setup(void **state)
{
    return state_alloc(state, sizeof(struct rp));
}

static int rp_teardown(void **state)
{
    struct rp *r = *state;

    free(r->copy);
    free(r);
    return 0;
}

/* sbb_resp_parse() on a copy of @p n bytes at @p s; checks what every
 * answer guarantees: an error message, and arguments inside what it took. */
static ssize_t rp_parse_lim(struct rp *r, const void *s, size_t n, size_t max_bulk,
                            size_t max_inline)
{
    ssize_t rc;

    free(r->copy);
    r->copy = exact_copy(s, n);
    r->err = NULL;
    rc = sbb_resp_parse(r->copy, n, max_bulk, max_inline, NULL, &r->av, &r->err);
    assert_true(rc >= -1 && rc <= (ssize_t)n);
    if (rc < 0) {
        assert_non_null(r->err);
        assert_memory_equal(r->err, "ERR Protocol error: ", 20);
    }
    if (rc > 0) {
        assert_true(r->av.argc <= SBB_ARGV_MAX);
        for (unsigned i = 0; i < r->av.argc; i++) {
            assert_true(r->av.argv[i] >= r->copy);
            assert_true(r->av.argv[i] + r->av.argl[i] <= r->copy + rc);
        }
    }
    return rc;
}

static ssize_t rp_parse_n(struct rp *r, const void *s, size_t n)
{
    return rp_parse_lim(r, s, n, MAX_BULK, MAX_INLINE);
}

#define rp_parse(r, lit) rp_parse_n((r), (lit), sizeof(lit) - 1)

/* Argument @p i of the last command is the @p n bytes at @p want. */
static void rp_arg(const struct rp *r, unsigned i, const void *want, size_t n)
{
    assert_true(i < r->av.argc);
    assert_int_equal(r->av.argl[i], n);
    if (n > 0)
        assert_memory_equal(r->av.argv[i], want, n);
}

#define assert_arg(r, i, lit) rp_arg((r), (i), (lit), sizeof(lit) - 1)

/* The literal command is taken whole. */
#define assert_takes(r, lit) assert_int_equal(rp_parse((r), lit), sizeof(lit) - 1)

/* A RESP array of bulk strings, written here without the module's encoder.
 * @return its length. */
static size_t rp_build(char *out, unsigned argc, const char *const *argv, const size_t *argl)
{
    size_t n = (size_t)sprintf(out, "*%u\r\n", argc);

    for (unsigned i = 0; i < argc; i++) {
        n += (size_t)sprintf(out + n, "$%zu\r\n", argl[i]);
        memcpy(out + n, argv[i], argl[i]);
        n += argl[i];
        memcpy(out + n, "\r\n", 2);
        n += 2;
    }
    return n;
}

static void test_resp_parse_array(void **state)
{
    struct rp *r = *state;
    static const char cmd[] = "*3\r\n$9\r\nSUBSCRIBE\r\n$3\r\nfoo\r\n$0\r\n\r\n";

    assert_int_equal(rp_parse(r, cmd), sizeof(cmd) - 1);
    assert_int_equal(r->av.argc, 3);
    assert_arg(r, 0, "SUBSCRIBE");
    assert_arg(r, 1, "foo");
    assert_arg(r, 2, "");
}

static void test_resp_parse_bulk_of_max_bulk(void **state)
{
    struct rp *r = *state;
    char payload[MAX_BULK + 1], buf[MAX_BULK + 32];
    const char *argv[] = {payload};
    size_t argl[] = {MAX_BULK}, n;

    memset(payload, 'p', sizeof(payload));
    n = rp_build(buf, 1, argv, argl);
    assert_int_equal(rp_parse_n(r, buf, n), n);
    rp_arg(r, 0, payload, MAX_BULK);
    argl[0] = MAX_BULK + 1;
    n = rp_build(buf, 1, argv, argl);
    assert_int_equal(rp_parse_n(r, buf, n), -1);
    assert_string_equal(r->err, "ERR Protocol error: invalid bulk length");
}

/* Every proper prefix of the one command @p s is incomplete; the whole is
 * taken exactly, also with part of a next command behind it. */
static void rp_split(struct rp *r, const char *s, size_t n)
{
    char *more = malloc(n + 8);

    assert_non_null(more);
    for (size_t k = 0; k < n; k++) {
        ssize_t rc = rp_parse_lim(r, s, k, 4096, MAX_INLINE);

        if (rc != 0)
            fail_msg("prefix %zu of %zu bytes of \"%.*s\": %zd, want 0", k, n, (int)n, s, rc);
    }
    assert_int_equal(rp_parse_lim(r, s, n, 4096, MAX_INLINE), n);
    memcpy(more, s, n);
    memcpy(more + n, "*1\r\n$4\r\n", 8);
    assert_int_equal(rp_parse_lim(r, more, n + 8, 4096, MAX_INLINE), n);
    free(more);
}

#define rp_split_lit(r, lit) rp_split((r), (lit), sizeof(lit) - 1)

/* Thirty zeros: a number line may hold 31 digits and its '\r'. */
#define ZEROS30 "000000000000000000000000000000"

static void test_resp_parse_split_at_every_byte(void **state)
{
    struct rp *r = *state;

    rp_split_lit(r, "*3\r\n$9\r\nSUBSCRIBE\r\n$3\r\nfoo\r\n$3\r\nbar\r\n");
    rp_split_lit(r, "*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$9\r\n\0\r\n*1\r\n$\n\r\n");
    rp_split_lit(r, "*1\r\n$0\r\n\r\n");
    rp_split_lit(r, "*12\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n$1\r\nf\r\n"
                    "$1\r\ng\r\n$1\r\nh\r\n$1\r\ni\r\n$1\r\nj\r\n$1\r\nk\r\n$10\r\n0123456789\r\n");
    rp_split_lit(r, "*0\r\n");
    rp_split_lit(r, "*-1\r\n");
    rp_split_lit(r, "PING\r\n");
    rp_split_lit(r, "SUBSCRIBE a b\n");
    rp_split_lit(r, "\r\n");
    /* Numbers of up to 32 characters, leading zeros and all. */
    rp_split_lit(r, "*" ZEROS30 "1\r\n$" ZEROS30 "4\r\nPING\r\n");
}

/* Parse @p n bytes arriving @p step at a time, as from a socket; append
 * each command taken to @p dig (argc, then each argument with its length). */
static size_t rp_stream(struct rp *r, const char *s, size_t n, size_t step, char *dig)
{
    size_t have = 0, off = 0, d = 0;

    while (have < n) {
        ssize_t rc;

        have = have + step < n ? have + step : n;
        while ((rc = rp_parse_n(r, s + off, have - off)) > 0) {
            d += (size_t)sprintf(dig + d, "[%u]", r->av.argc);
            for (unsigned i = 0; i < r->av.argc; i++) {
                d += (size_t)sprintf(dig + d, "%zu:", r->av.argl[i]);
                memcpy(dig + d, r->av.argv[i], r->av.argl[i]);
                d += r->av.argl[i];
            }
            off += (size_t)rc;
        }
        assert_int_equal(rc, 0);
    }
    assert_int_equal(off, n);
    return d;
}

static void test_resp_parse_pipelined_stream_any_split(void **state)
{
    struct rp *r = *state;
    static const char s[] = "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n"
                            "PING\r\n"
                            "*0\r\n"
                            "*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$4\r\n\r\n\0\n\r\n"
                            "\r\n"
                            "*-1\r\n"
                            "  PUBLISH  a   b \n"
                            "*1\r\n$4\r\nPING\r\n";
    static const char want[] = "[2]9:SUBSCRIBE1:a[1]4:PING[0][3]7:PUBLISH1:a4:\r\n\0\n[0][0]"
                               "[3]7:PUBLISH1:a1:b[1]4:PING";
    char dig[1024];

    for (size_t step = 1; step <= sizeof(s) - 1; step++) {
        size_t d = rp_stream(r, s, sizeof(s) - 1, step, dig);

        if (d != sizeof(want) - 1 || memcmp(dig, want, d) != 0)
            fail_msg("step %zu: \"%.*s\"", step, (int)d, dig);
    }
}

static void test_resp_parse_inline(void **state)
{
    struct rp *r = *state;

    assert_takes(r, "PING\r\n");
    assert_int_equal(r->av.argc, 1);
    assert_arg(r, 0, "PING");
    assert_takes(r, "PING\n");
    assert_arg(r, 0, "PING");
    assert_takes(r, " \tSUBSCRIBE\t a  b \r\n");
    assert_int_equal(r->av.argc, 3);
    assert_arg(r, 0, "SUBSCRIBE");
    assert_arg(r, 1, "a");
    assert_arg(r, 2, "b");
    /* One line at a time. */
    assert_int_equal(rp_parse(r, "PING\r\nPING\r\n"), 6);
    /* Empty lines are commands of no arguments, which the caller skips. */
    assert_int_equal(rp_parse(r, "\r\n"), 2);
    assert_int_equal(r->av.argc, 0);
    assert_int_equal(rp_parse(r, "\n"), 1);
    assert_int_equal(r->av.argc, 0);
    assert_int_equal(rp_parse(r, " \t \r\n"), 5);
    assert_int_equal(r->av.argc, 0);
    /* max_inline counts the line before its '\n', a '\r' included. */
    char line[MAX_INLINE + 2];

    memset(line, 'x', sizeof(line));
    line[MAX_INLINE] = '\n';
    assert_int_equal(rp_parse_n(r, line, MAX_INLINE + 1), MAX_INLINE + 1);
    rp_arg(r, 0, line, MAX_INLINE);
    assert_int_equal(rp_parse_n(r, line, MAX_INLINE), 0);
    line[MAX_INLINE - 1] = '\r';
    assert_int_equal(rp_parse_n(r, line, MAX_INLINE + 1), MAX_INLINE + 1);
    rp_arg(r, 0, line, MAX_INLINE - 1);
    /* One byte more is refused, with or without its end of line. */
    memset(line, 'x', sizeof(line));
    assert_int_equal(rp_parse_n(r, line, MAX_INLINE + 1), -1);
    assert_string_equal(r->err, "ERR Protocol error: too big inline request");
    line[MAX_INLINE] = '\r';
    line[MAX_INLINE + 1] = '\n';
    assert_int_equal(rp_parse_n(r, line, MAX_INLINE + 2), -1);
    assert_string_equal(r->err, "ERR Protocol error: too big inline request");
}

static void test_resp_parse_inline_limits_arguments(void **state)
{
    struct rp *r = *state;
    size_t cap = 2 * (SBB_ARGV_MAX + 1) + 1;
    char *line = malloc(cap);

    assert_non_null(line);
    for (size_t i = 0; i < SBB_ARGV_MAX + 1; i++)
        memcpy(line + 2 * i, "a ", 2);
    line[2 * SBB_ARGV_MAX] = '\n';
    assert_int_equal(rp_parse_lim(r, line, 2 * SBB_ARGV_MAX + 1, MAX_BULK, cap),
                     2 * SBB_ARGV_MAX + 1);
    assert_int_equal(r->av.argc, SBB_ARGV_MAX);
    line[2 * SBB_ARGV_MAX] = 'a';
    line[cap - 1] = '\n';
    assert_int_equal(rp_parse_lim(r, line, cap, MAX_BULK, cap), -1);
    assert_string_equal(r->err, "ERR Protocol error: too many arguments in inline request");
    /* No limit on the line at all: a SIZE_MAX bound must not wrap. */
    assert_int_equal(rp_parse_lim(r, "PING\r\n", 6, MAX_BULK, SIZE_MAX), 6);
    assert_int_equal(rp_parse_lim(r, "PIN", 3, MAX_BULK, SIZE_MAX), 0);
    free(line);
}

static void test_resp_parse_empty_and_null_arrays(void **state)
{
    struct rp *r = *state;

    assert_int_equal(rp_parse(r, "*0\r\n"), 4);
    assert_int_equal(r->av.argc, 0);
    assert_int_equal(rp_parse(r, "*-1\r\n"), 5);
    assert_int_equal(r->av.argc, 0);
    assert_int_equal(rp_parse(r, "*0\r\n*1\r\n$4\r\nPING\r\n"), 4);
    assert_int_equal(r->av.argc, 0);
    assert_int_equal(rp_parse(r, "*-1\r\nPING\r\n"), 5);
    assert_int_equal(r->av.argc, 0);
}

#define E_MULTIBULK "ERR Protocol error: invalid multibulk length"
#define E_DOLLAR    "ERR Protocol error: expected '$'"
#define E_BULKLEN   "ERR Protocol error: invalid bulk length"
#define E_CRLF      "ERR Protocol error: bulk string not ended by CRLF"

static const struct {
    const char *in;
    size_t len;
    const char *err;
} resp_bad[] = {
    {LIT("*x\r\n"), E_MULTIBULK},
    {LIT("*\r\n"), E_MULTIBULK},
    {LIT("*\n"), E_MULTIBULK},
    {LIT("*-\r\n"), E_MULTIBULK},
    {LIT("*+1\r\n"), E_MULTIBULK},
    {LIT("* 1\r\n"), E_MULTIBULK},
    {LIT("*1 \r\n"), E_MULTIBULK},
    {LIT("*1\n"), E_MULTIBULK},
    {LIT("*1\r\r\n"), E_MULTIBULK},
    {LIT("*1027\r\n"), E_MULTIBULK},
    {LIT("*99999999999999999999\r\n"), E_MULTIBULK},
    {LIT("*100000000000000000\r\n"), E_MULTIBULK},
    {LIT("*1" ZEROS30 "11"), E_MULTIBULK},
    {LIT("*0" ZEROS30 "1\r\n"), E_MULTIBULK},
    {LIT("*1\r\n:1\r\n"), E_DOLLAR},
    {LIT("*1\r\nPING\r\n"), E_DOLLAR},
    {LIT("*2\r\n$1\r\na\r\n+b\r\n"), E_DOLLAR},
    {LIT("*1\r\n$65\r\n"), E_BULKLEN},
    {LIT("*1\r\n$-1\r\n"), E_BULKLEN},
    {LIT("*1\r\n$\r\n"), E_BULKLEN},
    {LIT("*1\r\n$1x\r\n"), E_BULKLEN},
    {LIT("*1\r\n$1\n"), E_BULKLEN},
    {LIT("*1\r\n$99999999999999999999\r\n"), E_BULKLEN},
    {LIT("*1\r\n$0" ZEROS30 "1\r\n"), E_BULKLEN},
    {LIT("*1\r\n$3\r\nfooXY"), E_CRLF},
    {LIT("*1\r\n$3\r\nfoo\rX"), E_CRLF},
    {LIT("*1\r\n$3\r\nfoo\n\r"), E_CRLF},
    {LIT("*1\r\n$0\r\nab"), E_CRLF},
    {LIT("*2\r\n$1\r\na\r\n$1\r\nbc\r\n"), E_CRLF},
};

static void test_resp_parse_protocol_errors(void **state)
{
    struct rp *r = *state;
    char more[128];

    for (size_t i = 0; i < sizeof(resp_bad) / sizeof(resp_bad[0]); i++) {
        ssize_t rc = rp_parse_n(r, resp_bad[i].in, resp_bad[i].len);

        if (rc != -1 || strcmp(r->err, resp_bad[i].err) != 0)
            fail_msg("#%zu \"%s\": %zd (%s), want -1 (%s)", i, resp_bad[i].in, rc,
                     rc < 0 ? r->err : "-", resp_bad[i].err);
        /* More bytes behind it change nothing. */
        memcpy(more, resp_bad[i].in, resp_bad[i].len);
        memcpy(more + resp_bad[i].len, "\r\n*1\r\n", 6);
        assert_int_equal(rp_parse_n(r, more, resp_bad[i].len + 6), -1);
        assert_string_equal(r->err, resp_bad[i].err);
    }
}

static void test_resp_parse_binary_bulk(void **state)
{
    struct rp *r = *state;
    static const char topic[] = "a\0b";
    static const char data[] = "\r\n\0*1\r\n$1\r\n\n\r\xff\x00";
    char all[256], buf[1024];
    const char *argv[] = {"PUBLISH", topic, data, all};
    size_t argl[] = {7, sizeof(topic) - 1, sizeof(data) - 1, sizeof(all)};
    size_t n;

    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (char)i;
    n = rp_build(buf, 4, argv, argl);
    assert_int_equal(rp_parse_lim(r, buf, n, 256, MAX_INLINE), n);
    assert_int_equal(r->av.argc, 4);
    for (unsigned i = 0; i < 4; i++)
        rp_arg(r, i, argv[i], argl[i]);
    rp_split(r, buf, n);
    for (unsigned i = 0; i < 4; i++)
        rp_arg(r, i, argv[i], argl[i]);
}

/* A line fed one byte more per call is searched once in all: N bytes
 * cost N, not N^2/2. */
static void test_scan_line_drip_costs_its_length(void **state)
{
    enum { N = 20000 };
    char *line = malloc(N + 1);
    struct sbb_scan s = {0};

    (void)state;
    assert_non_null(line);
    memset(line, 'x', N);
    line[N] = '\n';
    for (size_t len = 1; len <= N; len++)
        assert_null(sbb_resp_scan_line(&s, line, len, N + 1));
    assert_int_equal(s.done, N);
    assert_ptr_equal(sbb_resp_scan_line(&s, line, N + 1, N + 1), line + N);
    assert_int_equal(s.scanned, N + 1);
    /* Found again at once (a command that waits and is run again). */
    assert_ptr_equal(sbb_resp_scan_line(&s, line, N + 1, N + 1), line + N);
    assert_int_equal(s.scanned, N + 2);
    /* The limit: nothing past it is searched. */
    memset(&s, 0, sizeof(s));
    assert_null(sbb_resp_scan_line(&s, line, N + 1, 100));
    assert_int_equal(s.scanned, 100);
    free(line);
}

/* Feed the @p n bytes of @p cmd to the parser one more byte a call, with
 * the scan @p s that the bridge keeps for it: incomplete until its last
 * byte, then whole, into @p av. */
static void rp_drip(const char *cmd, size_t n, struct sbb_scan *s, struct sbb_argv *av)
{
    const char *err = NULL;

    for (size_t len = 1; len < n; len++)
        assert_int_equal(sbb_resp_parse(cmd, len, MAX_BULK, 65536, s, av, &err), 0);
    assert_int_equal(sbb_resp_parse(cmd, n, MAX_BULK, 65536, s, av, &err), (ssize_t)n);
}

/* An inline command drip-fed byte by byte to the parser, with the scan
 * the bridge keeps for it: incomplete until its last byte, then whole,
 * and its end searched for once. */
static void test_resp_parse_inline_drip_is_linear(void **state)
{
    enum { PAYLOAD = 30000 };
    size_t n = 15 + PAYLOAD + 2;
    char *cmd = malloc(n);
    struct sbb_scan s = {0};
    struct sbb_argv *av = malloc(sizeof(*av));

    (void)state;
    assert_non_null(cmd);
    assert_non_null(av);
    memcpy(cmd, "PUBLISH orders ", 15);
    memset(cmd + 15, 'p', PAYLOAD);
    memcpy(cmd + 15 + PAYLOAD, "\r\n", 2);
    rp_drip(cmd, n, &s, av);
    assert_int_equal(av->argc, 3);
    assert_int_equal(av->argl[2], PAYLOAD);
    assert_int_equal(s.scanned, n);
    free(av);
    free(cmd);
}

/* A RESP array of many arguments drip-fed byte by byte: each call goes on
 * from the first incomplete element, so the headers searched stay
 * proportional to the command, not to its square; the arguments come out
 * whole at the end. */
static void test_resp_parse_array_drip_is_linear(void **state)
{
    enum { ARGS = 1000 };
    size_t n = 0, cap = 16 + ARGS * 8;
    char *cmd = malloc(cap);
    struct sbb_scan s = {0};
    struct sbb_argv *av = malloc(sizeof(*av));

    (void)state;
    assert_non_null(cmd);
    assert_non_null(av);
    n += (size_t)snprintf(cmd, cap, "*%d\r\n", ARGS);
    for (int i = 0; i < ARGS; i++)
        n += (size_t)snprintf(cmd + n, cap - n, "$1\r\n%c\r\n", 'a' + i % 26);
    rp_drip(cmd, n, &s, av);
    assert_int_equal(av->argc, ARGS);
    for (unsigned i = 0; i < ARGS; i++)
        assert_true(av->argl[i] == 1 && av->argv[i][0] == 'a' + (char)(i % 26));
    /* Per call: the array's header and the element being completed
     * (at most 8 bytes each here); then one last pass of every header. */
    assert_true(s.scanned <= 16 * n);
    free(av);
    free(cmd);
}

static void test_resp_bulk_encodes(void **state)
{
    static const size_t lens[] = {0, 1, 9, 10, 99, 100, 999, 1000, 4096};
    char *data = malloc(4096), *out = malloc(4096 + 32);
    char head[32];

    (void)state;
    assert_non_null(data);
    assert_non_null(out);
    for (size_t i = 0; i < 4096; i++)
        data[i] = (char)(i * 7);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t len = lens[i], hl = (size_t)sprintf(head, "$%zu\r\n", len);
        size_t n;

        memset(out, 0x5a, 4096 + 32);
        n = sbb_resp_bulk(out, data, len);
        assert_int_equal(n, hl + len + 2);
        assert_int_equal(n, sbb_resp_bulk_len(len));
        assert_memory_equal(out, head, hl);
        if (len > 0)
            assert_memory_equal(out + hl, data, len);
        assert_memory_equal(out + hl + len, "\r\n", 2);
        assert_int_equal(out[n], 0x5a);
    }
    free(data);
    free(out);
}

/* sbb_resp_message() into a buffer of sbb_resp_message_len() bytes plus a
 * guard; checks its output is @p want. */
static void rp_message(const char *pat, size_t patl, const char *topic, size_t topicl,
                       const void *data, size_t len, const char *want, size_t wantl)
{
    size_t cap = sbb_resp_message_len(patl, topicl, len);
    char *out = malloc(cap + 16);
    size_t n;

    assert_non_null(out);
    memset(out, 0x5a, cap + 16);
    n = sbb_resp_message(out, pat, patl, topic, topicl, data, len);
    assert_int_equal(n, cap);
    assert_int_equal(n, wantl);
    assert_memory_equal(out, want, wantl);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(out[cap + i], 0x5a);
    free(out);
}

#define rp_message_lit(pat, patl, topic, data, len, lit)                                           \
    rp_message((pat), (patl), (topic), strlen(topic), (data), (len), (lit), sizeof(lit) - 1)

static void test_resp_message_bytes_as_redis(void **state)
{
    (void)state;
    /* As Redis writes them in RESP2 (src/pubsub.c addReplyPubsubMessage,
     * addReplyPubsubPatMessage). */
    rp_message_lit(NULL, 0, "news", "hello", 5,
                   "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
    rp_message_lit("ne*", 3, "news", "hello", 5,
                   "*4\r\n$8\r\npmessage\r\n$3\r\nne*\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
    rp_message_lit(NULL, 0, "t", "", 0, "*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$0\r\n\r\n");
    rp_message_lit(NULL, 0, "orders.eu", "\0\r\n\xff", 4,
                   "*3\r\n$7\r\nmessage\r\n$9\r\norders.eu\r\n$4\r\n\0\r\n\xff\r\n");
    rp_message_lit("o?ders.[a-z]*", 13, "orders.eu", "0123456789", 10,
                   "*4\r\n$8\r\npmessage\r\n$13\r\no?ders.[a-z]*\r\n$9\r\norders.eu\r\n"
                   "$10\r\n0123456789\r\n");
    /* An empty pattern is never matched by a topic; the length and the
     * bytes must agree even so. */
    rp_message_lit("", 0, "t", "x", 1, "*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$1\r\nx\r\n");
}

static void test_resp_message_parses_back(void **state)
{
    struct rp *r = *state;
    char data[300], out[512];
    size_t n;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(255 - i);
    n = sbb_resp_message(out, "t*", 2, "topic", 5, data, sizeof(data));
    assert_int_equal(rp_parse_lim(r, out, n, sizeof(data), MAX_INLINE), n);
    assert_int_equal(r->av.argc, 4);
    assert_arg(r, 0, "pmessage");
    assert_arg(r, 1, "t*");
    assert_arg(r, 2, "topic");
    rp_arg(r, 3, data, sizeof(data));
    n = sbb_resp_message(out, NULL, 0, "topic", 5, data, 10);
    assert_int_equal(rp_parse_n(r, out, n), n);
    assert_int_equal(r->av.argc, 3);
    assert_arg(r, 0, "message");
    rp_arg(r, 2, data, 10);
}

int main(void)
{
#define RT(fn) cmocka_unit_test_setup_teardown(fn, rp_setup, rp_teardown)
    const struct CMUnitTest tests[] = {
        RT(test_resp_parse_array),
        RT(test_resp_parse_bulk_of_max_bulk),
        RT(test_resp_parse_split_at_every_byte),
        RT(test_resp_parse_pipelined_stream_any_split),
        RT(test_resp_parse_inline),
        RT(test_resp_parse_inline_limits_arguments),
        RT(test_resp_parse_empty_and_null_arrays),
        RT(test_resp_parse_protocol_errors),
        RT(test_resp_parse_binary_bulk),
        cmocka_unit_test(test_scan_line_drip_costs_its_length),
        cmocka_unit_test(test_resp_parse_inline_drip_is_linear),
        cmocka_unit_test(test_resp_parse_array_drip_is_linear),
        cmocka_unit_test(test_resp_bulk_encodes),
        cmocka_unit_test(test_resp_message_bytes_as_redis),
        RT(test_resp_message_parses_back),
    };
#undef RT
    tu_init();
    return cmocka_run_group_tests_name("bridge_proto_resp", tests, NULL, NULL);
}
