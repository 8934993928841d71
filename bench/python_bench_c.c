/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbus-pyloop: the C side of bench/python_bench.py. Each command is the
 * loop python_bench.py runs in Python, written as a C program would write
 * it on the bus API (shmbus_publish(), shmbus_recv() into a buffer), so
 * that the script can put the two side by side in one run:
 *   pub BUS TOPIC COUNT SIZE        publish COUNT messages on a lossy topic
 *                                   (no subscriber); prints the ns it took
 *   feed BUS TOPIC COUNT SIZE       publish COUNT messages on a reliable
 *                                   topic, waiting for room (the producer of
 *                                   the receive-rate measurement)
 *   recv BUS TOPIC COUNT            subscribe, print "ready", receive COUNT;
 *                                   prints the ns from the first to the last
 *   echo BUS PING PONG COUNT        answer COUNT messages of PING on PONG
 *   ping BUS PING PONG COUNT SIZE   COUNT round trips; prints p50, p99 and p99.9 of
 *                                   half of each, in ns
 * Never run by ctest.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shmbus/shmbus.h>

#define PYLOOP_WAIT_NS (10ll * 1000000000ll) /* no message in a benchmark: give up */

static uint64_t pyloop_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int pyloop_fail(const char *what, int rc)
{
    fprintf(stderr, "shmbus-pyloop: %s: %s\n", what, shmbus_strerror(rc));
    return 1;
}

/* The topics of one command; every handle is NULL when unused. */
struct pyloop {
    shmbus_bus *bus;
    shmbus_topic *t_out, *t_in;
    shmbus_pub *pub;
    shmbus_sub *sub;
    char buf[65536];
};

static int pyloop_open(struct pyloop *p, const char *bus, const char *out, const char *in,
                       uint32_t mode)
{
    shmbus_topic_opts o = {.mode = mode, .capacity = 4096, .max_msg_size = 65536};
    int rc = shmbus_connect(bus, &p->bus);

    if (rc == 0 && out != NULL)
        rc = shmbus_open(p->bus, out, &o, 0, &p->t_out);
    if (rc == 0 && out != NULL)
        rc = shmbus_pub_create(p->t_out, &p->pub);
    if (rc == 0 && in != NULL)
        rc = shmbus_open(p->bus, in, &o, 0, &p->t_in);
    if (rc == 0 && in != NULL)
        rc = shmbus_sub_create(p->t_in, NULL, &p->sub);
    return rc;
}

static void pyloop_close(struct pyloop *p)
{
    shmbus_sub_destroy(p->sub);
    shmbus_pub_destroy(p->pub);
    shmbus_topic_destroy(p->t_in);
    shmbus_topic_destroy(p->t_out);
    shmbus_close(p->bus);
}

static int pyloop_publish(struct pyloop *p, uint64_t count, size_t size, int64_t wait_ns)
{
    uint64_t t0 = pyloop_now();

    memset(p->buf, 'x', size);
    for (uint64_t i = 0; i < count; i++) {
        int rc = shmbus_publish(p->pub, p->buf, size, wait_ns);

        if (rc < 0)
            return pyloop_fail("publish", rc);
    }
    printf("%llu\n", (unsigned long long)(pyloop_now() - t0));
    return 0;
}

static int pyloop_recv(struct pyloop *p, uint64_t count)
{
    uint64_t t0 = 0;

    printf("ready\n");
    fflush(stdout);
    for (uint64_t i = 0; i < count; i++) {
        int rc = shmbus_recv(p->sub, p->buf, sizeof(p->buf), NULL, PYLOOP_WAIT_NS);

        if (rc < 0)
            return pyloop_fail("recv", rc);
        if (i == 0)
            t0 = pyloop_now();
    }
    printf("%llu\n", (unsigned long long)(pyloop_now() - t0));
    return 0;
}

