/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fedcheck: the federation tests' client of a bus (tests/test_fed_*.sh).
 *
 *   fedcheck sub --bus B --topic T [--count N] [--timeout-ms MS]
 *                [--linger-ms MS] [--ready FILE] [TOPIC OPTS]
 *     subscribes (creating the topic if needed; --ready FILE is created once
 *     the subscriber exists) and prints one line per message:
 *       SEQ FLAGS ORIGIN_SEQ PID TIMESTAMP_NS LOST PAYLOAD
 *     (decimal; PAYLOAD as text, bytes outside '!'..'~' and '\' as \xNN),
 *     until N messages came (then, with --linger-ms, it keeps reading that
 *     long, printing any more, so a test sees duplicates and echoes) or the
 *     timeout (default 20000 ms) passed.
 *   fedcheck pub --bus B --topic T --count N [--start K] [--tag TAG]
 *                [--size BYTES] [--interval-us US] [--timeout-ms MS] [TOPIC OPTS]
 *     publishes N messages TAG-K .. TAG-(K+N-1) (TAG default "m", K default
 *     1), each padded with '.' to --size bytes if given, --interval-us
 *     apart; a reliable topic waits up to --timeout-ms (default 30000) for
 *     space for each.
 *   TOPIC OPTS, for creating the topic: --reliable, --capacity N, --max-msg N.
 *
 * Exit status: 0 done (sub: N messages came); 1 an operation failed (said on
 * stderr); 2 bad usage; 3 sub: the timeout passed before N messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shmbus/shmbus.h"

enum { FC_OK = 0, FC_FAIL = 1, FC_USAGE = 2, FC_TIMEOUT = 3 };

/* Longest wait in one shmbus_recv(), so that deadlines are looked at. */
#define FC_SLICE_NS    (100ll * 1000000ll)
#define FC_PAYLOAD_MAX (16u << 20)

struct fc_args {
    const char *bus;
    const char *topic;
    shmbus_topic_opts topic_opts;
    uint64_t count;
    uint64_t start;
    const char *tag;
    uint32_t size;
    int64_t interval_us;
    int64_t timeout_ms;
    int64_t linger_ms;
    const char *ready;
};

static int64_t fc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fc_usage(const char *why)
{
    fprintf(stderr,
            "fedcheck: %s\n"
            "usage: fedcheck sub --bus B --topic T [--count N] [--timeout-ms MS]\n"
            "                    [--linger-ms MS] [--ready FILE] [TOPIC OPTS]\n"
            "       fedcheck pub --bus B --topic T --count N [--start K] [--tag TAG]\n"
            "                    [--size BYTES] [--interval-us US] [--timeout-ms MS] [TOPIC OPTS]\n"
            "TOPIC OPTS: --reliable, --capacity N, --max-msg N\n",
            why);
    return FC_USAGE;
}

/* A decimal number in [0, max] from @p s; -1 if it is not one. */
static int fc_number(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

enum {
    OPT_BUS = 256,
    OPT_TOPIC,
    OPT_COUNT,
    OPT_START,
    OPT_TAG,
    OPT_SIZE,
    OPT_INTERVAL,
    OPT_TIMEOUT,
    OPT_LINGER,
    OPT_READY,
    OPT_RELIABLE,
    OPT_CAPACITY,
    OPT_MAXMSG
};

static const struct option fc_opts[] = {{"bus", required_argument, NULL, OPT_BUS},
                                        {"topic", required_argument, NULL, OPT_TOPIC},
                                        {"count", required_argument, NULL, OPT_COUNT},
                                        {"start", required_argument, NULL, OPT_START},
                                        {"tag", required_argument, NULL, OPT_TAG},
                                        {"size", required_argument, NULL, OPT_SIZE},
                                        {"interval-us", required_argument, NULL, OPT_INTERVAL},
                                        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
                                        {"linger-ms", required_argument, NULL, OPT_LINGER},
                                        {"ready", required_argument, NULL, OPT_READY},
                                        {"reliable", no_argument, NULL, OPT_RELIABLE},
                                        {"capacity", required_argument, NULL, OPT_CAPACITY},
                                        {"max-msg", required_argument, NULL, OPT_MAXMSG},
                                        {NULL, 0, NULL, 0}};

/* A numeric option into @p out (at most @p max). @return 0 or -1 (bad). */
static int fc_numeric_option(int opt, const char *arg, struct fc_args *a)
{
    uint64_t v;

    if (fc_number(arg, opt == OPT_START || opt == OPT_COUNT ? UINT64_MAX / 2 : INT32_MAX, &v))
        return -1;
    switch (opt) {
    case OPT_COUNT:
        a->count = v;
        break;
    case OPT_START:
        a->start = v;
        break;
    case OPT_SIZE:
        a->size = (uint32_t)v;
        break;
    case OPT_INTERVAL:
        a->interval_us = (int64_t)v;
        break;
    case OPT_TIMEOUT:
        a->timeout_ms = (int64_t)v;
        break;
    case OPT_LINGER:
        a->linger_ms = (int64_t)v;
        break;
    case OPT_CAPACITY:
        a->topic_opts.capacity = (uint32_t)v;
        break;
    default:
        a->topic_opts.max_msg_size = (uint32_t)v;
        break;
    }
    return 0;
}

/* One option. @return 0, or FC_USAGE (said why). */
static int fc_option(int opt, const char *arg, struct fc_args *a)
{
    switch (opt) {
    case OPT_BUS:
        a->bus = arg;
        return 0;
    case OPT_TOPIC:
        a->topic = arg;
        return 0;
    case OPT_TAG:
        a->tag = arg;
        return 0;
    case OPT_READY:
        a->ready = arg;
        return 0;
    case OPT_RELIABLE:
        a->topic_opts.mode = SHMBUS_RELIABLE;
        return 0;
    case OPT_COUNT:
    case OPT_START:
    case OPT_SIZE:
    case OPT_INTERVAL:
    case OPT_TIMEOUT:
    case OPT_LINGER:
    case OPT_CAPACITY:
    case OPT_MAXMSG:
        if (fc_numeric_option(opt, arg, a))
            return fc_usage("an option takes a decimal number within its range");
        return 0;
    default:
        return fc_usage("unknown option");
    }
}

static int fc_parse(int argc, char **argv, struct fc_args *a)
{
    int opt, rc;

    *a = (struct fc_args){.tag = "m", .start = 1, .timeout_ms = -1};
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", fc_opts, NULL)) != -1) {
        if (opt == '?')
            return fc_usage("unknown option or missing argument");
        rc = fc_option(opt, optarg, a);
        if (rc)
            return rc;
    }
    if (optind != argc)
        return fc_usage("unexpected argument");
    if (!a->bus || !a->topic)
        return fc_usage("--bus and --topic are required");
    return 0;
}

/* Open the topic on the bus. @return 0, or FC_FAIL (said why). */
static int fc_open(const struct fc_args *a, shmbus_bus **bus, shmbus_topic **topic)
{
    int rc = shmbus_connect(a->bus, bus);

    if (rc < 0) {
        fprintf(stderr, "fedcheck: connect to bus %s: %s\n", a->bus, shmbus_strerror(rc));
        return FC_FAIL;
    }
    rc = shmbus_open(*bus, a->topic, &a->topic_opts, 0, topic);
    if (rc < 0) {
        fprintf(stderr, "fedcheck: open %s on %s: %s\n", a->topic, a->bus, shmbus_strerror(rc));
        shmbus_close(*bus);
        return FC_FAIL;
    }
    return 0;
}

/* One line for a message (format in the header comment). */
static void fc_print(const shmbus_msg *m)
{
    const unsigned char *p = m->data;
    uint32_t i;

    printf("%" PRIu64 " %" PRIu32 " %" PRIu64 " %" PRIu32 " %" PRIu64 " %" PRIu64 " ", m->seq,
           m->flags, m->origin_seq, m->publisher_pid, m->timestamp_ns, m->lost);
    for (i = 0; i < m->len; i++) {
        if (p[i] > ' ' && p[i] <= '~' && p[i] != '\\')
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    }
    putchar('\n');
}

/* Create the --ready file. @return 0, or FC_FAIL (said why). */
static int fc_ready(const char *path)
{
    int fd;

    if (!path)
        return 0;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "fedcheck: create %s: %s\n", path, strerror(errno));
        return FC_FAIL;
    }
    close(fd);
    return 0;
}

