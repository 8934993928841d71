/*
 * The TCP bridge's memory budgets (daemon/bridge_mem.c) end to end, against
 * a daemon per test whose bridge listens on a port the kernel picks
 * (--bridge 127.0.0.1:0, read back from shmbus_bridge_stat()): the links
 * that pattern subscriptions make are counted per connection and for the
 * bridge, and given back on PUNSUBSCRIBE and close; many patterns over
 * thousands of topics stay within --bridge-max-sub-memory and
 * --bridge-max-memory (the daemon's RSS too), get error replies past them,
 * and another connection's PING keeps answering; when --bridge-max-memory
 * is full, the connection that holds the most is closed, not the one that
 * asks; linking 100 patterns to 4000 topics costs the daemon linear CPU
 * time; costly patterns over long names never hold up another connection's
 * PING, nor do connections paused while their patterns are linked, nor a
 * million idle subscriptions; a
 * topic created while linking is busy reaches every subscriber made
 * before it from its first message. Topics are made small through the
 * library, so that thousands fit.
 */
#include "bridgetest.h"
#include "daemonutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

#define BB_MS        10000 /* longest wait for a reply: only a hang reaches it */
#define BB_TOPICS    2000  /* topics the patterns match */
#define BB_LINK_MIN  64u   /* a link's bytes are at least this */
#define BB_CONNS_MAX 8
/* More a's than a topic name holds. */
#define BB_AS                                                                                      \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* ThreadSanitizer makes the daemon many times slower and gives each byte
 * it touches shadow memory: the CPU and RSS bounds stretch by these. */
#ifdef __SANITIZE_THREAD__
#define BB_SLOW      10
#define BB_RSS_SCALE 4
#else
#define BB_SLOW      1
#define BB_RSS_SCALE 1
#endif
/* AddressSanitizer makes a pass of glob steps about 8 ms, not 1: the
 * median PING next to connections paused while linking is bounded by
 * this many ms. */
#ifdef __SANITIZE_ADDRESS__
#define BB_PAUSED_PING_MS 40
#else
#define BB_PAUSED_PING_MS (10 * BB_SLOW)
#endif
/* Longest answer to a PING while the bridge links patterns: it links in
 * slices of 1 to 4 ms (bridge_link.h), 200 ms is far off. */
#define BB_PING_MS (200 * BB_SLOW)

/* The running daemon's bridge port, and where its stderr goes (tests run
 * one at a time). */
static int bb_port;
static char bb_log[PATH_MAX];

/* ----------------------------------------------------------------- setup */

/* Daemon arguments of each test (cmocka prestate), after --bridge. */
static const char *const args_default[] = {NULL};
static const char *const args_sub_memory[] = {"--bridge-max-memory", "4M",
                                              "--bridge-max-sub-memory", "2M", NULL};
static const char *const args_small[] = {"--bridge-max-memory", "1M", NULL};
static const char *const args_links[] = {"--bridge-max-sub-memory", "64M", NULL};
static const char *const args_tiny_subs[] = {"--bridge-max-sub-memory", "4096", NULL};
static const char *const args_pub_timeout[] = {"--bridge-pub-timeout", "100", NULL};

/* The bus's bridge totals and connections (at most BB_CONNS_MAX). */
static int bb_stat(shmbus_bus *bus, shmbus_bridge_info *info, shmbus_bridge_conn *conns)
{
    int n = shmbus_bridge_stat(bus, 0, info, conns, conns != NULL ? BB_CONNS_MAX : 0);

    if (n < 0)
        fail_msg("shmbus_bridge_stat: %s", shmbus_strerror(n));
    return n;
}

/* cmocka setup: the daemon with its bridge on a port the kernel picks. */
static int bb_setup(void **state)
{
    const char *const *extra = *state;
    const char *argv[DU_EXTRA_MAX + 1] = {"--bridge", "127.0.0.1:0"};
    struct du_daemon *d = calloc(1, sizeof(*d));
    shmbus_bridge_info info;
    shmbus_bus *bus = NULL;
    const char *colon;
    int n = 2, rc;

    for (int i = 0; extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    if (d == NULL)
        return -1;
    if (du_prepare(d) < 0) {
        du_discard(d);
        return -1;
    }
    rc = du_launch_log(d, argv, bb_log, sizeof(bb_log));
    if (rc < 0) {
        du_discard(d);
        return -1;
    }
    *state = d;
    rc = shmbus_connect(d->bus, &bus);
    if (rc == 0)
        rc = shmbus_bridge_stat(bus, 0, &info, NULL, 0);
    shmbus_close(bus);
    colon = rc == 0 ? strrchr(info.listen, ':') : NULL;
    bb_port = colon != NULL ? atoi(colon + 1) : 0;
    if (bb_port <= 0) {
        print_error("no bridge port: %s ('%s')\n", shmbus_strerror(rc), rc == 0 ? info.listen : "");
        du_teardown(state);
        return -1;
    }
    return 0;
}

/* @p n small topics t0000, t0001, ... (they stay in the daemon). */
static void make_topics(shmbus_bus *bus, int n)
{
    shmbus_topic_opts o = {.capacity = 2, .max_msg_size = 64, .max_subscribers = 4};

    for (int i = 0; i < n; i++) {
        char name[16];
        shmbus_topic *t;

        snprintf(name, sizeof(name), "t%04d", i);
        assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t));
        shmbus_topic_destroy(t);
    }
}

