/* SPDX-License-Identifier: Apache-2.0 */
/*
 * submulti.h - `shmbus sub` on several topics at once and on a pattern:
 * one subscriber per topic, all in one wait set, each message printed with
 * the topic it came from. A pattern is matched against the daemon's list
 * of topics at start and again every second, so that topics created later
 * join. cmd_sub.c parses the command line and calls it.
 */
#ifndef SHMBUS_TOOLS_SUBMULTI_H
#define SHMBUS_TOOLS_SUBMULTI_H

#include <stdint.h>

#include "latency.h"
#include "msgout.h"
#include "shmbus/shmbus.h"

/* How often a pattern is matched against the list of topics again. */
#define CLI_SUB_RESCAN_NS (1000ll * 1000000ll)

/* What to subscribe to and how. */
struct cli_sub_multi {
    const char *bus; /* --bus, or NULL */
    char **topics;   /* named topics (created if absent), borrowed */
    int n_topics;
    const char *pattern;                 /* a Redis glob (util/glob.h), or NULL */
    const shmbus_topic_opts *topic_opts; /* for creating the named topics */
    const shmbus_sub_opts *opts;         /* for every subscriber */
    uint64_t count;                      /* stop after this many messages (0: never) */
    struct cli_msgout out;               /* its topic is set per message */
    struct cli_latency *lat;             /* --latency: the summary's samples, or NULL */
};

/*
 * Subscribe and print until SIGINT or SIGTERM, the count, or an error on a
 * named topic (one a pattern found and that goes away is dropped, with a
 * word on stderr; an evicted one is not taken again). At most SHMBUS_WAITSET_MAX topics: the
 * pattern's others are reported once and skipped.
 * @return an exit status (reported).
 */
int cli_sub_multi_run(const struct cli_sub_multi *m);

#endif /* SHMBUS_TOOLS_SUBMULTI_H */