/* Read until the count, the linger after it, or the deadline. */
static int fc_read(const struct fc_args *a, shmbus_sub *sub, char *buf, size_t cap)
{
    int64_t end = fc_now_ms() + (a->timeout_ms < 0 ? 20000 : a->timeout_ms);
    uint64_t got = 0;
    shmbus_msg m;
    int rc;

    for (;;) {
        /* Count reached: linger (if asked) from then on, not from the start. */
        if (a->count && got == a->count) {
            end = fc_now_ms() + a->linger_ms;
            got++; /* lingering: later messages are printed, never counted */
        }
        if (fc_now_ms() >= end)
            break;
        rc = shmbus_recv(sub, buf, cap, &m, FC_SLICE_NS);
        if (rc == SHMBUS_ERR_TIMEOUT || rc == -EINTR)
            continue;
        if (rc < 0) {
            fprintf(stderr, "fedcheck: receive on %s: %s\n", a->topic, shmbus_strerror(rc));
            return FC_FAIL;
        }
        fc_print(&m);
        fflush(stdout);
        if (!a->count || got < a->count)
            got++;
    }
    if (a->count && got <= a->count) {
        fprintf(stderr, "fedcheck: %" PRIu64 " of %" PRIu64 " messages on %s before the timeout\n",
                got, a->count, a->topic);
        return FC_TIMEOUT;
    }
    return FC_OK;
}

