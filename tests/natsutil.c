/* SPDX-License-Identifier: Apache-2.0 */
/*
 * natsutil: a raw NATS client (cnats) for the federation tests, which must
 * see and make what travels on the wire without a shmbusd in between.
 *
 *   natsutil pub URL SUBJECT PAYLOAD [KEY=VALUE...]
 *     publishes one message; each KEY=VALUE becomes a header (added, so a
 *     key given twice has two values); with none, the message has no
 *     header block at all. Flushes before it exits.
 *   natsutil sub URL SUBJECT COUNT TIMEOUT_MS [READY_FILE]
 *     subscribes (READY_FILE is created once the server has the
 *     subscription) and prints one line per message:
 *       SUBJECT KEY=VALUE... data=PAYLOAD
 *     (bytes outside '!'..'~' and '\' as \xNN) until COUNT messages came,
 *     or TIMEOUT_MS passed.
 *
 * Exit status: 0 done; 1 a NATS call failed (said on stderr); 2 bad usage;
 * 3 sub: the timeout passed before COUNT messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

enum { NU_OK = 0, NU_FAIL = 1, NU_USAGE = 2, NU_TIMEOUT = 3 };

static int nu_usage(const char *why)
{
    fprintf(stderr,
            "natsutil: %s\n"
            "usage: natsutil pub URL SUBJECT PAYLOAD [KEY=VALUE...]\n"
            "       natsutil sub URL SUBJECT COUNT TIMEOUT_MS [READY_FILE]\n",
            why);
    return NU_USAGE;
}

/* Say which call failed and why. @return NU_FAIL. */
static int nu_failed(const char *what, natsStatus s)
{
    fprintf(stderr, "natsutil: %s: %s (%s)\n", what, natsStatus_GetText(s),
            nats_GetLastError(NULL));
    return NU_FAIL;
}

/* Print bytes as the header comment says. */
static void nu_text(const char *p, int len)
{
    int i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c > ' ' && c <= '~' && c != '\\')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
}

/* One message with its headers (KEY=VALUE arguments). */
static int nu_pub(natsConnection *nc, int argc, char **argv)
{
    natsMsg *m = NULL;
    natsStatus s;
    int i;

    s = natsMsg_Create(&m, argv[0], NULL, argv[1], (int)strlen(argv[1]));
    if (s != NATS_OK)
        return nu_failed("create the message", s);
    for (i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');

        if (!eq || eq == argv[i]) {
            natsMsg_Destroy(m);
            return nu_usage("a header is KEY=VALUE");
        }
        *eq = '\0';
        s = natsMsgHeader_Add(m, argv[i], eq + 1);
        if (s != NATS_OK) {
            natsMsg_Destroy(m);
            return nu_failed("add a header", s);
        }
    }
    s = natsConnection_PublishMsg(nc, m);
    natsMsg_Destroy(m);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(nc, 5000);
    return s == NATS_OK ? NU_OK : nu_failed("publish", s);
}

/* One line for a received message (format in the header comment). */
static void nu_print(natsMsg *m)
{
    const char **keys = NULL, **vals;
    int nkeys = 0, nvals, i, j;

    fputs(natsMsg_GetSubject(m), stdout);
    if (natsMsgHeader_Keys(m, &keys, &nkeys) != NATS_OK)
        nkeys = 0;
    for (i = 0; i < nkeys; i++) {
        if (natsMsgHeader_Values(m, keys[i], &vals, &nvals) != NATS_OK)
            continue;
        for (j = 0; j < nvals; j++) {
            putchar(' ');
            nu_text(keys[i], (int)strlen(keys[i]));
            putchar('=');
            nu_text(vals[j], (int)strlen(vals[j]));
        }
        free((void *)vals);
    }
    free((void *)keys);
    fputs(" data=", stdout);
    nu_text(natsMsg_GetData(m), natsMsg_GetDataLength(m));
    putchar('\n');
    fflush(stdout);
}

static int64_t nu_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Receive COUNT messages within TIMEOUT_MS. */
static int nu_sub(natsConnection *nc, int argc, char **argv)
{
    long count = strtol(argv[1], NULL, 10), got = 0;
    int64_t end = nu_now_ms() + strtol(argv[2], NULL, 10);
    natsSubscription *sub = NULL;
    natsMsg *m;
    natsStatus s;
    int fd;

    if (count <= 0 || end <= nu_now_ms())
        return nu_usage("COUNT and TIMEOUT_MS are positive numbers");
    s = natsConnection_SubscribeSync(&sub, nc, argv[0]);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(nc, 5000);
    if (s != NATS_OK) {
        natsSubscription_Destroy(sub);
        return nu_failed("subscribe", s);
    }
    if (argc > 3) {
        fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        else
            fprintf(stderr, "natsutil: create %s: %s\n", argv[3], strerror(errno));
    }
    while (got < count && nu_now_ms() < end) {
        s = natsSubscription_NextMsg(&m, sub, end - nu_now_ms());
        if (s == NATS_TIMEOUT)
            break;
        if (s != NATS_OK) {
            natsSubscription_Destroy(sub);
            return nu_failed("receive", s);
        }
        nu_print(m);
        natsMsg_Destroy(m);
        got++;
    }
    natsSubscription_Destroy(sub);
    if (got < count) {
        fprintf(stderr, "natsutil: %ld of %ld messages before the timeout\n", got, count);
        return NU_TIMEOUT;
    }
    return NU_OK;
}

int main(int argc, char **argv)
{
    natsConnection *nc = NULL;
    natsStatus s;
    int rc;

    if (argc < 5)
        return nu_usage("too few arguments");
    if (strcmp(argv[1], "pub") != 0 && (strcmp(argv[1], "sub") != 0 || argc > 7))
        return nu_usage("the command is pub or sub");
    s = natsConnection_ConnectTo(&nc, argv[2]);
    if (s != NATS_OK)
        return nu_failed("connect", s);
    if (strcmp(argv[1], "pub") == 0)
        rc = nu_pub(nc, argc - 3, argv + 3);
    else
        rc = nu_sub(nc, argc - 3, argv + 3);
    natsConnection_Destroy(nc);
    nats_Close();
    return rc;
}
