/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TCP bridge's memory budgets (daemon/bridge/mem.c) end to end, against
 * a daemon per test (bridgetest.h, bb_setup()): the links that pattern
 * subscriptions make are counted per connection and for the bridge, and
 * given back on PUNSUBSCRIBE and close; when --bridge-max-memory is full,
 * the connection that holds the most is closed, not the one that asks; a
 * pattern past --bridge-max-sub-memory logs the topics it misses; a topic
 * created while linking is busy reaches every subscriber made before it
 * from its first message; a pattern still being linked does not hold a
 * reliable topic's publishers back. Topics are made small through the
 * library, so that thousands fit. What the budgets cost in time is in
 * stress/test_bridge_budget_timing.c.
 */
#include "bridgetest.h"

/* Daemon arguments of each test (cmocka prestate), after --bridge. */
static const char *const args_default[] = {NULL};
static const char *const args_small[] = {"--bridge-max-memory", "1M", NULL};
static const char *const args_tiny_subs[] = {"--bridge-max-sub-memory", "4096", NULL};
static const char *const args_pub_timeout[] = {"--bridge-pub-timeout", "100", NULL};

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
    make_long_topics(bus, TOPICS);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        BB_TEST(test_budget_links_counted, (void *)args_default),
        BB_TEST(test_budget_largest_closed, (void *)args_small),
        BB_TEST(test_budget_new_topics_missed, (void *)args_tiny_subs),
        BB_TEST(test_budget_late_link_oldest, (void *)args_default),
        BB_TEST(test_budget_pending_not_gating, (void *)args_pub_timeout),
    };

    tu_init();
    return cmocka_run_group_tests_name("bridge_budget", tests, NULL, NULL);
}
