/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One stress scenario, run with threads or with processes: P publishers,
 * S plain subscribers and G members of group 1 on one topic.
 */
#ifndef SHMBUS_STRESS_RUN_H
#define SHMBUS_STRESS_RUN_H

#include "stress/stress_common.h"

#define ST_MAX_SUBS 8

struct st_scenario {
    uint32_t mode;
    uint32_t flags; /* topic flags: SHMBUS_TOPIC_EXCLUSIVE wants one publisher */
    uint32_t capacity;
    int publishers, per_publisher, subscribers, members;
    int64_t spin_ns;
    int batch; /* st_config's */
};

/* Starts fn(arg) concurrently; returns a token for an st_join_fn. */
typedef long (*st_start_fn)(int (*fn)(void *), void *arg);
typedef int (*st_join_fn)(long token);

static inline void st_run(const struct st_scenario *sc, st_start_fn start, st_join_fn join,
                          int share_mapping)
{
    struct st_config cfg = {.mode = sc->mode,
                            .capacity = sc->capacity,
                            .publishers = sc->publishers,
                            .per_publisher = sc->per_publisher,
                            .spin_ns = sc->spin_ns,
                            .batch = sc->batch};
    shmbus_topic_opts o = {.mode = sc->mode,
                           .capacity = sc->capacity,
                           .max_msg_size = ST_MAX_LEN,
                           .max_subscribers = 16,
                           .max_groups = 2,
                           .flags = sc->flags};
    struct st_control *ctl = st_control_new();
    struct st_worker subs[ST_MAX_SUBS];
    struct st_worker pubs[ST_MAX_PUB];
    long tokens[ST_MAX_SUBS + ST_MAX_PUB];
    int nsubs = sc->subscribers + sc->members, nt = 0;
    shmbus_topic *t;
    shmbus_topic_info ti;

    assert_true(nsubs <= ST_MAX_SUBS && sc->publishers <= ST_MAX_PUB);
    assert_true(sc->per_publisher <= ST_MAX_MSG);
    snprintf(cfg.name, sizeof(cfg.name), "%s", tu_name("stress"));
    assert_shmbus_ok(shmbus_topic_create(cfg.name, &o, &t));
    cfg.shared = share_mapping ? t : NULL;
    ctl->subs_total = nsubs;
    for (int i = 0; i < nsubs; i++) {
        subs[i] = (struct st_worker){
            .cfg = &cfg, .ctl = ctl, .id = i, .group = i >= sc->subscribers ? 1 : 0};
        tokens[nt++] = start(st_subscriber, &subs[i]);
    }
    for (int i = 0; i < sc->publishers; i++) {
        pubs[i] = (struct st_worker){.cfg = &cfg, .ctl = ctl, .id = i};
        tokens[nt++] = start(st_publisher, &pubs[i]);
    }
    for (int i = 0; i < nt; i++)
        if (join(tokens[i]) != 0 && atomic_load(&ctl->failures) == 0)
            st_fail(ctl, "worker exited with failure", (uint64_t)i, 0);
    if (atomic_load(&ctl->failures))
        fail_msg("%s", ctl->why);
    assert_shmbus_ok(shmbus_topic_info_get(t, &ti));
    if (sc->members > 0)
        st_check_group(&cfg, ctl, ti.published);
    if (sc->mode == SHMBUS_RELIABLE)
        assert_int_equal(ti.published, (uint64_t)sc->publishers * (uint64_t)sc->per_publisher);
    shmbus_topic_destroy(t);
    shmbus_topic_unlink(cfg.name);
    munmap(ctl, sizeof(*ctl));
}

#endif