static int pyloop_echo(struct pyloop *p, uint64_t count)
{
    printf("ready\n");
    fflush(stdout);
    for (uint64_t i = 0; i < count; i++) {
        int rc = shmbus_recv(p->sub, p->buf, sizeof(p->buf), NULL, PYLOOP_WAIT_NS);

        if (rc >= 0)
            rc = shmbus_publish(p->pub, p->buf, (size_t)rc, 0);
        if (rc < 0)
            return pyloop_fail("echo", rc);
    }
    return 0;
}

static int pyloop_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int pyloop_ping(struct pyloop *p, uint64_t count, size_t size)
{
    uint64_t *lat = malloc(count * sizeof(*lat));

    if (lat == NULL)
        return pyloop_fail("ping", -ENOMEM);
    memset(p->buf, 'p', size);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t t0 = pyloop_now();
        int rc = shmbus_publish(p->pub, p->buf, size, 0);

        if (rc >= 0)
            rc = shmbus_recv(p->sub, p->buf, sizeof(p->buf), NULL, PYLOOP_WAIT_NS);
        if (rc < 0) {
            free(lat);
            return pyloop_fail("ping", rc);
        }
        lat[i] = (pyloop_now() - t0) / 2;
    }
    qsort(lat, count, sizeof(*lat), pyloop_cmp);
    printf("%llu %llu %llu\n", (unsigned long long)lat[count / 2],
           (unsigned long long)lat[count * 99 / 100], (unsigned long long)lat[count * 999 / 1000]);
    free(lat);
    return 0;
}

static uint64_t pyloop_num(const char *s)
{
    return strtoull(s, NULL, 10);
}

/* argv as main() checked it: the command, BUS, then its arguments. */
static int pyloop_run(struct pyloop *p, char **argv)
{
    const char *cmd = argv[1], *bus = argv[2];
    int feed = strcmp(cmd, "feed") == 0, rc;

    if (strcmp(cmd, "pub") == 0 || feed) {
        rc = pyloop_open(p, bus, argv[3], NULL, feed ? SHMBUS_RELIABLE : SHMBUS_LOSSY);
        return rc < 0 ? pyloop_fail(argv[3], rc)
                      : pyloop_publish(p, pyloop_num(argv[4]), (size_t)pyloop_num(argv[5]),
                                       feed ? PYLOOP_WAIT_NS : 0);
    }
    if (strcmp(cmd, "recv") == 0) {
        rc = pyloop_open(p, bus, NULL, argv[3], SHMBUS_RELIABLE);
        return rc < 0 ? pyloop_fail(argv[3], rc) : pyloop_recv(p, pyloop_num(argv[4]));
    }
    /* echo reads PING and answers on PONG; ping the other way round. */
    if (strcmp(cmd, "echo") == 0) {
        rc = pyloop_open(p, bus, argv[4], argv[3], SHMBUS_LOSSY);
        return rc < 0 ? pyloop_fail("echo", rc) : pyloop_echo(p, pyloop_num(argv[5]));
    }
    rc = pyloop_open(p, bus, argv[3], argv[4], SHMBUS_LOSSY);
    return rc < 0 ? pyloop_fail("ping", rc)
                  : pyloop_ping(p, pyloop_num(argv[5]), (size_t)pyloop_num(argv[6]));
}

int main(int argc, char **argv)
{
    static struct pyloop p;
    int ok = argc >= 5 &&
             ((strcmp(argv[1], "recv") == 0 && argc == 5) ||
              ((strcmp(argv[1], "pub") == 0 || strcmp(argv[1], "feed") == 0) && argc == 6) ||
              (strcmp(argv[1], "echo") == 0 && argc == 6) ||
              (strcmp(argv[1], "ping") == 0 && argc == 7));
    int rc;

    if (!ok) {
        fputs("usage: shmbus-pyloop pub|feed BUS TOPIC COUNT SIZE | recv BUS TOPIC COUNT |\n"
              "       echo BUS PING PONG COUNT | ping BUS PING PONG COUNT SIZE\n",
              stderr);
        return 2;
    }
    rc = pyloop_run(&p, argv);
    pyloop_close(&p);
    return rc;
}
