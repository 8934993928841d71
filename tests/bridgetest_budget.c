/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge budget tests' part of the helper library (bridgetest.h): a
 * daemon whose bridge listens on a port the kernel picks (--bridge
 * 127.0.0.1:0, read back from shmbus_bridge_stat()), its bridge's totals
 * and connections, many topics made through the library, and hiredis and
 * raw connections to it.
 */
#include "bridgetest.h"

#include <arpa/inet.h>
#include <netinet/in.h>

int bb_port;
char bb_log[PATH_MAX];

/* The bus's bridge totals and connections (at most BB_CONNS_MAX). */
int bb_stat(shmbus_bus *bus, shmbus_bridge_info *info, shmbus_bridge_conn *conns)
{
    int n = shmbus_bridge_stat(bus, 0, info, conns, conns != NULL ? BB_CONNS_MAX : 0);

    if (n < 0)
        fail_msg("shmbus_bridge_stat: %s", shmbus_strerror(n));
    return n;
}

/* cmocka setup: the daemon with its bridge on a port the kernel picks. */
int bb_setup(void **state)
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
void make_topics(shmbus_bus *bus, int n)
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
int rd_ok(redisContext *r, const char *cmd, char *err, size_t cap)
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
uint64_t conn_memory(shmbus_bus *bus, uint64_t id)
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
uint64_t newest_conn(shmbus_bus *bus)
{
    shmbus_bridge_conn conns[BB_CONNS_MAX];
    shmbus_bridge_info info;
    int n = bb_stat(bus, &info, conns);

    assert_true(n > 0);
    return conns[n - 1].id;
}

/* Wait until the bridge's connection @p id has at least @p n patterns
 * (counted when they are made, before their links are). */
void wait_patterns(shmbus_bus *bus, uint64_t id, uint32_t n)
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
int64_t ping_ms(redisContext *r)
{
    int64_t t0 = du_now_ms();

    assert_true(rd_ok(r, "PING", NULL, 0));
    return du_now_ms() - t0;
}

/* A connection to the bridge that has answered a PING (so the bridge
 * lists it). */
redisContext *open_pinged(void)
{
    redisContext *r = bu_redis_open(bb_port, BB_MS);

    assert_true(rd_ok(r, "PING", NULL, 0));
    return r;
}

/* Send the PSUBSCRIBEs pipelined on @p r, connection @p id, and once it
 * has a pattern (linking has begun), PING on @p other. @p t0 gets when
 * the send began. @return how long the PING's answer took, in ms. */
int64_t send_ping_meanwhile(redisContext *r, shmbus_bus *bus, uint64_t id, redisContext *other,
                            int64_t *t0)
{
    *t0 = du_now_ms();
    for (int done = 0; !done;)
        assert_int_equal(redisBufferWrite(r, &done), REDIS_OK);
    wait_patterns(bus, id, 1);
    return ping_ms(other);
}

/* @p n topics of names as long as a name may be (BB_AS), numbered from 0,
 * of 2 cells (they stay in the daemon): costly for a pattern to match. */
void make_long_topics(shmbus_bus *bus, int n)
{
    shmbus_topic_opts o = {.capacity = 2, .max_msg_size = 64, .max_subscribers = 4};
    char name[SHMBUS_TOPIC_NAME_MAX + 8]; /* room for any int: names take 4 digits */

    assert_true(n <= 10000);
    for (int i = 0; i < n; i++) {
        shmbus_topic *t;

        snprintf(name, sizeof(name), "t%.*s%04d", SHMBUS_TOPIC_NAME_MAX - 5, BB_AS, i);
        assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t));
        shmbus_topic_destroy(t);
    }
}

/* Read the replies of @p n PSUBSCRIBEs sent on @p r: each a confirmation. */
void psubscribe_replies(redisContext *r, int n)
{
    for (int i = 0; i < n; i++) {
        redisReply *rep = NULL;

        if (redisGetReply(r, (void **)&rep) != REDIS_OK || rep == NULL)
            fail_msg("PSUBSCRIBE %d: no reply: %s", i, r->errstr);
        if (rep->type != REDIS_REPLY_ARRAY)
            fail_msg("PSUBSCRIBE %d: %s", i, rep->str != NULL ? rep->str : "not an array");
        freeReplyObject(rep);
    }
}

/* Wait until the bridge has no connection; @return its memory then. */
uint64_t memory_when_idle(shmbus_bus *bus)
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

/* A raw TCP connection to the bridge. */
int raw_open(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)bb_port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        fail_msg("connect to bridge port %d: %s", bb_port, strerror(errno));
    return fd;
}

void raw_send(int fd, const void *data, size_t len)
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
