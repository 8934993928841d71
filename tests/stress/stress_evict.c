/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Eviction under load, with threads so that ThreadSanitizer sees every
 * access: publishers fill a small reliable ring while plain subscribers
 * and group members read it, and an "evictor" thread plays the daemon's
 * stall scan, evicting random slots and reconciling groups
 * (registry/admin.h). Evicted readers are told, destroy and join again.
 * Checks: every message a poll delivers is intact unless the poll then
 * says the reader was evicted (what it read in place may have been
 * overwritten), every publish finishes, and a group's member
 * count is never driven below zero by a leave racing an eviction: once
 * everyone left it is exactly zero.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "registry/admin.h"
#include "shm/layout.h"

#define EV_CAP     8
#define EV_MSG     48
#define EV_PUBS    2
#define EV_PER_PUB 20000
#define EV_READERS 4 /* even: plain subscribers; odd: members of group 1 */
#define EV_WAIT_NS 10000000000ll
#define EV_STAY    4 /* messages a reader takes before it leaves */

struct ev {
    shmbus_topic *t;
    _Atomic int done;     /* publishers finished */
    _Atomic int failures; /* torn messages, failed publishes, bad counts */
    _Atomic uint64_t evictions, received;
};

struct ev_pub {
    struct ev *ev;
    uint32_t id;
};

static void *ev_publisher(void *arg)
{
    struct ev_pub *p = arg;
    uint8_t buf[EV_MSG];
    shmbus_pub *pub;

    if (shmbus_pub_create(p->ev->t, &pub) < 0) {
        atomic_fetch_add(&p->ev->failures, 1);
        return NULL;
    }
    for (uint64_t i = 0; i < EV_PER_PUB; i++) {
        uint32_t len = tu_fill(buf, p->id, i, 16 + (uint32_t)(i % (EV_MSG - 16)));

        if (shmbus_publish(pub, buf, len, EV_WAIT_NS) < 0) {
            atomic_fetch_add(&p->ev->failures, 1);
            break;
        }
    }
    shmbus_pub_destroy(pub);
    return NULL;
}

struct ev_msg {
    uint8_t buf[EV_MSG];
    uint32_t len;
};

/* Copy a delivered message out of the ring. A reader evicted meanwhile
 * races here with a publisher that may overwrite the cell: by design, the
 * poll then fails and the copy is dropped (tests/tsan.supp names this
 * function, and only this one, for it). */
static int ev_copy_evictable(const shmbus_msg *m, void *arg)
{
    struct ev_msg *out = arg;

    out->len = m->len <= EV_MSG ? m->len : 0;
    memcpy(out->buf, m->data, out->len);
    return 1;
}

/* Read until evicted, the publishers are done, or (to leave often, racing
 * evictions) a few messages are in; @return 1 if evicted. */
static int ev_read(struct ev *ev, shmbus_sub *sub)
{
    shmbus_waitset *ws;
    struct tu_payload pl;
    struct ev_msg m;

    if (shmbus_waitset_create(&ws) < 0 || shmbus_waitset_add(ws, sub) < 0) {
        atomic_fetch_add(&ev->failures, 1);
        shmbus_waitset_destroy(ws);
        return 0;
    }
    for (int n = 0; n < EV_STAY && !atomic_load(&ev->done);) {
        int rc = shmbus_poll(sub, ev_copy_evictable, &m, 1);

        if (rc == SHMBUS_ERR_EVICTED) {
            shmbus_waitset_destroy(ws);
            return 1;
        }
        if (rc == 0) {
            shmbus_waitset_wait(ws, &sub, 1, 1000000);
            continue;
        }
        if (rc < 0 || !tu_check(m.buf, m.len, &pl)) {
            fprintf(stderr, "reader: poll %d (%s), or a damaged message\n", rc,
                    shmbus_strerror(rc));
            atomic_fetch_add(&ev->failures, 1);
        }
        atomic_fetch_add(&ev->received, 1);
        n++;
    }
    shmbus_waitset_destroy(ws);
    return 0;
}

struct ev_reader {
    struct ev *ev;
    uint32_t group;
};

