/* SPDX-License-Identifier: Apache-2.0 */
/*
 * waitset: one thread waiting on several topics at once. Each topic has its
 * own subscriber; the wait set sleeps on all their futexes together
 * (futex_waitv, Linux 5.16) and says which ones have messages.
 *
 *   waitset [TOPIC...]   (default example.quotes example.trades)
 *
 * It publishes one message to each topic itself, then waits for them.
 */
#include <errno.h>
#include <shmbus/shmbus.h>
#include <stdio.h>
#include <string.h>

#define MAX_TOPICS 8

int main(int argc, char **argv)
{
    static const char *defaults[] = {"example.quotes", "example.trades"};
    const char **names = argc > 1 ? (const char **)argv + 1 : defaults;
    int n = argc > 1 ? argc - 1 : 2, got = 0, rc;
    shmbus_bus *bus = NULL;
    shmbus_topic *t[MAX_TOPICS] = {NULL};
    shmbus_sub *sub[MAX_TOPICS] = {NULL};
    shmbus_waitset *ws = NULL;

    if (n > MAX_TOPICS) {
        fprintf(stderr, "waitset: at most %d topics\n", MAX_TOPICS);
        return 2;
    }
    if ((rc = shmbus_connect(NULL, &bus)) < 0 || (rc = shmbus_waitset_create(&ws)) < 0)
        goto out;
    for (int i = 0; i < n; i++) {
        if ((rc = shmbus_open(bus, names[i], NULL, 0, &t[i])) < 0 ||
            (rc = shmbus_sub_create(t[i], NULL, &sub[i])) < 0 ||
            (rc = shmbus_waitset_add(ws, sub[i])) < 0)
            goto out;
    }
    for (int i = n - 1; i >= 0; i--) { /* some other process's job, usually */
        shmbus_pub *pub;

        if ((rc = shmbus_pub_create(t[i], &pub)) < 0)
            goto out;
        rc = shmbus_publish(pub, names[i], strlen(names[i]), 1000000000);
        shmbus_pub_destroy(pub);
        if (rc < 0)
            goto out;
    }
    while (got < n) {
        shmbus_sub *ready[MAX_TOPICS];

        /* Up to 5 s; the ready subscribers are read without waiting. */
        if ((rc = shmbus_waitset_wait(ws, ready, MAX_TOPICS, 5000000000)) < 0)
            goto out;
        for (int r = 0; r < rc; r++) {
            shmbus_msg info;
            char buf[256];
            int len;

            while ((len = shmbus_recv(ready[r], buf, sizeof(buf), &info, 0)) >= 0) {
                printf("ready: %.*s (seq %llu)\n", len, buf, (unsigned long long)info.seq);
                got++;
            }
            if (len != -EAGAIN) { /* -EAGAIN: nothing more on it for now */
                rc = len;
                goto out;
            }
        }
    }
    rc = 0;
out:
    if (rc < 0)
        fprintf(stderr, "waitset: %s\n", shmbus_strerror(rc));
    shmbus_waitset_destroy(ws);
    for (int i = 0; i < n; i++) {
        shmbus_sub_destroy(sub[i]);
        shmbus_topic_destroy(t[i]);
    }
    shmbus_close(bus);
    return rc < 0;
}
