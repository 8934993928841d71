/*
 * The TCP bridge's protocol codecs (daemon/bridge_proto.c), driven
 * directly: the RESP2 command parser whole, split at every byte and
 * pipelined, with every protocol error and binary bulk strings; the exact
 * bytes of the pushes Redis sends; the JSON-lines parser with its escapes,
 * UTF-8 and field rules; the delivery encoder, read back through the
 * parser; the UTF-8 check against Unicode's table of well-formed sequences;
 * and the glob matcher against a recursive reference on random patterns.
 * Parsers get exact-size heap copies (and the JSON parser an exact-size
 * scratch buffer) so that ASan catches any access past them.
 */
#include "testutil.h"

#include "bridge/glob.h"
#include "bridge/json.h"
#include "bridge/resp.h"
#include "ref_glob.h"

/* A string literal and its length, for tables of inputs. */
#define LIT(s) s, sizeof(s) - 1

#define MAX_BULK   64
#define MAX_INLINE 64

/* cmocka setup of a parser's state: *state becomes @p size zeroed bytes. */
static int state_alloc(void **state, size_t size)
{
    *state = calloc(1, size);
    return *state != NULL ? 0 : -1;
}

/* A copy of the @p n bytes at @p s in a heap block of exactly that size
 * (1 byte when empty), so that ASan catches any access past them. */
static char *exact_copy(const void *s, size_t n)
{
    char *c = malloc(n > 0 ? n : 1);

    assert_non_null(c);
    if (n > 0)
        memcpy(c, s, n);
    return c;
}

/* xorshift64: the random tests are the same on every run. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

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
        assert_null(sbb_scan_line(&s, line, len, N + 1));
    assert_int_equal(s.done, N);
    assert_ptr_equal(sbb_scan_line(&s, line, N + 1, N + 1), line + N);
    assert_int_equal(s.scanned, N + 1);
    /* Found again at once (a command that waits and is run again). */
    assert_ptr_equal(sbb_scan_line(&s, line, N + 1, N + 1), line + N);
    assert_int_equal(s.scanned, N + 2);
    /* The limit: nothing past it is searched. */
    memset(&s, 0, sizeof(s));
    assert_null(sbb_scan_line(&s, line, N + 1, 100));
    assert_int_equal(s.scanned, 100);
    free(line);
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
    const char *err = NULL;
    struct sbb_argv *av = malloc(sizeof(*av));

    (void)state;
    assert_non_null(cmd);
    assert_non_null(av);
    memcpy(cmd, "PUBLISH orders ", 15);
    memset(cmd + 15, 'p', PAYLOAD);
    memcpy(cmd + 15 + PAYLOAD, "\r\n", 2);
    for (size_t len = 1; len < n; len++)
        assert_int_equal(sbb_resp_parse(cmd, len, MAX_BULK, 65536, &s, av, &err), 0);
    assert_int_equal(sbb_resp_parse(cmd, n, MAX_BULK, 65536, &s, av, &err), (ssize_t)n);
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
    const char *err = NULL;
    struct sbb_argv *av = malloc(sizeof(*av));

    (void)state;
    assert_non_null(cmd);
    assert_non_null(av);
    n += (size_t)snprintf(cmd, cap, "*%d\r\n", ARGS);
    for (int i = 0; i < ARGS; i++)
        n += (size_t)snprintf(cmd + n, cap - n, "$1\r\n%c\r\n", 'a' + i % 26);
    for (size_t len = 1; len < n; len++)
        assert_int_equal(sbb_resp_parse(cmd, len, MAX_BULK, 65536, &s, av, &err), 0);
    assert_int_equal(sbb_resp_parse(cmd, n, MAX_BULK, 65536, &s, av, &err), (ssize_t)n);
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
    return sbb_utf8_valid(data, len) && esc <= (len + 2) / 3 * 4;
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
    assert_true(sbb_utf8_valid(out, n));
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
        size_t len = rng_next(&seed) % 64;

        /* Mostly printable and control ASCII, so that half are UTF-8. */
        for (size_t i = 0; i < len; i++) {
            uint64_t x = rng_next(&seed);

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

#define assert_utf8(lit, want) assert_int_equal(sbb_utf8_valid((lit), sizeof(lit) - 1), (want))

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
    assert_int_equal(sbb_utf8_valid("\xe2\x82\xac", 2), 0);
    assert_int_equal(sbb_utf8_valid("a\xe2\x82\xac", 1), 1);
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
            if (sbb_utf8_valid(s, n) != ref_utf8_valid(s, n))
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
                    if (sbb_utf8_valid(s, 4) != ref_utf8_valid(s, 4))
                        fail_msg("%02x %02x %02x %02x", s[0], s[1], s[2], s[3]);
                }
}