static void *ev_reader(void *arg)
{
    struct ev_reader *r = arg;
    shmbus_sub_opts so = {.group = r->group, .spin_ns = r->group ? -1 : 0};

    while (!atomic_load(&r->ev->done)) {
        shmbus_sub *sub;

        if (shmbus_sub_create(r->ev->t, &so, &sub) < 0) {
            sched_yield(); /* every slot taken for a moment */
            continue;
        }
        atomic_fetch_add(&r->ev->evictions, (uint64_t)ev_read(r->ev, sub));
        shmbus_sub_destroy(sub);
    }
    return NULL;
}

/* The daemon's part: evict a slot now and then, reconcile groups. */
static void *ev_evictor(void *arg)
{
    struct ev *ev = arg;
    shmbus_topic_info info;
    unsigned seed = 7;

    shmbus_topic_info_get(ev->t, &info);
    while (!atomic_load(&ev->done)) {
        sb_admin_slot_evict(ev->t, (uint32_t)rand_r(&seed) % info.max_subscribers);
        sb_admin_groups_reconcile(ev->t);
        sched_yield();
    }
    return NULL;
}

/* The cursor word of group 1, read from the segment. */
static uint64_t ev_word(const char *name)
{
    size_t len;
    uint8_t *base = tu_raw_map(name, &len);
    const struct sb_shm_header *h = (const struct sb_shm_header *)base;
    const struct sb_shm_group *g = (const struct sb_shm_group *)(base + h->groups_off);
    uint64_t w = atomic_load(&g->cursor);

    munmap(base, len);
    return w;
}

static void test_stress_evict_readers_under_load(void **state)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE,
                           .capacity = EV_CAP,
                           .max_msg_size = EV_MSG,
                           .max_subscribers = 8,
                           .max_groups = 1};
    const char *name = tu_name("evict");
    struct ev ev = {0};
    struct ev_pub pubs[EV_PUBS];
    struct ev_reader readers[EV_READERS];
    pthread_t pth[EV_PUBS], rth[EV_READERS], eth;
    shmbus_topic_info info;
    uint64_t w;

    (void)state;
    assert_shmbus_ok(shmbus_topic_create(name, &o, &ev.t));
    for (uint32_t i = 0; i < EV_READERS; i++) {
        readers[i] = (struct ev_reader){.ev = &ev, .group = i % 2};
        assert_int_equal(pthread_create(&rth[i], NULL, ev_reader, &readers[i]), 0);
    }
    assert_int_equal(pthread_create(&eth, NULL, ev_evictor, &ev), 0);
    for (uint32_t i = 0; i < EV_PUBS; i++) {
        pubs[i] = (struct ev_pub){.ev = &ev, .id = i + 1};
        assert_int_equal(pthread_create(&pth[i], NULL, ev_publisher, &pubs[i]), 0);
    }
    for (uint32_t i = 0; i < EV_PUBS; i++)
        pthread_join(pth[i], NULL);
    atomic_store(&ev.done, 1);
    for (uint32_t i = 0; i < EV_READERS; i++)
        pthread_join(rth[i], NULL);
    pthread_join(eth, NULL);
    shmbus_topic_info_get(ev.t, &info);
    /* Everyone left or was evicted: at most the evicted members the last
     * reconcile did not see are still counted, and no leave borrowed from
     * the cursor's seq; a reconcile then finds no member. */
    w = ev_word(name);
    assert_true((w & SB_GRP_MEMBERS) <= EV_READERS / 2);
    assert_true(SB_GRP_SEQ(w) <= info.published);
    sb_admin_groups_reconcile(ev.t);
    print_message("%llu received, %llu evictions seen, %llu evicted, %llu abandoned\n",
                  (unsigned long long)atomic_load(&ev.received),
                  (unsigned long long)atomic_load(&ev.evictions), (unsigned long long)info.evicted,
                  (unsigned long long)info.abandoned);
    assert_int_equal(atomic_load(&ev.failures), 0);
    assert_true(info.evicted > 0);
    assert_int_equal(ev_word(name) & SB_GRP_MEMBERS, 0);
    shmbus_topic_destroy(ev.t);
    tu_release(name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_evict_readers_under_load),
    };

    tu_init();
    return cmocka_run_group_tests_name("stress_evict", tests, NULL, NULL);
}