/* Run @p cmd on @p r. @return 1 if it was accepted, 0 on an error reply
 * (its text in @p err, if not NULL). */
static int rd_ok(redisContext *r, const char *cmd, char *err, size_t cap)
{
    redisReply *rep = redisCommand(r, cmd);
    int ok;

    if (rep == NULL)
        fail_msg("%s: no reply: %s", cmd, r->errstr);
    ok = rep->type != REDIS_REPLY_ERROR;
    if (!ok && err != NULL)
        snprintf(err, cap, "%s", rep->str);
    freeReplyObject(rep);
    return ok;
}

/* The memory the bridge's connection @p id holds. */
static uint64_t conn_memory(shmbus_bus *bus, uint64_t id)
{
    shmbus_bridge_conn conns[BB_CONNS_MAX];
    shmbus_bridge_info info;
    int n = bb_stat(bus, &info, conns);

    for (int i = 0; i < n; i++)
        if (conns[i].id == id)
            return conns[i].memory;
    fail_msg("no bridge connection %llu", (unsigned long long)id);
    return 0;
}

/* The id of the newest bridge connection. */
static uint64_t newest_conn(shmbus_bus *bus)
{
    shmbus_bridge_conn conns[BB_CONNS_MAX];
    shmbus_bridge_info info;
    int n = bb_stat(bus, &info, conns);

    assert_true(n > 0);
    return conns[n - 1].id;
}

/* Wait until the bridge's connection @p id has at least @p n patterns
 * (counted when they are made, before their links are). */
static void wait_patterns(shmbus_bus *bus, uint64_t id, uint32_t n)
{
    shmbus_bridge_conn conns[BB_CONNS_MAX];
    shmbus_bridge_info info;

    for (int64_t end = du_now_ms() + BB_MS; du_now_ms() < end; du_sleep_ms(1)) {
        int k = bb_stat(bus, &info, conns);

        for (int i = 0; i < k; i++)
            if (conns[i].id == id && conns[i].patterns >= n)
                return;
    }
    fail_msg("bridge connection %llu: fewer than %u patterns after %d ms", (unsigned long long)id,
             n, BB_MS);
}

/* PING on @p r. @return how long its answer took, in ms. */
static int64_t ping_ms(redisContext *r)
{
    int64_t t0 = du_now_ms();

    assert_true(rd_ok(r, "PING", NULL, 0));
    return du_now_ms() - t0;
}

/* A connection to the bridge that has answered a PING (so the bridge
 * lists it). */
static redisContext *open_pinged(void)
{
    redisContext *r = bu_redis_open(bb_port, BB_MS);

    assert_true(rd_ok(r, "PING", NULL, 0));
    return r;
}

/* Send the PSUBSCRIBEs pipelined on @p r, connection @p id, and once it
 * has a pattern (linking has begun), PING on @p other. @p t0 gets when
 * the send began. @return how long the PING's answer took, in ms. */
static int64_t send_ping_meanwhile(redisContext *r, shmbus_bus *bus, uint64_t id,
                                   redisContext *other, int64_t *t0)
{
    *t0 = du_now_ms();
    for (int done = 0; !done;)
        assert_int_equal(redisBufferWrite(r, &done), REDIS_OK);
    wait_patterns(bus, id, 1);
    return ping_ms(other);
}

/* Wait until the bridge has no connection; @return its memory then. */
static uint64_t memory_when_idle(shmbus_bus *bus)
{
    shmbus_bridge_info info;

    for (int64_t end = du_now_ms() + BB_MS; du_now_ms() < end; du_sleep_ms(5)) {
        bb_stat(bus, &info, NULL);
        if (info.connections == 0)
            return info.memory;
    }
    fail_msg("bridge connections still open after %d ms", BB_MS);
    return 0;
}

/* The daemon's resident set, in KiB. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("%s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    assert_true(kib > 0);
    return kib;
}

/* ----------------------------------------------------------------- tests */

/* A pattern's links are charged to its connection and to the bridge, and
 * given back by PUNSUBSCRIBE and by closing. */