/* ================================================================= glob */

/* sbb_glob_match() on exact-size copies of @p pat and @p s, checked against
 * ref_glob() (ref_glob.h). @return the match. */
static int glob(const char *pat, const char *s)
{
    size_t pl = strlen(pat), sl = strlen(s);
    char *pc = exact_copy(pat, pl), *sc = exact_copy(s, sl); /* not terminated */
    int m;

    m = sbb_glob_match(pc, pl, sc, sl);
    assert_int_equal(m, ref_glob(pc, pc + pl, sc, sc + sl));
    free(pc);
    free(sc);
    return m;
}

static void test_glob_wildcards(void **state)
{
    (void)state;
    assert_true(glob("foo", "foo"));
    assert_false(glob("foo", "fo"));
    assert_false(glob("foo", "food"));
    assert_true(glob("", ""));
    assert_false(glob("", "a"));
    assert_true(glob("*", ""));
    assert_true(glob("*", "anything at all"));
    assert_true(glob("**", "x"));
    assert_true(glob("orders.*", "orders.eu"));
    assert_true(glob("orders.*", "orders."));
    assert_false(glob("orders.*", "orders"));
    assert_true(glob("*.eu", "orders.eu"));
    assert_false(glob("*.eu", "orders.us"));
    assert_false(glob("?", ""));
    assert_true(glob("?", "a"));
    assert_false(glob("?", "ab"));
    assert_true(glob("h?llo", "hello"));
    assert_true(glob("h?llo", "hallo"));
    assert_false(glob("h?llo", "hllo"));
    assert_true(glob("h*llo", "hllo"));
    assert_true(glob("h*llo", "heeeello"));
    assert_true(glob("*?", "a"));
    assert_false(glob("*?", ""));
    assert_true(glob("?*?", "ab"));
    assert_false(glob("?*?", "a"));
}

static void test_glob_star_backtracking(void **state)
{
    static const char *const yes[] = {"abc",  "aXbYc", "abbc",  "aaabbbccc", "abcabc", "a*b*c",
                                      "abXc", "aXbc",  "abcbc", "acbc",      "a-b-c"};
    static const char *const no[] = {"ac",  "ab", "acb", "abcb", "bc",  "Abc",
                                     "abC", "",   "cba", "a",    "abca"};
    char s[128];

    (void)state;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!glob("a*b*c", yes[i]))
            fail_msg("a*b*c should match %s", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (glob("a*b*c", no[i]))
            fail_msg("a*b*c should not match %s", no[i]);
    assert_true(glob("*a*b", "xaxaxb"));
    assert_true(glob("a*a*a", "aaa"));
    assert_false(glob("a*a*a", "aa"));
    assert_true(glob("*ab*ab*", "xabyabz"));
    assert_false(glob("*ab*ab*", "xabyaz"));
    /* Patterns that make naive recursion exponential finish at once. */
    memset(s, 'a', 100);
    s[100] = '\0';
    assert_false(sbb_glob_match("a*a*a*a*a*a*a*a*a*a*b", 21, s, 100));
    assert_true(sbb_glob_match("a*a*a*a*a*a*a*a*a*a*a", 21, s, 100));
    assert_false(sbb_glob_match("*a*a*a*a*a*a*a*a*a*a*b*", 23, s, 100));
}