static int fc_sub(const struct fc_args *a)
{
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT};
    shmbus_topic_info info;
    shmbus_bus *bus;
    shmbus_topic *topic;
    shmbus_sub *sub = NULL;
    char *buf = NULL;
    int rc = fc_open(a, &bus, &topic);

    if (rc)
        return rc;
    shmbus_topic_info_get(topic, &info);
    rc = shmbus_sub_create(topic, &so, &sub);
    if (rc < 0) {
        fprintf(stderr, "fedcheck: subscribe to %s: %s\n", a->topic, shmbus_strerror(rc));
        rc = FC_FAIL;
        goto out;
    }
    buf = malloc(info.max_msg_size ? info.max_msg_size : 1);
    if (!buf) {
        fprintf(stderr, "fedcheck: no memory for %" PRIu32 " bytes\n", info.max_msg_size);
        rc = FC_FAIL;
        goto out;
    }
    rc = fc_ready(a->ready);
    if (!rc)
        rc = fc_read(a, sub, buf, info.max_msg_size);
out:
    free(buf);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(topic);
    shmbus_close(bus);
    return rc;
}

/* Publish one numbered message. @return 0, or FC_FAIL (said why). */
static int fc_pub_one(const struct fc_args *a, shmbus_pub *pub, char *buf, uint64_t n)
{
    int len = snprintf(buf, FC_PAYLOAD_MAX, "%s-%" PRIu64, a->tag, n);
    int64_t timeout_ns = (a->timeout_ms < 0 ? 30000 : a->timeout_ms) * 1000000ll;
    size_t size = (size_t)len;
    int rc;

    if (a->size > size) {
        memset(buf + size, '.', a->size - size);
        size = a->size;
    }
    rc = shmbus_publish(pub, buf, size, timeout_ns);
    if (rc < 0) {
        fprintf(stderr, "fedcheck: publish %s-%" PRIu64 " on %s: %s\n", a->tag, n, a->topic,
                shmbus_strerror(rc));
        return FC_FAIL;
    }
    return 0;
}

static int fc_pub(const struct fc_args *a)
{
    struct timespec gap = {a->interval_us / 1000000, (a->interval_us % 1000000) * 1000};
    shmbus_bus *bus;
    shmbus_topic *topic;
    shmbus_pub *pub = NULL;
    char *buf = NULL;
    uint64_t i;
    int rc;

    if (!a->count)
        return fc_usage("pub needs --count");
    if (a->size > FC_PAYLOAD_MAX)
        return fc_usage("--size is at most 16 MiB");
    rc = fc_open(a, &bus, &topic);
    if (rc)
        return rc;
    rc = shmbus_pub_create(topic, &pub);
    if (rc < 0) {
        fprintf(stderr, "fedcheck: publisher on %s: %s\n", a->topic, shmbus_strerror(rc));
        rc = FC_FAIL;
        goto out;
    }
    buf = malloc(FC_PAYLOAD_MAX);
    rc = buf ? 0 : FC_FAIL;
    if (rc)
        fprintf(stderr, "fedcheck: no memory for the payload buffer\n");
    for (i = 0; !rc && i < a->count; i++) {
        rc = fc_pub_one(a, pub, buf, a->start + i);
        if (!rc && a->interval_us)
            nanosleep(&gap, NULL);
    }
out:
    free(buf);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(topic);
    shmbus_close(bus);
    return rc;
}

int main(int argc, char **argv)
{
    struct fc_args a;
    int rc;

    if (argc < 2)
        return fc_usage("no command");
    rc = fc_parse(argc - 1, argv + 1, &a);
    if (rc)
        return rc;
    if (strcmp(argv[1], "sub") == 0)
        return fc_sub(&a);
    if (strcmp(argv[1], "pub") == 0)
        return fc_pub(&a);
    return fc_usage("the command is sub or pub");
}