static void test_budget_links_counted(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bridge_info info;
    shmbus_bus *bus;
    redisContext *r;
    uint64_t id, before, with, after;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    make_topics(bus, BB_TOPICS);
    r = open_pinged();
    id = newest_conn(bus);
    before = conn_memory(bus, id);
    assert_true(rd_ok(r, "PSUBSCRIBE t*", NULL, 0));
    with = conn_memory(bus, id);
    bb_stat(bus, &info, NULL);
    if (with < before + BB_TOPICS * BB_LINK_MIN || info.memory < with)
        fail_msg("a pattern over %d topics: connection memory %llu (before %llu), bridge %llu; "
                 "want at least %u bytes a topic more",
                 BB_TOPICS, (unsigned long long)with, (unsigned long long)before,
                 (unsigned long long)info.memory, BB_LINK_MIN);
    assert_true(rd_ok(r, "PUNSUBSCRIBE t*", NULL, 0));
    after = conn_memory(bus, id);
    if (after > with - BB_TOPICS * BB_LINK_MIN)
        fail_msg("after PUNSUBSCRIBE: connection memory %llu, with the pattern %llu",
                 (unsigned long long)after, (unsigned long long)with);
    assert_true(rd_ok(r, "PSUBSCRIBE t*", NULL, 0));
    assert_true(rd_ok(r, "SUBSCRIBE t0001", NULL, 0));
    redisFree(r);
    assert_int_equal(memory_when_idle(bus), 0);
    shmbus_close(bus);
}

/* Many patterns over thousands of topics: past --bridge-max-sub-memory
 * they get an error reply; the bridge stays within --bridge-max-memory,
 * the daemon's RSS grows by far less than unbounded links would take, and
 * PING on another connection keeps answering. */
static void test_budget_many_patterns(void **state)
{
    enum { PATTERNS = 480, RSS_MAX_KIB = 64 * 1024 * BB_RSS_SCALE };
    struct du_daemon *d = *state;
    shmbus_bridge_conn conns[BB_CONNS_MAX];
    shmbus_bridge_info info;
    char pat[PATTERNS + 16], err[512] = "";
    int accepted = 0, refused = 0, n;
    redisContext *r, *other;
    shmbus_bus *bus;
    long rss0, rss1;
    int64_t t0, all_ms, first_ms, last_ms;
    uint64_t id;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    make_topics(bus, BB_TOPICS);
    r = open_pinged();
    id = newest_conn(bus);
    other = open_pinged();
    rss0 = rss_kib(d->pid);
    /* "t*?", "t*", "t**?", "t**"...: distinct patterns (of at most 256
     * bytes) that all match every topic, sent in one go: PING on the other
     * connection, sent once the first is being linked, is answered between
     * two slices of the linking. */
    pat[0] = 't';
    for (int i = 0; i < PATTERNS; i++) {
        size_t stars = (size_t)i / 2 + 1;

        memset(pat + 1, '*', stars);
        snprintf(pat + 1 + stars, 2, "%s", i % 2 ? "" : "?");
        assert_int_equal(redisAppendCommand(r, "PSUBSCRIBE %s", pat), REDIS_OK);
    }
    first_ms = send_ping_meanwhile(r, bus, id, other, &t0);
    for (int i = 0; i < PATTERNS; i++) {
        redisReply *rep = NULL;

        if (redisGetReply(r, (void **)&rep) != REDIS_OK || rep == NULL)
            fail_msg("PSUBSCRIBE %d: no reply: %s", i, r->errstr);
        if (rep->type == REDIS_REPLY_ERROR) {
            snprintf(err, sizeof(err), "%s", rep->str);
            refused++;
        } else {
            accepted++;
        }
        freeReplyObject(rep);
    }
    all_ms = du_now_ms() - t0;
    last_ms = ping_ms(other);
    rss1 = rss_kib(d->pid);
    n = bb_stat(bus, &info, conns);
    print_message("%d patterns accepted, %d refused (\"%s\"); bridge memory %llu; RSS %ld -> "
                  "%ld KiB; linked in %lld ms, PING answered in %lld ms meanwhile, %lld ms "
                  "after\n",
                  accepted, refused, err, (unsigned long long)info.memory, rss0, rss1,
                  (long long)all_ms, (long long)first_ms, (long long)last_ms);
    if (first_ms > BB_PING_MS || last_ms > BB_PING_MS)
        fail_msg("PING took %lld ms while the patterns were linked, %lld ms after; want at "
                 "most %d",
                 (long long)first_ms, (long long)last_ms, BB_PING_MS);
    assert_true(accepted > 0);
    assert_true(refused > 0);
    assert_non_null(strstr(err, "--bridge-max-sub-memory"));
    assert_true(info.memory <= 4u << 20);
    for (int i = 0; i < n; i++)
        assert_true(conns[i].memory <= 4u << 20);
    if (rss1 - rss0 > RSS_MAX_KIB)
        fail_msg("the daemon's RSS grew by %ld KiB, want at most %d", rss1 - rss0, RSS_MAX_KIB);
    redisFree(r);
    redisFree(other);
    assert_int_equal(memory_when_idle(bus), 0);
    shmbus_close(bus);
}