static void test_glob_classes_and_escapes(void **state)
{
    (void)state;
    assert_true(glob("h[ae]llo", "hello"));
    assert_true(glob("h[ae]llo", "hallo"));
    assert_false(glob("h[ae]llo", "hillo"));
    assert_false(glob("h[ae]llo", "hllo"));
    assert_true(glob("h[^e]llo", "hallo"));
    assert_false(glob("h[^e]llo", "hello"));
    assert_true(glob("h[a-b]llo", "hbllo"));
    assert_false(glob("h[a-b]llo", "hcllo"));
    assert_true(glob("[z-a]", "m")); /* a reversed range */
    assert_true(glob("[^a-z]", "A"));
    assert_false(glob("[^a-z]", "q"));
    assert_true(glob("[a-]", "-")); /* '-' before ']' is literal */
    assert_true(glob("[a-]", "a"));
    assert_false(glob("[a-]", "b"));
    assert_true(glob("[-a]", "-"));
    assert_true(glob("[\\]]", "]"));
    assert_true(glob("[\\-]", "-"));
    assert_true(glob("[a\\-z]", "z"));
    assert_false(glob("[a\\-z]", "b"));
    assert_true(glob("[^]", "x")); /* an empty negated class */
    assert_false(glob("[]", "]")); /* ']' at once closes the class (not POSIX) */
    assert_false(glob("[]a]", "]a]"));
    assert_true(glob("[abc", "b")); /* unterminated: up to the end */
    assert_false(glob("[abc", "bc"));
    assert_true(glob("[[]", "["));
    assert_true(glob("h\\*llo", "h*llo"));
    assert_false(glob("h\\*llo", "hello"));
    assert_true(glob("\\?", "?"));
    assert_false(glob("\\?", "a"));
    assert_true(glob("\\[a]", "[a]"));
    assert_true(glob("a\\", "a\\")); /* a trailing backslash is literal */
    assert_true(glob("\\\\", "\\"));
    assert_true(glob("*\\*", "x*"));
    assert_false(glob("*\\*", "x"));
    /* Bytes, not characters: NUL and high bytes are literal. */
    assert_true(sbb_glob_match("a\0*", 3, "a\0bc", 4));
    assert_false(sbb_glob_match("a\0*", 3, "a\1bc", 4));
    assert_true(sbb_glob_match("?\xff", 2, "\xc3\xff", 2));
}

static void test_glob_matches_reference(void **state)
{
    static const char alpha[] = "ab*?[]^-\\";
    uint64_t seed = 0x2545f4914f6cdd1dull;
    char pat[10], s[8];

    (void)state;
    for (int round = 0; round < 300000; round++) {
        size_t pl = rng_next(&seed) % (sizeof(pat) + 1), sl = rng_next(&seed) % (sizeof(s) + 1);

        for (size_t i = 0; i < pl; i++)
            pat[i] = alpha[rng_next(&seed) % (sizeof(alpha) - 1)];
        for (size_t i = 0; i < sl; i++)
            s[i] = alpha[rng_next(&seed) % (sizeof(alpha) - 1)];
        if (sbb_glob_match(pat, pl, s, sl) != ref_glob(pat, pat + pl, s, s + sl))
            fail_msg("pattern \"%.*s\" on \"%.*s\": %d", (int)pl, pat, (int)sl, s,
                     sbb_glob_match(pat, pl, s, sl));
    }
}

int main(void)
{
#define RT(fn) cmocka_unit_test_setup_teardown(fn, rp_setup, rp_teardown)
#define JT(fn) cmocka_unit_test_setup_teardown(fn, jp_setup, jp_teardown)
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
        cmocka_unit_test(test_glob_wildcards),
        cmocka_unit_test(test_glob_star_backtracking),
        cmocka_unit_test(test_glob_classes_and_escapes),
        cmocka_unit_test(test_glob_matches_reference),
    };
#undef RT
#undef JT
    tu_init();
    return cmocka_run_group_tests_name("bridge_proto", tests, NULL, NULL);
}
