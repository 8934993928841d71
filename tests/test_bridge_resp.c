/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's RESP (Redis) side end to end (shmbusd --bridge,
 * bridgetest.h): replies byte for byte as Redis gives them, CLIENT REPLY,
 * AUTH, INFO, garbage input, and nothing sent after an unsubscribe reply
 * or QUIT's +OK. Each test runs its own daemon; the teardown checks that
 * it exited 0 (a sanitizer report in it fails the test) and left no
 * segment.
 */
#include "bridgetest.h"

/* Replies byte for byte as Redis 7 sends them (checked against
 * redis-server 7.0.15). */
static void test_bridge_resp_exact_replies(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "t", 0, 0);
    shmbus_pub *p = local_pub(t);
    struct bc *c = bc_open(), *e = bc_open();

    bc_send_str(c, "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nt\r\n");
    bc_expect(c, "*3\r\n$9\r\nsubscribe\r\n$1\r\nt\r\n:1\r\n");
    bc_send_str(c, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n");
    bc_expect(c, "*2\r\n$4\r\npong\r\n$0\r\n\r\n*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    bc_send_str(c, "*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$1\r\nx\r\n");
    bc_expect(c, "-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                 "QUIT / RESET are allowed in this context\r\n");
    assert_shmbus_ok(shmbus_publish(p, "hello", 5, 0));
    bc_expect(c, "*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$5\r\nhello\r\n");
    bc_send_str(c, "*1\r\n$11\r\nUNSUBSCRIBE\r\n*1\r\n$11\r\nUNSUBSCRIBE\r\n"
                   "*1\r\n$12\r\nPUNSUBSCRIBE\r\n");
    bc_expect(c, "*3\r\n$11\r\nunsubscribe\r\n$1\r\nt\r\n:0\r\n"
                 "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
                 "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");
    bc_send_str(c, "FOO bar baz\r\n*1\r\n$7\r\nPUBLISH\r\n*1\r\n$9\r\nsubscribe\r\nPING a b\r\n");
    bc_expect(c, "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n"
                 "-ERR wrong number of arguments for 'publish' command\r\n"
                 "-ERR wrong number of arguments for 'subscribe' command\r\n"
                 "-ERR wrong number of arguments for 'ping' command\r\n");
    bc_send_str(c, "PING\r\nping hi\r\nECHO\r\nECHO x\r\nPUBLISH t x\r\nSELECT 0\r\n");
    bc_expect(c, "+PONG\r\n$2\r\nhi\r\n-ERR wrong number of arguments for 'echo' command\r\n"
                 "$1\r\nx\r\n:0\r\n+OK\r\n");
    bc_send_str(c, "CLIENT GETNAME\r\nCLIENT SETNAME foo\r\nCLIENT GETNAME\r\nCLIENT FOO\r\n");
    bc_expect(c, "$-1\r\n+OK\r\n$3\r\nfoo\r\n-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n");
    bc_send_str(c, "*-1\r\n*0\r\nQUIT\r\nPING\r\n");
    bc_expect(c, "+OK\r\n");
    assert_true(bc_wait_eof(c, BT_MS, NULL));
    /* A protocol error is answered, then the connection is closed. */
    bc_send_str(e, "*1\r\n$x\r\nPING\r\n");
    bc_expect(e, "-ERR Protocol error: invalid bulk length\r\n");
    assert_true(bc_wait_eof(e, BT_MS, NULL));
    bc_close(c);
    bc_close(e);
}

/* CLIENT REPLY OFF silences the PUBLISH replies (which still publish);
 * CLIENT REPLY SKIP silences one reply. */
static void test_bridge_resp_client_reply(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "cr", 0, 0);
    shmbus_sub *s = local_sub(t);
    struct bc *c = bc_open();
    char msg[32];

    bc_send_str(c, "CLIENT REPLY OFF\r\n");
    for (int i = 0; i < 100; i++) {
        snprintf(msg, sizeof(msg), "PUBLISH cr m%d\r\n", i);
        bc_send_str(c, msg);
    }
    bc_send_str(c, "CLIENT REPLY ON\r\nPING\r\nCLIENT REPLY SKIP\r\nPING\r\nPING x\r\n");
    bc_expect(c, "+OK\r\n+PONG\r\n$1\r\nx\r\n");
    for (int i = 0; i < 100; i++) {
        int n = snprintf(msg, sizeof(msg), "m%d", i);

        local_expect(s, msg, (size_t)n);
    }
    bc_close(c);
}

/* With CLIENT REPLY OFF, a PING with an argument in subscribed mode must
 * not leave half a reply in the stream. Redis 7.0.15 answers this with
 * the subscribe confirmation (a push) and then only +RESET and +PONG. */
static void test_bridge_resp_reply_off_subscribed_ping(void **state)
{
    static const char conf[] = "*3\r\n$9\r\nsubscribe\r\n$1\r\nt\r\n:1\r\n";
    static const char tail[] = "+RESET\r\n+PONG\r\n";
    struct bc *c = bc_open();
    int64_t end;

    (void)state;
    bc_send_str(c, "CLIENT REPLY OFF\r\nSUBSCRIBE t\r\nPING hi\r\nRESET\r\nPING\r\n");
    /* Everything up to the +PONG; the confirmation may or may not be
     * there, but nothing else may. */
    end = du_now_ms() + BT_MS;
    while ((c->len < sizeof(tail) - 1 ||
            memcmp(c->buf + c->len - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0) &&
           bc_fill(c, end) > 0)
        ;
    if (!(c->len == sizeof(tail) - 1 && memcmp(c->buf, tail, c->len) == 0) &&
        !(c->len == sizeof(conf) - 1 + sizeof(tail) - 1 &&
          memcmp(c->buf, conf, sizeof(conf) - 1) == 0 &&
          memcmp(c->buf + sizeof(conf) - 1, tail, sizeof(tail) - 1) == 0))
        fail_msg("got \"%s\", want \"%s%s\" (as Redis) or \"%s\"", esc(c->buf, c->len),
                 esc(conf, sizeof(conf) - 1), esc(tail, sizeof(tail) - 1),
                 esc(tail, sizeof(tail) - 1));
    bc_close(c);
}

/* With a token: commands before AUTH are refused (RESP -NOAUTH, JSON an
 * error), a wrong token is WRONGPASS, the right one works; the third
 * wrong one closes the connection. */
static void test_bridge_auth_commands(void **state)
{
    struct bc *r = bc_open(), *j = bc_open(), *h = bc_open(), *w = bc_open();
    redisContext *rd;
    redisReply *rep;

    (void)state;
    bc_send_str(r, "PING\r\nSUBSCRIBE t\r\nPUBLISH t x\r\nCLIENT ID\r\n");
    for (int i = 0; i < 4; i++)
        bc_expect(r, "-NOAUTH Authentication required.\r\n");
    bc_send_str(r, "AUTH wrong\r\nAUTH default wrong\r\nAUTH\r\n");
    for (int i = 0; i < 2; i++)
        bc_expect(r, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    bc_expect(r, "-ERR wrong number of arguments for 'auth' command\r\n");
    bc_send_str(r, "PING\r\nAUTH " BT_TOKEN "\r\nPING\r\n");
    bc_expect(r, "-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n");
    bc_send_str(w, "AUTH bob " BT_TOKEN "\r\nAUTH " BT_TOKEN "x\r\nAUTH s3cret\r\n"
                   "AUTH " BT_TOKEN "\r\n");
    for (int i = 0; i < 3; i++)
        bc_expect(w, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_true(bc_wait_eof(w, 5000, NULL));
    assert_int_equal(du_log_wait(bt_log, "3 wrong tokens", 1), 1);
    bc_send_str(h, "HELLO 2\r\nHELLO 2 AUTH default nope\r\nHELLO 2 AUTH default " BT_TOKEN
                   "\r\nPING\r\n");
    bc_expect(h, "-NOAUTH HELLO must be called with the client already authenticated, otherwise "
                 "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
                 "client and select the RESP protocol version at the same time\r\n");
    bc_expect(h, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    bc_expect(h, "*14\r\n$6\r\nserver\r\n$6\r\nshmbus\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
                 "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:");
    free(bc_line(h)); /* the connection id */
    bc_expect(h, "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
                 "$7\r\nmodules\r\n*0\r\n+PONG\r\n");
    bc_send_str(j, "{\"command\":\"PING\"}\n{\"command\":\"SUB\",\"topic\":\"t\"}\n"
                   "{\"command\":\"AUTH\",\"token\":\"" BT_TOKEN "!\"}\n{\"command\":\"AUTH\"}\n"
                   "{\"command\":\"AUTH\",\"token\":\"" BT_TOKEN "\",\"id\":1}\n"
                   "{\"command\":\"PING\"}\n");
    bc_expect_line(j, "{\"ok\":false,\"command\":\"PING\",\"error\":\"authentication required: "
                      "send AUTH with the token first\"}");
    bc_expect_line(j, "{\"ok\":false,\"command\":\"SUB\",\"error\":\"authentication required: "
                      "send AUTH with the token first\"}");
    bc_expect_line(j, "{\"ok\":false,\"command\":\"AUTH\",\"error\":\"invalid token\"}");
    bc_expect_line(j, "{\"ok\":false,\"command\":\"AUTH\",\"error\":\"invalid token\"}");
    bc_expect_line(j, "{\"ok\":true,\"command\":\"AUTH\",\"id\":1}");
    bc_expect_line(j, "{\"ok\":true,\"command\":\"PING\"}");
    rd = rd_open();
    rep = redisCommand(rd, "AUTH default %s", BT_TOKEN);
    assert_true(rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0);
    freeReplyObject(rep);
    rd_expect_int(redisCommand(rd, "PUBLISH t x"), 0);
    rd_close(rd);
    bc_close(r);
    bc_close(j);
    bc_close(h);
    bc_close(w);
}

#define NASTY(lit)                                                                                 \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

/* Hostile requests, each on a connection of its own. */
static const struct {
    const char *p;
    size_t len;
} garbage_nasty[] = {
    NASTY("*1027\r\n"),
    NASTY("*3\r\n$-5\r\n"),
    NASTY("*2\r\n$4\r\nPING\r\n$1\r\nab\r\n"),
    NASTY("*99999999999999999999\r\n"),
    NASTY("*1\r\n$99999999999\r\n"),
    NASTY("$5\r\nhello\r\nPING\r\n"),
    NASTY("PING\0x\r\nSUBSCRIBE a\0b\r\nPSUBSCRIBE \0\r\nUNSUBSCRIBE "
          "0123456789012345678901234567890123456789012345678901234567890123456789"
          "0123456789012345678901234567890123456789012345678901234567890123456789"
          "0123456789012345678901234567890123456789012345678901234567890123456789"
          "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"),
    NASTY("{\"command\":{\"a\":1}}\n{\"id\":\"01234567890123456789012345678901234567890"
          "1234567890123456789012345678\",\"command\":\"PING\"}\n"
          "{\"command\":\"PING\",\"id\":1e999999}\n"),
    NASTY("{\"command\":\"PUB\",\"topic\":\"g\",\"payload_base64\":\"////\"}\n"
          "{\"\\u0000\":1}\n{\"command\":\"SUB\",\"topic\":\"\\ud800\"}\n"),
    NASTY("CLIENT SETNAME a\x01"
          "b\r\nCLIENT REPLY maybe\r\nHELLO 3\r\nHELLO 2 FOO\r\nSELECT 9\r\n"),
    NASTY("PSUBSCRIBE [\r\nPSUBSCRIBE \\\r\nPSUBSCRIBE [^\r\nPUBLISH g x\r\nPUNSUBSCRIBE\r\n"),
    NASTY("CLIENT REPLY OFF\r\nSUBSCRIBE g\r\nPING hi\r\nQUIT\r\n"),
};

/* Random bytes (fixed seed) and hostile requests on many connections;
 * then normal clients are served and the daemon is alive. */
static void test_bridge_garbage(void **state)
{
    enum { NRAND = 12, NNASTY = sizeof(garbage_nasty) / sizeof(garbage_nasty[0]) };
    struct du_daemon *d = *state;
    uint64_t seed = 0x5eedf00dcafe1234ull;
    struct bc *c[NRAND + NNASTY], *j, *r;
    unsigned char buf[4096];

    for (int i = 0; i < NRAND; i++) {
        c[i] = bc_open();
        for (int k = 0; k < 8; k++) {
            for (size_t b = 0; b < sizeof(buf); b++)
                buf[b] = (unsigned char)tu_rng_next(&seed);
            if (k == 0)
                buf[0] = (unsigned char)"{*$P\r\n"[i % 6];
            bc_send_lossy(c[i], buf, sizeof(buf));
        }
    }
    for (int i = 0; i < NNASTY; i++) {
        c[NRAND + i] = bc_open();
        bc_send_lossy(c[NRAND + i], garbage_nasty[i].p, garbage_nasty[i].len);
    }
    for (int i = 0; i < NRAND + NNASTY; i++) {
        bc_wait_eof(c[i], 50, NULL); /* take what came; it may stay open */
        bc_close(c[i]);
    }
    j = bc_open();
    r = bc_open();
    bc_send_str(j, "{\"command\":\"PING\"}\n");
    bc_expect_line(j, "{\"ok\":true,\"command\":\"PING\"}");
    bc_send_str(r, "PUBLISH g x\r\n");
    bc_expect(r, ":0\r\n");
    assert_true(daemon_alive(d));
    bc_close(j);
    bc_close(r);
}

/* The next reply on @p c must be INFO's bulk, with what clients read. */
static void info_expect_at(struct bc *c, int line)
{
    struct rframe f;

    bc_frame_at(c, &f, line);
    if (f.type != '$' || f.n <= 0 || memmem(f.s, f.len, "\r\nloading:0\r\n", 13) == NULL ||
        memmem(f.s, f.len, "redis_version:", 14) == NULL)
        rf_fail_at(&f, "want INFO's bulk with loading:0 and redis_version:", line);
    rf_free(&f);
}

#define info_expect(c) info_expect_at((c), __LINE__)

/* INFO (with or without a section) answers a bulk with "loading:0" and
 * "redis_version:", which ioredis reads before it calls itself ready.
 * Guards the INFO command (bridge/cmd_resp.c cmd_info()). */
static void test_bridge_info(void **state)
{
    struct bc *c = bc_open();
    redisContext *r = rd_open();
    redisReply *rep;

    (void)state;
    bc_send_str(c, "INFO\r\n*2\r\n$4\r\ninfo\r\n$6\r\nserver\r\n");
    info_expect(c);
    info_expect(c);
    rep = redisCommand(r, "INFO");
    if (rep == NULL || rep->type != REDIS_REPLY_STRING || strstr(rep->str, "loading:0") == NULL)
        fail_msg("hiredis INFO: type %d '%s'", rep != NULL ? rep->type : -1,
                 rep != NULL && rep->str != NULL ? esc(rep->str, rep->len) : "");
    freeReplyObject(rep);
    rd_close(r);
    bc_close(c);
}

/* With a token, INFO before AUTH is -NOAUTH, as other commands; after it,
 * the bulk. */
static void test_bridge_info_needs_auth(void **state)
{
    struct bc *c = bc_open();

    (void)state;
    bc_send_str(c, "INFO\r\nAUTH " BT_TOKEN "\r\nINFO\r\n");
    bc_expect(c, "-NOAUTH Authentication required.\r\n+OK\r\n");
    info_expect(c);
    bc_close(c);
}

#define NA_OTHERS 20 /* more subscribers of the topic: longer rounds */
#define NA_CYCLES 200
/* A pump round that had taken a link is over by then. */
#define NA_QUIET_MS 1

/* A busy topic "na": NA_OTHERS connections subscribed with @p cmd (drained;
 * its last confirmation has count @p count), and a local publisher thread
 * at a high rate. */
static void na_setup(struct du_daemon *d, struct bc **others, const char *cmd, int count)
{
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "na", SHMBUS_LOSSY, 4096);

    for (int i = 0; i < NA_OTHERS; i++) {
        others[i] = bc_open();
        bc_send_str(others[i], cmd);
        bc_skip_to_confirm(others[i], cmd[0] == 'P' ? "psubscribe" : "subscribe", count);
    }
    drain_start(others, NA_OTHERS);
    pt_start(local_pub(t), "na-", 32, 200);
}

static void na_teardown(struct bc **others)
{
    long sent = pt_stop();

    print_message("busy topic: %ld messages published, %ld bytes to the other subscribers\n", sent,
                  drain_bytes());
    assert_true(sent > 0);
    drain_stop();
    for (int i = 0; i < NA_OTHERS; i++)
        bc_close(others[i]);
}

/* SUBSCRIBE @p c to na: the confirmation comes next (a message push
 * before it came after the last unsubscribe reply), then a push. */
static void na_subscribe(struct bc *c, int cycle)
{
    char what[128];
    struct rframe f;

    bc_send_str(c, "SUBSCRIBE na\r\n");
    bc_frame(c, &f);
    snprintf(what, sizeof(what),
             "cycle %d: want the subscribe confirmation (a push: after the last unsubscribe "
             "reply)",
             cycle);
    if (f.type != '*' || f.nel != 3 || f.el[0].len != 9 || memcmp(f.el[0].s, "subscribe", 9) != 0)
        rf_fail(&f, what);
    rf_free(&f);
    bc_frame(c, &f);
    snprintf(what, sizeof(what), "cycle %d: want a message push", cycle);
    if (!rf_is_push(&f, NULL, "na"))
        rf_fail(&f, what);
    rf_free(&f);
}

/* Read pushes on @p c (of na, or of fill: test_bridge_nothing_after_quit())
 * up to the reply @p kind ("unsubscribe": with count 0; "+OK": QUIT's);
 * anything else fails the test. */
static void na_skip_to(struct bc *c, const char *kind, int cycle)
{
    char what[96];
    int hit = 0;

    snprintf(what, sizeof(what), "cycle %d: want pushes, then %s", cycle, kind);
    while (!hit) {
        struct rframe f;

        bc_frame(c, &f);
        if (kind[0] == '+')
            hit = f.type == '+' && f.len == strlen(kind + 1) && memcmp(f.s, kind + 1, f.len) == 0;
        else
            hit = f.type == '*' && f.nel == 3 && f.el[0].len == strlen(kind) &&
                  memcmp(f.el[0].s, kind, f.el[0].len) == 0 && f.el[2].type == ':' &&
                  f.el[2].n == 0;
        if (!hit && !rf_is_push(&f, NULL, "na") && !rf_is_push(&f, NULL, "fill"))
            rf_fail(&f, what);
        rf_free(&f);
    }
}

/*
 * After the reply to UNSUBSCRIBE, no message push comes on that
 * connection. A RESP subscriber of a busy topic (na_setup(); the others
 * subscribe with four patterns each, so that a pump round spends long on
 * the 80 links before ours, the last) sends UNSUBSCRIBE and PING, in one
 * write (even cycles) or PING once the reply is read (odd ones): pushes
 * may come before the unsubscribe reply (count 0); after it comes +PONG,
 * then nothing for NA_QUIET_MS (a SUBSCRIBE at once would pass off late
 * messages as its own) nor before the next SUBSCRIBE's confirmation
 * (na_subscribe()); NA_CYCLES times. Guards link_del() and deliver_link()
 * (bridge/link.c, bridge/pump.c: the link's "gone" flag): a pump round that
 * had taken the link before the unsubscribe appended its messages after
 * the reply.
 */
static void test_bridge_nothing_after_unsubscribe_reply(void **state)
{
    struct bc *others[NA_OTHERS], *c;

    na_setup(*state, others, "PSUBSCRIBE n* na* *a ?a\r\n", 4);
    c = bc_open();
    for (int i = 0; i < NA_CYCLES; i++) {
        char what[96];
        struct rframe f;

        na_subscribe(c, i);
        bc_send_str(c, i % 2 ? "UNSUBSCRIBE na\r\n" : "UNSUBSCRIBE na\r\nPING\r\n");
        na_skip_to(c, "unsubscribe", i);
        if (i % 2)
            bc_send_str(c, "PING\r\n");
        bc_frame(c, &f);
        snprintf(what, sizeof(what), "cycle %d: after the unsubscribe reply, want +PONG", i);
        if (f.type != '+' || f.len != 4 || memcmp(f.s, "PONG", 4) != 0)
            rf_fail(&f, what);
        rf_free(&f);
        bc_quiet(c, NA_QUIET_MS);
    }
    bc_close(c);
    na_teardown(others);
}

/* Bytes the daemon holds for bridge connection @p id, unwritten
 * (shmbus_bridge_stat()); -1 if it has no such connection. */
static long long conn_buffered(shmbus_bus *bus, uint64_t id)
{
    shmbus_bridge_conn e[1];
    shmbus_bridge_info info;
    int n = shmbus_bridge_stat(bus, id - 1, &info, e, 1);

    if (n < 0)
        fail_msg("shmbus_bridge_stat: %s", shmbus_strerror(n));
    return n == 1 && e[0].id == id ? (long long)e[0].buffered : -1;
}

/* The daemon's id of connection @p c (CLIENT ID). */
static uint64_t conn_id(struct bc *c)
{
    struct rframe f;
    uint64_t id;

    bc_send_str(c, "CLIENT ID\r\n");
    bc_frame(c, &f);
    if (f.type != ':' || f.n <= 0)
        rf_fail(&f, "want CLIENT ID's integer");
    id = (uint64_t)f.n;
    rf_free(&f);
    return id;
}

#define NA_FILL_N    2
#define NA_FILL_SIZE 65536

/*
 * The same with QUIT: on a subscriber of the busy topic, pushes may come
 * before QUIT's +OK, and after it nothing but the end of the connection;
 * NA_CYCLES connections. So that the +OK waits behind output the daemon
 * could not write yet, each connection reads nothing for a while, with a
 * small receive buffer and a small MSS (the daemon's socket then starts
 * with a small send buffer: a few tens of KiB, not megabytes), and also
 * subscribes to a topic "fill" on which NA_FILL_N messages of NA_FILL_SIZE
 * bytes are published before the QUIT: it sends QUIT once the daemon holds
 * some of them (shmbus_bridge_stat()). Guards cmd_quit() (bridge/cmd_resp.c),
 * which drops the subscriptions before it answers: pumps went on
 * appending to the connection until its output drained and it was
 * closed, which with a busy topic could be never.
 */
static void test_bridge_nothing_after_quit(void **state)
{
    static char fill[NA_FILL_SIZE];
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic_opts o = {.capacity = 4 * NA_FILL_N, .max_msg_size = NA_FILL_SIZE};
    shmbus_topic *ft = NULL;
    shmbus_pub *fp;
    struct bc *others[NA_OTHERS];

    assert_shmbus_ok(shmbus_open(bus, "fill", &o, 0, &ft));
    BT_TRACK(bt_topics, ft);
    fp = local_pub(ft);
    na_setup(d, others, "SUBSCRIBE na\r\n", 1);
    for (int i = 0; i < NA_CYCLES; i++) {
        struct bc *c = bc_open_sock(4096, 536);
        uint64_t id = conn_id(c);
        int64_t end = du_now_ms() + BT_MS;

        bc_send_str(c, "SUBSCRIBE fill\r\n");
        bc_expect(c, "*3\r\n$9\r\nsubscribe\r\n$4\r\nfill\r\n:1\r\n");
        na_subscribe(c, i);
        for (int k = 0; k < NA_FILL_N; k++)
            assert_shmbus_ok(shmbus_publish(fp, fill, sizeof(fill), 0));
        while (conn_buffered(bus, id) < NA_FILL_SIZE / 4)
            if (du_now_ms() > end)
                fail_msg("cycle %d: the daemon holds no output for a client that reads nothing", i);
        bc_send_str(c, "QUIT\r\n");
        na_skip_to(c, "+OK", i);
        end = du_now_ms() + BT_MS;
        while (c->len == 0 && bc_fill(c, end) > 0)
            ;
        if (c->len > 0)
            fail_msg("cycle %d: after QUIT's +OK, \"%s\"", i, esc(c->buf, c->len));
        if (!c->eof)
            fail_msg("cycle %d: the connection stays open after QUIT", i);
        bc_close(c);
    }
    na_teardown(others);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BRIDGE_TEST(test_bridge_resp_exact_replies),
        BRIDGE_TEST(test_bridge_resp_client_reply),
        BRIDGE_TEST(test_bridge_resp_reply_off_subscribed_ping),
        BRIDGE_TEST_ARGS(test_bridge_auth_commands, &bt_auth_opts),
        BRIDGE_TEST(test_bridge_garbage),
        BRIDGE_TEST(test_bridge_info),
        BRIDGE_TEST_ARGS(test_bridge_info_needs_auth, &bt_auth_opts),
        BRIDGE_TEST(test_bridge_nothing_after_unsubscribe_reply),
        BRIDGE_TEST(test_bridge_nothing_after_quit),
    };

    bt_init();
    return cmocka_run_group_tests_name("bridge_resp", tests, NULL, NULL);
}