/* A pattern past --bridge-max-sub-memory misses the topics created after
 * it: logged at its 1st, 2nd, 4th... miss, not at every topic. */
static void test_budget_new_topics_missed(void **state)
{
    enum { TOPICS = 200 };
    struct du_daemon *d = *state;
    shmbus_bridge_info info;
    redisContext *r;
    shmbus_bus *bus;
    int lines;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    r = bu_redis_open(bb_port, BB_MS);
    assert_true(rd_ok(r, "PSUBSCRIBE t*", NULL, 0));
    make_topics(bus, TOPICS);
    /* The I/O thread links new topics as it learns of them: wait until
     * the last one was handled (linked or missed). */
    du_log_wait(bb_log, "not delivered to t*", 8);
    du_sleep_ms(100); /* a 9th line, if any, would come now */
    lines = du_log_count(bb_log, "not delivered to t*");
    bb_stat(bus, &info, NULL);
    /* At most 4096 bytes of links: about 50 of the topics; the other 150
     * or so missed, logged at the 1st, 2nd, ..., 128th. */
    if (lines != 8)
        fail_msg("%d log lines for missed topics, want 8 (bridge memory %llu)", lines,
                 (unsigned long long)info.memory);
    assert_int_equal(du_log_count(bb_log, "(128 topics missed)"), 1);
    redisFree(r);
    assert_int_equal(memory_when_idle(bus), 0);
    shmbus_close(bus);
}

/* Linking patterns to thousands of topics costs linear time: the CPU the
 * daemon spends on PSUBSCRIBE stays far below what a scan of the links
 * per new link would cost (quadratic: seconds here). */
static void test_budget_pattern_time(void **state)
{
    enum { TOPICS = 4000, PATTERNS = 100, CPU_MAX_MS = 800 * BB_SLOW };
    struct du_daemon *d = *state;
    char pat[PATTERNS + 16];
    redisContext *r;
    shmbus_bus *bus;
    int64_t cpu0, cpu;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    make_topics(bus, TOPICS);
    r = open_pinged();
    pat[0] = 't';
    for (int i = 0; i < PATTERNS; i++) {
        memset(pat + 1, '*', (size_t)i + 1);
        pat[i + 2] = '\0';
        assert_int_equal(redisAppendCommand(r, "PSUBSCRIBE %s", pat), REDIS_OK);
    }
    cpu0 = du_cpu_ms(d->pid);
    for (int i = 0; i < PATTERNS; i++) {
        redisReply *rep = NULL;

        if (redisGetReply(r, (void **)&rep) != REDIS_OK || rep == NULL)
            fail_msg("PSUBSCRIBE %d: no reply: %s", i, r->errstr);
        if (rep->type != REDIS_REPLY_ARRAY)
            fail_msg("PSUBSCRIBE %d: %s", i, rep->str != NULL ? rep->str : "not an array");
        freeReplyObject(rep);
    }
    cpu = du_cpu_ms(d->pid) - cpu0;
    print_message("%d patterns over %d topics linked in %lld ms of the daemon's CPU\n", PATTERNS,
                  TOPICS, (long long)cpu);
    if (cpu > CPU_MAX_MS)
        fail_msg("linking %d patterns to %d topics took %lld ms of CPU, want at most %d", PATTERNS,
                 TOPICS, (long long)cpu, CPU_MAX_MS);
    redisFree(r);
    assert_int_equal(memory_when_idle(bus), 0);
    shmbus_close(bus);
}

/* A million idle channel subscriptions (on 1000 connections) and one
 * costly pattern over 1000 topics: linking visits only the subscriptions
 * that are behind, so the pattern takes tens of milliseconds of the
 * daemon's CPU, not seconds of walking the idle ones in every pass. */
