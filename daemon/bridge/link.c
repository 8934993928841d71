/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's subscriptions and their links to topics (link.h),
 * made in bounded slices of work. Every subscription is matched, in order,
 * against the topics the bridge has seen (b->all, in the order of their
 * ids): s->upto says how far it got. A new pattern starts at 0 and its
 * connection waits for its reply (it reads nothing more) until it has been
 * matched against every topic that existed when it was made; a new topic
 * puts every subscription behind by one. Either way the I/O thread does at
 * most SBB_LINK_STEPS steps of matching and linking (glob steps counted,
 * not calls) per pass of its loop, going round the subscriptions that are
 * behind, and serves every other connection between two passes: no
 * pattern, however costly, and no number of them, holds up a PING.
 * I/O thread only, unless a function says otherwise.
 */
#include "link.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/glob.h"
#include "log.h"
#include "mem.h"
#include "pump.h"
#include "state.h"
#include "tsan.h"

/* The steps one link made (or failed) counts for: a few allocations. */
#define SBB_LINK_COST 256u

static void link_free_cb(struct rcu_head *h)
{
    struct sbb_link *l = caa_container_of(h, struct sbb_link, rcu);

    SBD_TSAN_ACQUIRE(l);
    SBD_TSAN_GRACE();
    free(l);
}

static void sub_free_cb(struct rcu_head *h)
{
    struct sbb_sub *s = caa_container_of(h, struct sbb_sub, rcu);

    SBD_TSAN_ACQUIRE(s);
    SBD_TSAN_GRACE();
    free(s);
}

/* The bridge's state for topic @p t: created (with a subscriber placed at
 * @p start and handed to a pump) if remote clients did not read it yet.
 * A topic that subscriptions are still behind is read from its oldest
 * message and held until all of them have linked it, whatever @p start
 * the first link asked for: they share the reader.
 * @return 0 with *out, or an error for the reply. */
static int btopic_get(struct sbd_bridge *b, struct sbd_topic *t, uint32_t start,
                      struct sbb_topic **out)
{
    shmbus_sub_opts o = {.start = start, .spin_ns = -1};
    struct sbb_pump *p = NULL;
    struct sbb_topic *bt;
    int rc;

    if (t->bridge != NULL) {
        *out = t->bridge;
        return 0;
    }
    if (b->nfresh > 0 && t->id >= b->fresh_id)
        o.start = SHMBUS_START_OLDEST;
    if (sbd_topic_broken(t))
        return SHMBUS_ERR_TRUNCATED;
    for (unsigned i = 0; i < b->npumps && p == NULL; i++)
        if (b->pumps[i]->assigned < SBB_PUMP_TOPICS)
            p = b->pumps[i];
    if (p == NULL) {
        if (b->npumps == SBB_PUMP_MAX)
            return SHMBUS_ERR_LIMIT;
        rc = sbb_pump_start(b, b->npumps);
        if (rc < 0)
            return rc;
        p = b->pumps[b->npumps++];
    }
    bt = calloc(1, sizeof(*bt));
    if (bt == NULL)
        return -ENOMEM;
    bt->t = t;
    sbb_rlist_init(&bt->links);
    pthread_mutex_init(&bt->poll_mu, NULL);
    rc = shmbus_sub_create(t->t, &o, &bt->sub);
    if (rc < 0) {
        pthread_mutex_destroy(&bt->poll_mu);
        free(bt);
        return rc;
    }
    bt->pump = p;
    p->assigned++;
    if (o.start == SHMBUS_START_OLDEST) {
        /* relaxed: the pump is given it below, under its mutex. */
        atomic_store_explicit(&bt->hold, 1, memory_order_relaxed);
        cds_list_add(&bt->hnode, &b->held);
    }
    sbb_pump_give(p, bt);
    t->bridge = bt;
    *out = bt;
    return 0;
}

/* A subscription that was behind topics it links from their oldest
 * message got to the end (or went): when none is left, the held topics
 * are read. O(held topics), once per batch of new topics. */
static void fresh_done(struct sbd_bridge *b)
{
    struct sbb_topic *bt, *tmp;

    if (--b->nfresh > 0)
        return;
    cds_list_for_each_entry_safe (bt, tmp, &b->held, hnode) {
        cds_list_del(&bt->hnode);
        /* release: pairs with the acquire in sbb_pump_deliver(); the links made
         * before are listed. */
        atomic_store_explicit(&bt->hold, 0, memory_order_release);
        sbb_pump_ring(bt->pump);
    }
}

