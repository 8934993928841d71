/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pubsub: a publisher and a subscriber, through the bus's daemon (shmbusd).
 *
 *   pubsub sub TOPIC [COUNT]   print COUNT messages (default 1), then exit
 *   pubsub pub TOPIC MESSAGE   publish MESSAGE once
 *
 * The topic is opened with NULL options: it is taken as it exists (the
 * README's `shmbus sub prices` made `prices` lossy, and options that differ
 * from an existing topic's would fail with SHMBUS_ERR_MISMATCH), or made
 * with the defaults (lossy, 1024 cells of up to 1024 bytes).
 */
#include <shmbus/shmbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    int rc;

    if (argc < 3 || (strcmp(argv[1], "pub") == 0 && argc != 4) ||
        (strcmp(argv[1], "sub") == 0 && argc > 4)) {
        fprintf(stderr, "usage: pubsub sub TOPIC [COUNT] | pubsub pub TOPIC MESSAGE\n");
        return 2;
    }
    /* NULL: the bus named by $SHMBUS_BUS, else "default". */
    if ((rc = shmbus_connect(NULL, &bus)) < 0 || (rc = shmbus_open(bus, argv[2], NULL, 0, &t)) < 0)
        goto out;

    if (strcmp(argv[1], "pub") == 0) {
        shmbus_pub *pub;

        if ((rc = shmbus_pub_create(t, &pub)) < 0)
            goto out;
        /* A lossy topic never waits; a reliable one waits up to 1 s for room. */
        rc = shmbus_publish(pub, argv[3], strlen(argv[3]), 1000000000);
        shmbus_pub_destroy(pub);
    } else {
        long count = argc == 4 ? atol(argv[3]) : 1;
        shmbus_sub *sub;
        shmbus_msg info;
        char buf[1024];

        /* NULL options: start at the next message published. */
        if ((rc = shmbus_sub_create(t, NULL, &sub)) < 0)
            goto out;
        printf("subscribed to %s\n", argv[2]);
        fflush(stdout);
        for (long i = 0; i < count; i++) {
            /* Wait up to 30 s; a message longer than buf is -EMSGSIZE. */
            rc = shmbus_recv(sub, buf, sizeof(buf), &info, 30000000000);
            if (rc < 0)
                break;
            printf("seq %llu (%llu lost before it): %.*s\n", (unsigned long long)info.seq,
                   (unsigned long long)info.lost, rc, buf);
        }
        shmbus_sub_destroy(sub);
    }
out:
    if (rc < 0)
        fprintf(stderr, "pubsub: %s\n", shmbus_strerror(rc));
    shmbus_topic_destroy(t); /* both accept NULL */
    shmbus_close(bus);
    return rc < 0;
}