static void test_budget_idle_subs_skipped(void **state)
{
    enum { CONNS = 1000, SUBS = 1000, TOPICS = 1000, CPU_MAX_MS = 500 * BB_SLOW };
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 2, .max_msg_size = 64, .max_subscribers = 4};
    static char names[SUBS][24];
    const char *argv[SUBS + 1] = {"SUBSCRIBE"};
    redisContext **rs = calloc(CONNS, sizeof(*rs)), *r;
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    redisReply *rep = NULL;
    int64_t cpu0, cpu;
    shmbus_bus *bus;

    assert_non_null(rs);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    for (int i = 0; i < TOPICS; i++) {
        shmbus_topic *t;

        snprintf(name, sizeof(name), "t%.*s%04d", SHMBUS_TOPIC_NAME_MAX - 5, BB_AS, i);
        assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t));
        shmbus_topic_destroy(t);
    }
    for (int i = 0; i < CONNS; i++) {
        for (int j = 0; j < SUBS; j++) {
            snprintf(names[j], sizeof(names[j]), "x%d.%d", i, j);
            argv[j + 1] = names[j];
        }
        rs[i] = bu_redis_open(bb_port, BB_MS);
        assert_int_equal(redisAppendCommandArgv(rs[i], SUBS + 1, argv, NULL), REDIS_OK);
    }
    for (int i = 0; i < CONNS; i++)
        for (int j = 0; j < SUBS; j++) {
            if (redisGetReply(rs[i], (void **)&rep) != REDIS_OK || rep == NULL)
                fail_msg("SUBSCRIBE on connection %d: no reply: %s", i, rs[i]->errstr);
            assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
            freeReplyObject(rep);
        }
    r = open_pinged();
    cpu0 = du_cpu_ms(d->pid);
    rep = redisCommand(r, "PSUBSCRIBE *%s",
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab*");
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY)
        fail_msg("PSUBSCRIBE: %s", rep == NULL ? r->errstr : rep->str);
    freeReplyObject(rep);
    cpu = du_cpu_ms(d->pid) - cpu0;
    print_message(
        "one costly pattern over %d topics beside %d idle subscriptions linked in %lld ms "
        "of the daemon's CPU\n",
        TOPICS, CONNS * SUBS, (long long)cpu);
    if (cpu > CPU_MAX_MS)
        fail_msg("the pattern took %lld ms of CPU, want at most %d", (long long)cpu, CPU_MAX_MS);
    redisFree(r);
    for (int i = 0; i < CONNS; i++)
        redisFree(rs[i]);
    free(rs);
    shmbus_close(bus);
}

/* Costly patterns that match nothing, pipelined: "*aaa...ab*N" (64 a's)
 * against 128-byte names of a's takes thousands of glob steps a topic, and
 * the patterns hold no links, so no budget stops them. A PING on another
 * connection, sent while they are linked, is answered within BB_PING_MS;
 * every PSUBSCRIBE gets its reply, and the last one, which matches a
 * topic, gets its messages. */
static void test_budget_costly_patterns(void **state)
{
    enum { TOPICS = 1000, PATTERNS = 100 };
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 2, .max_msg_size = 64, .max_subscribers = 4};
    char name[SHMBUS_TOPIC_NAME_MAX + 1], pat[128], cmd[256];
    redisContext *r, *other;
    int64_t t0, first_ms, all_ms;
    redisReply *rep = NULL;
    shmbus_bus *bus;
    uint64_t id;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    for (int i = 0; i < TOPICS; i++) {
        shmbus_topic *t;

        snprintf(name, sizeof(name), "t%.*s%04d", SHMBUS_TOPIC_NAME_MAX - 5, BB_AS, i);
        assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t));
        shmbus_topic_destroy(t);
    }
    r = open_pinged();
    id = newest_conn(bus);
    other = open_pinged();
    for (int i = 0; i < PATTERNS; i++) {
        if (i < PATTERNS - 1)
            snprintf(pat, sizeof(pat), "*%.64sb*%d", BB_AS, i);
        else
            snprintf(pat, sizeof(pat), "t*%04d", TOPICS - 1);
        assert_int_equal(redisAppendCommand(r, "PSUBSCRIBE %s", pat), REDIS_OK);
    }
    first_ms = send_ping_meanwhile(r, bus, id, other, &t0);
    for (int i = 0; i < PATTERNS; i++) {
        if (redisGetReply(r, (void **)&rep) != REDIS_OK || rep == NULL)
            fail_msg("PSUBSCRIBE %d: no reply: %s", i, r->errstr);
        if (rep->type != REDIS_REPLY_ARRAY)
            fail_msg("PSUBSCRIBE %d: %s", i, rep->str != NULL ? rep->str : "not an array");
        freeReplyObject(rep);
    }
    all_ms = du_now_ms() - t0;
    print_message("%d costly patterns over %d topics linked in %lld ms; PING meanwhile answered "
                  "in %lld ms\n",
                  PATTERNS, TOPICS, (long long)all_ms, (long long)first_ms);
    if (first_ms > BB_PING_MS)
        fail_msg("PING took %lld ms while patterns were linked, want at most %d",
                 (long long)first_ms, BB_PING_MS);
    snprintf(cmd, sizeof(cmd), "PUBLISH t%.*s%04d hello", SHMBUS_TOPIC_NAME_MAX - 5, BB_AS,
             TOPICS - 1);
    rep = redisCommand(other, cmd);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);
    assert_int_equal(redisGetReply(r, (void **)&rep), REDIS_OK);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_int_equal(rep->elements, 4);
    assert_string_equal(rep->element[0]->str, "pmessage");
    assert_string_equal(rep->element[3]->str, "hello");
    freeReplyObject(rep);
    redisFree(r);
    redisFree(other);
    assert_int_equal(memory_when_idle(bus), 0);
    shmbus_close(bus);
}