/* The topic's last link went: give the slot back. */
static void btopic_put(struct sbb_topic *bt)
{
    bt->t->bridge = NULL;
    /* relaxed: I/O thread's own. */
    if (atomic_load_explicit(&bt->hold, memory_order_relaxed))
        cds_list_del(&bt->hnode);
    sbb_pump_take(bt->pump, bt);
}

/*
 * Deliver topic @p t to subscription @p s, which has no link to it yet:
 * each topic is linked once, when s->upto passes it. O(1).
 * @return 0 with *@p out, or an error.
 */
static int link_add(struct sbd_bridge *b, struct sbb_sub *s, struct sbd_topic *t, uint32_t start,
                    struct sbb_link **out, char *why, size_t why_len)
{
    struct sbb_topic *bt;
    struct sbb_link *l;
    int rc = sbb_mem_sub_charge(s->c, sizeof(*l), why, why_len);

    if (rc < 0)
        return rc;
    rc = btopic_get(b, t, start, &bt);
    if (rc < 0) {
        sbb_mem_sub_release(s->c, sizeof(*l));
        snprintf(why, why_len, "cannot read topic %s for remote clients: %s", t->name,
                 shmbus_strerror(rc));
        return rc;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        sbb_mem_sub_release(s->c, sizeof(*l));
        if (bt->nlinks == 0)
            btopic_put(bt);
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    l->c = s->c;
    l->s = s;
    l->bt = bt;
    l->proto = s->c->proto;
    cds_list_add(&l->snode, &s->links);
    bt->nlinks++;
    *out = l;
    return 0;
}

/* Start delivering along link @p l: after the subscription's reply, so
 * that no message overtakes it. */
static void link_go(struct sbb_link *l)
{
    if (l->live)
        return;
    l->live = 1;
    l->bt->nlive++;
    /* The pumps read the link's fields after finding it in the list
     * (a release store publishes it). */
    sbb_rlist_append(&l->bt->links, &l->tnode);
}

void sbb_link_sub_go(struct sbb_sub *s)
{
    struct sbb_link *l;

    s->pending = 0;
    cds_list_for_each_entry (l, &s->links, snode)
        link_go(l);
}

static void link_del(struct sbb_link *l)
{
    struct sbb_topic *bt = l->bt;

    /* Before the unsubscribe reply is queued: a round that took the link
     * already appends nothing after it (deliver_link()). */
    pthread_mutex_lock(&l->c->mu);
    l->gone = 1;
    pthread_mutex_unlock(&l->c->mu);
    if (l->live) {
        sbb_rlist_remove(&bt->links, &l->tnode);
        bt->nlive--;
    }
    cds_list_del(&l->snode);
    sbb_mem_sub_release(l->c, sizeof(*l));
    SBD_TSAN_RELEASE(l);
    urcu_memb_call_rcu(&l->rcu, link_free_cb);
    if (--bt->nlinks == 0)
        btopic_put(bt); /* no remote reader left */
}

static void links_del(struct sbb_sub *s)
{
    struct sbb_link *l, *tmp;

    cds_list_for_each_entry_safe (l, tmp, &s->links, snode)
        link_del(l);
}

struct sbb_sub *sbb_link_sub_find(struct sbb_conn *c, int pattern, const char *name, size_t len)
{
    struct sbb_sub *s;

