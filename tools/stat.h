/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stat.h - what the two halves of `shmbus stat` share: a sample of the
 * bus (its topics with their slots and groups, the bridge, the NATS link),
 * the topic counters shown, and the helpers both views use. cmd_stat.c
 * takes the samples and shows them as text; stat_json.c shows them as
 * JSON; cmd_top.c, `shmbus top`, redraws a summary of them.
 */
#ifndef SHMBUS_TOOLS_STAT_H
#define SHMBUS_TOOLS_STAT_H

#include <stddef.h>
#include <stdint.h>

#include "shmbus/monitor.h"

/* A process's publishers on one topic: its publisher records. */
struct stat_proc {
    uint32_t pid;
    uint32_t records; /* its records in use: its publishers */
    uint32_t dead;    /* of them, left by its death and not yet reaped */
};

/* One topic in a sample. */
struct stat_topic {
    shmbus_topic_entry e;    /* as the daemon lists it */
    shmbus_topic_info info;  /* read from the segment */
    shmbus_slot_info *slots; /* busy subscriber slots, owned */
    unsigned n_slots;
    shmbus_group_info *groups; /* consumer groups in use, owned */
    unsigned n_groups;
    struct stat_proc *procs; /* processes with publisher records, owned; first seen first */
    unsigned n_procs;
    uint64_t when_ns; /* CLOCK_MONOTONIC when info was read */
};

/* Every topic of the bus at one time, in name order; and the bridge. */
struct stat_sample {
    struct stat_topic *v;
    size_t n;
    size_t cap;
    uint64_t realtime_ns;      /* when the sample was taken */
    shmbus_bus_info limits;    /* the bus's use against the daemon's limits */
    shmbus_bridge_info bridge; /* listen "": the daemon runs no bridge */
    shmbus_bridge_conn *conns; /* its connections in id order, owned */
    size_t n_conns;
    size_t conns_cap;
    shmbus_nats_info nats;  /* state OFF: the daemon does not federate */
    shmbus_nats_topic *fed; /* its federated topics in id order, owned */
    size_t n_fed;
    size_t fed_cap;
};

/*
 * The counters of shmbus_topic_info that a topic's line shows, in the
 * order shown (not the struct's): X(field, column header, column width).
 * The text's columns and the JSON's keys (the field names) come from here.
 */
#define STAT_TOPIC_COUNTERS(X)                                                                     \
    X(published, "PUBLISHED", 12)                                                                  \
    X(overruns, "OVERRUNS", 9)                                                                     \
    X(skipped, "SKIPPED", 8)                                                                       \
    X(reaped, "REAPED", 7)                                                                         \
    X(unblocked, "UNBLOCKED", 9)                                                                   \
    X(evicted, "EVICTED", 7)                                                                       \
    X(abandoned, "ABANDONED", 9)

/* Take a sample of the bus: its limits, the topics whose names match
 * @p pattern (NULL: all) with their slots, groups and publishers, the
 * bridge and the NATS link. @return 0 or an error code (reported). */
int cli_stat_sample_take(shmbus_bus *b, const char *pattern, struct stat_sample *s);

/* Free what a sample owns and empty it. */
void cli_stat_sample_free(struct stat_sample *s);

/* The names of enum shmbus_nats_state, by value. */
extern const char *const cli_stat_nats_states[];

/* Messages per second of @p t since @p prev; negative when unknown (new
 * topic, or one that was removed and created again). */
double cli_stat_rate(const struct stat_topic *t, const struct stat_sample *prev);

/* Print the bus's use against the daemon's limits, one line: shm in MiB
 * (and its share of --max-shm), topics and clients. */
void cli_stat_limits_show(const shmbus_bus_info *l);

/* "json", "resp", or NULL when not known yet. */
const char *cli_stat_conn_proto(const shmbus_bridge_conn *c);

/* Print @p cur as one JSON object on one line, rates against @p prev. */
void cli_stat_json_show(const char *bus, const struct stat_sample *cur,
                        const struct stat_sample *prev);

#endif