/* The next reply on @p r is a message with payload @p want. */
static void expect_message(redisContext *r, const char *want)
{
    redisReply *rep = NULL;

    if (redisGetReply(r, (void **)&rep) != REDIS_OK || rep == NULL)
        fail_msg("no message '%s': %s", want, r->errstr);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_int_equal(rep->elements, 3);
    assert_string_equal(rep->element[0]->str, "message");
    assert_string_equal(rep->element[2]->str, want);
    freeReplyObject(rep);
}

/* Topics created while costly patterns keep the linking busy for many
 * passes: a subscriber made before the topic gets its first message,
 * even when another client subscribes to that topic (and makes its
 * reader) before the first one's link is made. */
static void test_budget_late_link_oldest(void **state)
{
    enum { PATTERNS = 1024 };
    struct du_daemon *d = *state;
    char topic[SHMBUS_TOPIC_NAME_MAX + 1], other[SHMBUS_TOPIC_NAME_MAX + 1], cmd[512];
    redisContext *a, *c, *b, *late;
    redisReply *rep = NULL;

    (void)d;
    snprintf(topic, sizeof(topic), "t%.*sNEW1", SHMBUS_TOPIC_NAME_MAX - 5, BB_AS);
    snprintf(other, sizeof(other), "t%.*sX000", SHMBUS_TOPIC_NAME_MAX - 5, BB_AS);
    a = open_pinged();
    snprintf(cmd, sizeof(cmd), "SUBSCRIBE %s", topic);
    assert_true(rd_ok(a, cmd, NULL, 0));
    c = open_pinged();
    for (int i = 0; i < PATTERNS; i++) {
        snprintf(cmd, sizeof(cmd), "*%.64sb*%d", BB_AS, i);
        assert_int_equal(redisAppendCommand(c, "PSUBSCRIBE %s", cmd), REDIS_OK);
    }
    for (int i = 0; i < PATTERNS; i++) {
        if (redisGetReply(c, (void **)&rep) != REDIS_OK || rep == NULL)
            fail_msg("PSUBSCRIBE %d: no reply: %s", i, c->errstr);
        freeReplyObject(rep);
    }
    b = open_pinged();
    late = open_pinged();
    /* Two new topics: 1026 subscriptions × 2 costly matches, many passes. */
    assert_int_equal(redisAppendCommand(b, "PUBLISH %s x", other), REDIS_OK);
    assert_int_equal(redisAppendCommand(b, "PUBLISH %s m1", topic), REDIS_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(redisGetReply(b, (void **)&rep), REDIS_OK);
        freeReplyObject(rep);
    }
    snprintf(cmd, sizeof(cmd), "SUBSCRIBE %s", topic);
    assert_true(rd_ok(late, cmd, NULL, 0));
    snprintf(cmd, sizeof(cmd), "PUBLISH %s m2", topic);
    assert_true(rd_ok(b, cmd, NULL, 0));
    expect_message(a, "m1");
    expect_message(a, "m2");
    redisFree(late);
    redisFree(b);
    redisFree(c);
    redisFree(a);
}

/* A raw TCP connection to the bridge. */
static int raw_open(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)bb_port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        fail_msg("connect to bridge port %d: %s", bb_port, strerror(errno));
    return fd;
}

static void raw_send(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail_msg("send: %s", n < 0 ? strerror(errno) : "nothing taken");
        p += n;
        len -= (size_t)n;
    }
}

/* Many connections paused on a long inline PSUBSCRIBE whose costly
 * pattern is being linked: the bridge does not re-read their commands
 * every millisecond, and another connection's PINGs answer in about a
 * millisecond (the median; before, 10 to 50 ms). */
