/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the TCP bridge's memory budgets and pattern linking cost in time
 * (daemon/bridge/mem.c, link.h), against a daemon per test
 * (bridgetest.h, bb_setup()): each passes on CPU time or PING times
 * measured, so each is a timing test and lives here. Many patterns over
 * thousands of topics stay within --bridge-max-sub-memory and
 * --bridge-max-memory (the daemon's RSS too) while another connection's
 * PING keeps answering; linking 100 patterns to 4000 topics costs the
 * daemon linear CPU time; costly patterns over long names never hold up
 * another connection's PING, nor do connections paused while their
 * patterns are linked, nor a million idle subscriptions.
 */
#include "bridgetest.h"

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
 * slices of 1 to 4 ms (bridge/link.h), 200 ms is far off. */
#define BB_PING_MS (200 * BB_SLOW)

/* Daemon arguments of each test (cmocka prestate), after --bridge. */
static const char *const args_default[] = {NULL};
static const char *const args_sub_memory[] = {"--bridge-max-memory", "4M",
                                              "--bridge-max-sub-memory", "2M", NULL};
static const char *const args_links[] = {"--bridge-max-sub-memory", "64M", NULL};

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
    psubscribe_replies(r, PATTERNS);
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
    static char names[SUBS][24];
    const char *argv[SUBS + 1] = {"SUBSCRIBE"};
    redisContext **rs = calloc(CONNS, sizeof(*rs)), *r;
    redisReply *rep = NULL;
    int64_t cpu0, cpu;
    shmbus_bus *bus;

    assert_non_null(rs);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    make_long_topics(bus, TOPICS);
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
    char pat[128], cmd[256];
    redisContext *r, *other;
    int64_t t0, first_ms, all_ms;
    redisReply *rep = NULL;
    shmbus_bus *bus;
    uint64_t id;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    make_long_topics(bus, TOPICS);
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
    psubscribe_replies(r, PATTERNS);
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

/* Many connections paused on a long inline PSUBSCRIBE whose costly
 * pattern is being linked: the bridge does not re-read their commands
 * every millisecond, and another connection's PINGs answer in about a
 * millisecond (the median; before, 10 to 50 ms). */
static void test_budget_paused_not_reparsed(void **state)
{
    enum { TOPICS = 1000, CONNS = 2000, CHEAP = 240, PINGS = 200 };
    struct du_daemon *d = *state;
    char *line;
    int64_t ms[PINGS], baseline;
    int *fds = calloc(CONNS, sizeof(*fds));
    redisContext *other;
    shmbus_bus *bus;
    size_t len;

    assert_non_null(fds);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    make_long_topics(bus, TOPICS);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        BB_TEST(test_budget_many_patterns, (void *)args_sub_memory),
        BB_TEST(test_budget_pattern_time, (void *)args_links),
        BB_TEST(test_budget_costly_patterns, (void *)args_default),
        BB_TEST(test_budget_paused_not_reparsed, (void *)args_default),
        BB_TEST(test_budget_idle_subs_skipped, (void *)args_default),
    };

    tu_init();
    return cmocka_run_group_tests_name("bridge_budget_timing", tests, NULL, NULL);
}
