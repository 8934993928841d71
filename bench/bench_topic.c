/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topics of a run. The parent creates every segment under a name unique to
 * its pid and keeps it in a bench_topics table, whose cleanup unmaps and
 * unlinks them on every path. Each child attaches by name with its own
 * mapping (bench_ep), as separate programs would, and creates its publisher
 * and subscriber there; or, through a daemon, opens the topic by name
 * (the daemon creates it and unlinks it when it stops).
 */
#include <string.h>
#include <unistd.h>

#include "bench.h"

int bench_topics_add(struct bench_topics *t, const char *suffix, const shmbus_topic_opts *opts)
{
    char *name;
    int n, rc;

    /* The table is sized for the commands; more is a caller bug. */
    if (t->n == BENCH_TOPICS_MAX) {
        fprintf(stderr, "shmbus-bench: more than %u topics\n", BENCH_TOPICS_MAX);
        return -1;
    }
    name = t->name[t->n];
    n = snprintf(name, sizeof(t->name[0]), "shmbus-bench.%ld.%s", (long)getpid(), suffix);
    /* A name that does not fit would be cut and could collide. */
    if (n < 0 || (size_t)n >= sizeof(t->name[0])) {
        fprintf(stderr, "shmbus-bench: topic name too long for suffix '%s'\n", suffix);
        return -1;
    }
    rc = shmbus_topic_create(name, opts, &t->topic[t->n]);
    if (rc < 0) {
        fprintf(stderr, "shmbus-bench: creating topic %s\n", name);
        return bench_fail("shmbus_topic_create", rc);
    }
    t->n++;
    return 0;
}

void bench_topics_cleanup(struct bench_topics *t)
{
    for (unsigned i = 0; i < t->n; i++) {
        int rc;

        shmbus_topic_destroy(t->topic[i]);
        t->topic[i] = NULL;
        rc = shmbus_topic_unlink(t->name[i]);
        if (rc < 0) {
            fprintf(stderr, "shmbus-bench: unlinking topic %s\n", t->name[i]);
            bench_fail("shmbus_topic_unlink", rc);
        }
    }
    t->n = 0;
}

/* The common part of both opens: @p ep->topic is mapped; add the
 * subscriber and the publisher. On failure @p ep is closed. */
static int ep_finish(struct bench_ep *ep, const char *name, int want_pub,
                     const shmbus_sub_opts *sub_opts)
{
    int rc;

    if (sub_opts != NULL && (rc = shmbus_sub_create(ep->topic, sub_opts, &ep->sub)) < 0) {
        bench_fail("shmbus_sub_create", rc);
        goto err;
    }
    if (want_pub && (rc = shmbus_pub_create(ep->topic, &ep->pub)) < 0) {
        bench_fail("shmbus_pub_create", rc);
        goto err;
    }
    return 0;
err:
    fprintf(stderr, "shmbus-bench: opening topic %s failed\n", name);
    bench_ep_close(ep);
    return -1;
}

int bench_ep_open(struct bench_ep *ep, const char *name, int want_pub,
                  const shmbus_sub_opts *sub_opts)
{
    int rc;

    memset(ep, 0, sizeof(*ep));
    rc = shmbus_topic_attach(name, &ep->topic);
    if (rc < 0) {
        bench_fail("shmbus_topic_attach", rc);
        fprintf(stderr, "shmbus-bench: opening topic %s failed\n", name);
        return -1;
    }
    return ep_finish(ep, name, want_pub, sub_opts);
}

int bench_ep_open_bus(struct bench_ep *ep, shmbus_bus *bus, const char *name,
                      const shmbus_topic_opts *opts, int want_pub, const shmbus_sub_opts *sub_opts)
{
    int rc;

    memset(ep, 0, sizeof(*ep));
    rc = shmbus_open(bus, name, opts, 0, &ep->topic);
    if (rc < 0) {
        bench_fail("shmbus_open", rc);
        fprintf(stderr, "shmbus-bench: opening topic %s through shmbusd failed\n", name);
        return -1;
    }
    return ep_finish(ep, name, want_pub, sub_opts);
}

void bench_ep_close(struct bench_ep *ep)
{
    shmbus_sub_destroy(ep->sub);
    shmbus_pub_destroy(ep->pub);
    shmbus_topic_destroy(ep->topic);
    memset(ep, 0, sizeof(*ep));
}