static void test_budget_paused_not_reparsed(void **state)
{
    enum { TOPICS = 1000, CONNS = 2000, CHEAP = 240, PINGS = 200 };
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 2, .max_msg_size = 64, .max_subscribers = 4};
    char name[SHMBUS_TOPIC_NAME_MAX + 1], *line;
    int64_t ms[PINGS], baseline;
    int *fds = calloc(CONNS, sizeof(*fds));
    redisContext *other;
    shmbus_bus *bus;
    size_t len;

    assert_non_null(fds);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    for (int i = 0; i < TOPICS; i++) {
        shmbus_topic *t;

        snprintf(name, sizeof(name), "t%.*s%04d", SHMBUS_TOPIC_NAME_MAX - 5, BB_AS, i);
        assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t));
        shmbus_topic_destroy(t);
    }
    other = open_pinged();
    baseline = ping_ms(other);
    line = malloc(CHEAP * 256 + 256);
    assert_non_null(line);
    for (int i = 0; i < CONNS; i++) {
        len = (size_t)sprintf(line, "PSUBSCRIBE *%.64sb*c%d", BB_AS, i);
        for (int j = 0; j < CHEAP; j++)
            len += (size_t)sprintf(line + len, " z%d-%d%.240s", i, j, BB_AS);
        memcpy(line + len, "\r\n", 2);
        fds[i] = raw_open();
        raw_send(fds[i], line, len + 2);
    }
    for (int i = 0; i < PINGS; i++)
        ms[i] = ping_ms(other);
    for (int i = 1; i < PINGS; i++) /* insertion sort: the median */
        for (int j = i; j > 0 && ms[j - 1] > ms[j]; j--) {
            int64_t x = ms[j];

            ms[j] = ms[j - 1];
            ms[j - 1] = x;
        }
    print_message("%d connections paused while linking: PING median %lld ms, max %lld ms "
                  "(%lld ms before)\n",
                  CONNS, (long long)ms[PINGS / 2], (long long)ms[PINGS - 1], (long long)baseline);
    if (ms[PINGS / 2] > BB_PAUSED_PING_MS)
        fail_msg("PING median %lld ms with %d paused connections, want at most %d",
                 (long long)ms[PINGS / 2], CONNS, BB_PAUSED_PING_MS);
    for (int i = 0; i < CONNS; i++)
        close(fds[i]);
    free(fds);
    free(line);
    redisFree(other);
    shmbus_close(bus);
}

/* A PSUBSCRIBE still being linked (100 costly patterns on other
 * connections share the slices) already has its link to a reliable topic
 * of 2 cells: the topic's reader does not hold its publishers back until
 * the reply (each PUBLISH would wait --bridge-pub-timeout and fail), and
 * PUBLISH does not count that link as a receiver. */
static void test_budget_pending_not_gating(void **state)
{
    enum { TOPICS = 1000, COSTLY = 100 };
    struct du_daemon *d = *state;
    shmbus_topic_opts rel = {
        .mode = SHMBUS_RELIABLE, .capacity = 2, .max_msg_size = 64, .max_subscribers = 4};
    shmbus_topic_opts o = {.capacity = 2, .max_msg_size = 64, .max_subscribers = 4};
    char name[SHMBUS_TOPIC_NAME_MAX + 1], line[256], err[256] = "", first = 0;
    int fds[COSTLY], pending, published = 0, failed = 0;
    redisReply *rep;
    redisContext *pub;
    shmbus_topic *t;
    shmbus_bus *bus;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    snprintf(name, sizeof(name), "t%.*sREL1", SHMBUS_TOPIC_NAME_MAX - 5, BB_AS);
    assert_shmbus_ok(shmbus_open(bus, name, &rel, 0, &t)); /* first: linked first */
    shmbus_topic_destroy(t);
    for (int i = 0; i < TOPICS; i++) {
        snprintf(name, sizeof(name), "t%.*s%04d", SHMBUS_TOPIC_NAME_MAX - 5, BB_AS, i);
        assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t));
        shmbus_topic_destroy(t);
    }
    pub = open_pinged();
    for (int i = 0; i < COSTLY; i++) {
        int n = snprintf(line, sizeof(line), "PSUBSCRIBE *%.64sb*c%d\r\n", BB_AS, i);

        fds[i] = raw_open();
        raw_send(fds[i], line, (size_t)n);
    }
    pending = raw_open();
    raw_send(pending, line,
             (size_t)snprintf(line, sizeof(line), "PSUBSCRIBE *%.64sREL1\r\n", BB_AS));
    snprintf(line, sizeof(line), "PUBLISH t%.*sREL1 m", SHMBUS_TOPIC_NAME_MAX - 5, BB_AS);
    for (int64_t end = du_now_ms() + 30 * BB_MS; du_read_ms(pending, &first, 1, 10) != 1;) {
        if (du_now_ms() > end)
            fail_msg("no PSUBSCRIBE reply after %d ms", 30 * BB_MS);
        rep = redisCommand(pub, line);
        if (rep == NULL)
            fail_msg("PUBLISH: no reply: %s", pub->errstr);
        if (rep->type == REDIS_REPLY_ERROR) {
            snprintf(err, sizeof(err), "%s", rep->str);
            failed++;
        } else if (rep->integer != 0) {
            /* Live only once linked: then the reply is on its way (the
             * check above may have looked just before it was sent). */
            if (du_read_ms(pending, &first, 1, BB_MS) != 1)
                fail_msg("PUBLISH counted %lld receivers: the pending pattern's link is not live",
                         rep->integer);
            freeReplyObject(rep);
            published++;
            break;
        }
        freeReplyObject(rep);
        published++;
    }
    print_message("%d publishes into a reliable topic of 2 cells while a pattern linked to it "
                  "was pending: %d failed (%s)\n",
                  published, failed, err);
    assert_int_equal(first, '*');
    if (published < 3)
        fail_msg("the pattern was linked after %d publishes: too soon to fill the topic",
                 published);
    assert_int_equal(failed, 0);
    for (int i = 0; i < COSTLY; i++)
        close(fds[i]);
    close(pending);
    redisFree(pub);
    shmbus_close(bus);
}