    sbb_rlist_each (s, nx, &c->subs, struct sbb_sub, cnode)
        if (s->pattern == pattern && s->len == len && memcmp(s->name, name, len) == 0)
            return s;
    return NULL;
}

/* The bytes of a subscription to a name of @p len bytes. */
static size_t sub_size(size_t len)
{
    return sizeof(struct sbb_sub) + len + 1;
}

/* @p s leaves the list of those behind: the round of catching up goes on
 * after it. */
static void pos_skip(struct sbd_bridge *b, struct sbb_sub *s)
{
    if (b->link_pos == s)
        b->link_pos = s->bnode.next != &b->subs_behind
                          ? cds_list_entry(s->bnode.next, struct sbb_sub, bnode)
                          : NULL;
}

void sbb_link_sub_del(struct sbb_sub *s)
{
    struct sbb_conn *c = s->c;
    struct sbd_bridge *b = c->b;

    links_del(s);
    pos_skip(b, s);
    if (s->upto < b->nall) {
        b->nbehind--;
        if (s->born < b->nall)
            fresh_done(b);
    }
    cds_list_del(&s->bnode);
    b->nsubs_all--;
    free(s->failed);
    sbb_rlist_remove(&c->subs, &s->cnode);
    sbb_mem_sub_release(c, sub_size(s->len));
    c->nsubs--;
    /* relaxed: monitoring counts. */
    atomic_fetch_sub_explicit(s->pattern ? &c->npat : &c->nchan, 1, memory_order_relaxed);
    SBD_TSAN_RELEASE(s);
    urcu_memb_call_rcu(&s->rcu, sub_free_cb);
}

/* Does @p s want topic @p t? Adds the work done to *@p steps. */
static int sub_wants(const struct sbb_sub *s, const struct sbd_topic *t, uint64_t *steps)
{
    if (s->pattern)
        return sb_glob_steps(s->name, s->len, t->name, strlen(t->name), steps);
    *steps += s->len;
    return strcmp(s->name, t->name) == 0;
}

/* on_create hook: runs in whichever thread created the topic, under the
 * registry's topic lock. The I/O thread links subscriptions to it. The
 * list has room for --max-topics (topics are never removed while the
 * bridge runs): nothing to allocate, no topic can be left out. */
static void topic_created(void *arg, struct sbd_topic *t)
{
    struct sbd_bridge *b = arg;
    uint64_t one = 1;

    pthread_mutex_lock(&b->new_mu);
    if (b->nall_hook < b->new_cap) {
        b->newt[b->nnew++] = t;
        b->nall_hook++;
    } else {
        sbd_log(SBD_ERROR, "bridge: more topics than --max-topics: remote subscribers miss %s",
                t->name);
    }
    pthread_mutex_unlock(&b->new_mu);
    if (write(b->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        sbd_log(SBD_WARN, "bridge: eventfd: %s", strerror(errno));
}

/* New topic @p t could not be linked to @p s (@p why): logged at the 1st,
 * 2nd, 4th, 8th... miss of the subscription, so that a connection past
 * its budget does not flood the log with every topic created. */
static void link_missed(struct sbb_sub *s, const struct sbd_topic *t, const char *why)
{
    uint32_t n = ++s->missed;

    if ((n & (n - 1)) != 0)
        return; /* not a power of two: already said */
    sbd_log(SBD_WARN,
            "bridge: connection %llu (%s): new topic %s not delivered to %s: %s (%u topics "
            "missed)",
            (unsigned long long)s->c->id, s->c->peer, t->name, s->name, why, n);
}

/* A pending subscription's link to one of the topics it was made after
 * failed: its PSUBSCRIBE fails whole (sbb_link_sub_ready() replies @p why). */
static void sub_fail(struct sbd_bridge *b, struct sbb_sub *s, const char *why)
{
    links_del(s);
    s->failed = strdup(why);
    s->fail_nomem = s->failed == NULL;
    s->upto = b->nall;
}

/* Link @p s to @p t, which it wants: from the next message if the bridge
 * had seen @p t when @p s was made, else from @p t's oldest. */
static void sub_link(struct sbd_bridge *b, struct sbb_sub *s, struct sbd_topic *t)
{
    int old = s->upto < s->born;
    struct sbb_link *l;
    char why[256];

    if (link_add(b, s, t, old ? SHMBUS_START_NEXT : SHMBUS_START_OLDEST, &l, why, sizeof(why)) ==
        0) {
        if (!s->pending)
            link_go(l);
    } else if (s->pending && old) {
        sub_fail(b, s, why);
    } else {
        link_missed(s, t, why);
    }
}

/* Match @p s, which is behind, against the next topics, within the pass's
 * budget. O(steps). */
static void catch_up(struct sbd_bridge *b, struct sbb_sub *s)
{
    while (s->upto < b->nall && b->link_budget > 0) {
        struct sbd_topic *t = b->all[s->upto];
        uint64_t steps = 1;

        if (s->failed != NULL || s->fail_nomem) {
            s->upto = b->nall; /* its command fails: nothing more to link */
            break;
        }
        if (sub_wants(s, t, &steps)) {
            sub_link(b, s, t);
            steps += SBB_LINK_COST;
        }
        if (s->upto < b->nall)
            s->upto++;
        b->link_budget = steps < b->link_budget ? b->link_budget - steps : 0;
    }
    if (s->upto == b->nall) {
        pos_skip(b, s);
        cds_list_move(&s->bnode, &b->subs_done);
        b->nbehind--;
        if (s->born < b->nall)
            fresh_done(b);
    }
}

/* Go round the subscriptions that are behind (only those: O(1) each),
 * from link_pos, until the pass's budget is spent or none is behind. */
static void link_round(struct sbd_bridge *b)
{
    while (b->nbehind > 0 && b->link_budget > 0) {
        struct sbb_sub *s = b->link_pos != NULL
                                ? b->link_pos
                                : cds_list_first_entry(&b->subs_behind, struct sbb_sub, bnode);

        b->link_pos = s->bnode.next != &b->subs_behind
                          ? cds_list_entry(s->bnode.next, struct sbb_sub, bnode)
                          : NULL;
        b->link_budget--;
        catch_up(b, s);
    }
}

/*
 * Take the topics created since last time into b->all (O(new topics), no
 * matching): every subscription is then behind. The list is in the order
 * of topic ids (the hook runs under the topic lock that numbers them):
 * seen_id ends at the last one.
 */
void sbb_link_topics_new(struct sbd_bridge *b)
{
    size_t n;

    pthread_mutex_lock(&b->new_mu);
    n = b->nnew;
    /* Room for --max-topics in both lists: the hook took no more. */
    for (size_t i = 0; i < n; i++)
        b->all[b->nall++] = b->newt[i];
    if (n > 0)
        b->seen_id = b->newt[n - 1]->id;
    b->nnew = 0;
    pthread_mutex_unlock(&b->new_mu);
    if (n == 0)
        return;
    /* Each was at most at the old end of the list, and made before its
     * new end: the new topics are held until all got there. */
    if (b->nfresh == 0)
        b->fresh_id = b->all[b->nall - n]->id;
    b->nbehind = b->nsubs_all;
    b->nfresh = b->nsubs_all;
    /* O(1): all are behind now. */
    cds_list_splice(&b->subs_done, b->subs_behind.prev);
    CDS_INIT_LIST_HEAD(&b->subs_done);
    /* Most often done within the pass's budget: a publish that made the
     * topic counts its subscribers as receivers. */
    link_round(b);
}

void sbb_link_work(struct sbd_bridge *b)
{
    link_round(b);
    b->link_budget = SBB_LINK_STEPS;
}

int sbb_link_busy(const struct sbd_bridge *b)
{
    return b->nbehind > 0;
}

/* A channel: linked at once to the topic of its name, if the bridge has
 * seen it (a later one comes through sbb_link_topics_new()). O(1). */
static int link_channel(struct sbd_bridge *b, struct sbb_sub *s, char *why, size_t why_len)
{
    struct sbd_topic *t;
    struct sbb_link *l;
    int rc = 0;

    urcu_memb_read_lock();
    t = sbd_topic_lookup(b->reg, s->name);
    if (t != NULL && t->id <= b->seen_id)
        rc = link_add(b, s, t, SHMBUS_START_NEXT, &l, why, why_len);
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    return rc;
}

/* A new subscription of @p c for @p r, charged, not listed. @return it,
 * or NULL with r->why filled. */
static struct sbb_sub *sub_new(struct sbd_bridge *b, struct sbb_conn *c,
                               const struct sbb_sub_req *r)
{
    struct sbb_sub *s;

    if (c->nsubs >= b->cfg->bridge_max_subs) {
        snprintf(r->why, r->why_len, "too many subscriptions: %u (--bridge-max-subs)",
                 b->cfg->bridge_max_subs);
        return NULL;
    }
    if (sbb_mem_sub_charge(c, sub_size(r->len), r->why, r->why_len) < 0)
        return NULL;
    s = calloc(1, sub_size(r->len));
    if (s == NULL) {
        sbb_mem_sub_release(c, sub_size(r->len));
        snprintf(r->why, r->why_len, "out of memory");
        return NULL;
    }
    s->c = c;
    s->pattern = r->pattern;
    s->len = r->len;
    memcpy(s->name, r->name, r->len);
    CDS_INIT_LIST_HEAD(&s->links);
    s->born = b->nall;
    s->upto = r->pattern ? 0 : b->nall;
    s->pending = r->pattern && s->born > 0;
    return s;
}

int sbb_link_subscribe(struct sbd_bridge *b, struct sbb_conn *c, struct sbb_sub_req *r)
{
    struct sbb_sub *s;
    int rc;

    r->sub = sbb_link_sub_find(c, r->pattern, r->name, r->len);
    if (r->sub != NULL)
        return 0;
    /* Topics created but not yet seen go to b->all first: this one
     * places its cursor at NEXT in the topics seen when it was made. */
    sbb_link_topics_new(b);
    s = sub_new(b, c, r);
    if (s == NULL)
        return SHMBUS_ERR_LIMIT;
    rc = r->pattern ? 0 : link_channel(b, s, r->why, r->why_len);
    if (rc < 0) {
        links_del(s);
        sbb_mem_sub_release(c, sub_size(r->len));
        /* Never live: no pump saw its links. call_rcu() all the same,
         * after the links it points to. */
        SBD_TSAN_RELEASE(s);
        urcu_memb_call_rcu(&s->rcu, sub_free_cb);
        return rc;
    }
    sbb_rlist_append(&c->subs, &s->cnode);
    cds_list_add_tail(&s->bnode, s->upto < b->nall ? &b->subs_behind : &b->subs_done);
    b->nsubs_all++;
    c->nsubs++;
    /* relaxed: monitoring counts. */
    atomic_fetch_add_explicit(r->pattern ? &c->npat : &c->nchan, 1, memory_order_relaxed);
    if (s->upto < b->nall) {
        b->nbehind++;
        catch_up(b, s); /* what is left of this pass's budget */
    }
    r->sub = s;
    return 0;
}

int sbb_link_sub_ready(struct sbb_sub *s, char *why, size_t why_len)
{
    if (s->failed != NULL || s->fail_nomem) {
        snprintf(why, why_len, "%s", s->failed != NULL ? s->failed : "out of memory");
        sbb_link_sub_del(s);
        return SHMBUS_ERR_LIMIT;
    }
    return sbb_link_sub_linking(s);
}

int sbb_link_sub_linking(const struct sbb_sub *s)
{
    return s->failed == NULL && !s->fail_nomem && s->pending && s->upto < s->born;
}

/* The topics there are at the start, in id order. */
static int topic_id_cmp(const void *a, const void *b)
{
    uint32_t x = (*(struct sbd_topic *const *)a)->id, y = (*(struct sbd_topic *const *)b)->id;

    return x < y ? -1 : x > y;
}

int sbb_link_init(struct sbd_bridge *b)
{
    size_t cap = b->cfg->max_topics;

    CDS_INIT_LIST_HEAD(&b->subs_behind);
    CDS_INIT_LIST_HEAD(&b->subs_done);
    CDS_INIT_LIST_HEAD(&b->held);
    b->link_budget = SBB_LINK_STEPS;
    b->new_cap = cap;
    b->newt = calloc(cap > 0 ? cap : 1, sizeof(*b->newt));
    b->all = calloc(cap > 0 ? cap : 1, sizeof(*b->all));
    return b->newt != NULL && b->all != NULL ? 0 : -ENOMEM;
}

void sbb_link_fini(struct sbd_bridge *b)
{
    free(b->newt);
    free(b->all);
}

void sbb_link_hook(struct sbd_registry *reg, struct sbd_bridge *b)
{
    pthread_mutex_lock(&reg->topic_lock);
    /* The topics there are now are seen: the later ones come through
     * the hook. Before the I/O thread starts. */
    if (b != NULL) {
        struct cds_lfht_iter it;
        struct cds_lfht_node *n;

        urcu_memb_read_lock();
        cds_lfht_for_each (reg->topics, &it, n) {
            struct sbd_topic *t = sbd_topic_of(n);

            if (b->nall < b->new_cap)
                b->all[b->nall++] = t;
            else
                sbd_log(SBD_ERROR,
                        "bridge: more topics than --max-topics: remote subscribers miss %s",
                        t->name);
        }
        SBD_TSAN_READ_DONE();
        urcu_memb_read_unlock();
        qsort(b->all, b->nall, sizeof(*b->all), topic_id_cmp);
        b->nall_hook = b->nall;
        b->seen_id = reg->next_topic;
    }
    reg->on_create[SBD_LISTENER_BRIDGE] =
        (struct sbd_listener){.fn = b != NULL ? topic_created : NULL, .arg = b};
    pthread_mutex_unlock(&reg->topic_lock);
}