/* With --bridge-max-memory full, the connection that holds the most (the
 * links of its patterns) is closed when a smaller one asks for more (a
 * long command's input), and the smaller one goes on. */
static void test_budget_largest_closed(void **state)
{
    enum { PARTIAL = 450000, PAYLOAD = 460000 };
    struct du_daemon *d = *state;
    shmbus_bridge_info info;
    char head[128], pat[64], reply = 0, *body;
    redisContext *big;
    uint64_t big_id;
    shmbus_bus *bus;
    int small, hl;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    make_topics(bus, BB_TOPICS);
    big = open_pinged();
    big_id = newest_conn(bus);
    /* Patterns until the big one holds 600 KiB of the 1 MiB. */
    for (int i = 1; conn_memory(bus, big_id) < 600u * 1024; i++) {
        assert_true(i < 64);
        snprintf(pat, sizeof(pat), "PSUBSCRIBE t%.*s", i, "****************************");
        assert_true(rd_ok(big, pat, NULL, 0));
    }
    small = raw_open();
    hl = snprintf(head, sizeof(head), "*3\r\n$7\r\nPUBLISH\r\n$5\r\nt0000\r\n$%d\r\n", PAYLOAD);
    body = malloc(PAYLOAD + 2);
    assert_non_null(body);
    memset(body, 'x', PAYLOAD);
    memcpy(body + PAYLOAD, "\r\n", 2);
    raw_send(small, head, (size_t)hl);
    raw_send(small, body, PARTIAL);
    for (int64_t end = du_now_ms() + BB_MS;; du_sleep_ms(5)) {
        bb_stat(bus, &info, NULL);
        if (info.evicted > 0)
            break;
        if (du_now_ms() > end)
            fail_msg("no connection evicted; bridge memory %llu, big %llu",
                     (unsigned long long)info.memory, (unsigned long long)conn_memory(bus, big_id));
    }
    assert_int_equal(info.evicted, 1);
    assert_int_equal(info.slow_closed, 0);
    assert_null(redisCommand(big, "PING")); /* closed */
    raw_send(small, body + PARTIAL, PAYLOAD + 2 - PARTIAL);
    /* The topic's cells take 64 bytes: an error reply, and the connection stays. */
    assert_int_equal(du_read_ms(small, &reply, 1, BB_MS), 1);
    assert_int_equal(reply, '-');
    free(body);
    close(small);
    redisFree(big);
    bb_stat(bus, &info, NULL);
    assert_int_equal(info.evicted, 1);
    assert_int_equal(memory_when_idle(bus), 0);
    shmbus_close(bus);
}

#define BB_TEST(f, args) cmocka_unit_test_prestate_setup_teardown(f, bb_setup, du_teardown, args)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BB_TEST(test_budget_links_counted, (void *)args_default),
        BB_TEST(test_budget_many_patterns, (void *)args_sub_memory),
        BB_TEST(test_budget_largest_closed, (void *)args_small),
        BB_TEST(test_budget_pattern_time, (void *)args_links),
        BB_TEST(test_budget_costly_patterns, (void *)args_default),
        BB_TEST(test_budget_new_topics_missed, (void *)args_tiny_subs),
        BB_TEST(test_budget_late_link_oldest, (void *)args_default),
        BB_TEST(test_budget_paused_not_reparsed, (void *)args_default),
        BB_TEST(test_budget_pending_not_gating, (void *)args_pub_timeout),
        BB_TEST(test_budget_idle_subs_skipped, (void *)args_default),
    };

    tu_init();
    return cmocka_run_group_tests_name("bridge_budget", tests, NULL, NULL);
}
