/* SPDX-License-Identifier: Apache-2.0 */
/* Topic handles: create or attach a segment, unmap, unlink, describe. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ring/group.h"
#include "ring/ring.h"
#include "shmbus/monitor.h"

#define TOPIC_DEFAULT_CAPACITY 1024u
#define TOPIC_DEFAULT_MAX_MSG  1024u
#define TOPIC_DEFAULT_SUBS     64u
#define TOPIC_DEFAULT_GROUPS   16u
#define TOPIC_DEFAULT_PUBS     64u
#define TOPIC_DEFAULT_PERM     0600u

int sb_topic_params(const shmbus_topic_opts *o, struct sb_seg_params *p, uint32_t *perm)
{
    shmbus_topic_opts d = {0};

    if (o != NULL)
        d = *o;
    p->mode = d.mode ? d.mode : SHMBUS_LOSSY;
    p->flags = d.flags;
    p->capacity = d.capacity ? d.capacity : TOPIC_DEFAULT_CAPACITY;
    p->max_msg_size = d.max_msg_size ? d.max_msg_size : TOPIC_DEFAULT_MAX_MSG;
    p->max_subs = d.max_subscribers ? d.max_subscribers : TOPIC_DEFAULT_SUBS;
    p->max_groups = d.max_groups ? d.max_groups : TOPIC_DEFAULT_GROUPS;
    p->max_pubs = d.max_publishers ? d.max_publishers : TOPIC_DEFAULT_PUBS;
    p->stall_timeout_ms = d.stall_timeout_ms;
    *perm = d.perm ? d.perm : TOPIC_DEFAULT_PERM;
    return sb_topic_opts_clean(o) ? 0 : SHMBUS_ERR_INVALID;
}

int sb_topic_wrap(struct sb_segment *seg, shmbus_topic **out)
{
    shmbus_topic *t = sb_handle_alloc(sizeof(*t));

    if (t == NULL) {
        sb_segment_unmap(seg);
        return -ENOMEM;
    }
    t->seg = *seg;
    *out = t;
    return 0;
}

int shmbus_topic_create(const char *name, const shmbus_topic_opts *opts, shmbus_topic **out)
{
    struct sb_seg_params p;
    struct sb_segment seg;
    uint32_t perm;
    int rc;

    if (out == NULL)
        return SHMBUS_ERR_INVALID;
    *out = NULL;
    rc = sb_topic_params(opts, &p, &perm);
    if (rc < 0)
        return rc;
    rc = sb_segment_create(name, &p, perm, &seg);
    if (rc < 0)
        return rc; /* the segment removed its own leftovers */
    rc = sb_topic_wrap(&seg, out);
    if (rc < 0)
        sb_segment_unlink(name); /* ours: we created it just now */
    return rc;
}

int shmbus_topic_attach(const char *name, shmbus_topic **out)
{
    struct sb_segment seg;
    int rc;

    if (out == NULL)
        return SHMBUS_ERR_INVALID;
    *out = NULL;
    rc = sb_segment_attach(name, &seg);
    return rc < 0 ? rc : sb_topic_wrap(&seg, out);
}

void shmbus_topic_destroy(shmbus_topic *topic)
{
    if (topic == NULL)
        return;
    if (topic->reg != NULL)
        sb_hook_topic_closing(topic);
    sb_segment_unmap(&topic->seg);
    free(topic);
}

int shmbus_topic_unlink(const char *name)
{
    return sb_segment_unlink(name);
}

int shmbus_topic_info_get(const shmbus_topic *topic, shmbus_topic_info *out)
{
    const struct sb_segment *seg;

    if (topic == NULL || out == NULL)
        return SHMBUS_ERR_INVALID;
    seg = &topic->seg;
    out->mode = seg->g.mode;
    out->flags = seg->g.flags;
    out->capacity = seg->g.capacity;
    out->max_msg_size = seg->g.max_msg_size;
    out->max_subscribers = seg->g.max_subs;
    out->max_groups = seg->g.max_groups;
    out->max_publishers = seg->g.max_pubs;
    out->stall_timeout_ms = seg->g.stall_timeout_ms;
    out->segment_size = seg->g.total_len;
    /* relaxed: a snapshot of counters. */
    out->published = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
    out->overruns = atomic_load_explicit(&seg->hdr->overruns, memory_order_relaxed);
    out->skipped = atomic_load_explicit(&seg->hdr->skipped, memory_order_relaxed);
    out->unblocked = atomic_load_explicit(&seg->hdr->unblocked, memory_order_relaxed);
    out->reaped = atomic_load_explicit(&seg->hdr->reaped, memory_order_relaxed);
    out->evicted = atomic_load_explicit(&seg->hdr->evicted, memory_order_relaxed);
    out->abandoned = atomic_load_explicit(&seg->hdr->abandoned, memory_order_relaxed);
    return 0;
}

/* One busy slot's snapshot, in state @p st; relaxed loads throughout:
 * monitoring only. */
static void slot_info(const struct sb_segment *seg, uint32_t i, uint32_t st, uint64_t tail,
                      shmbus_slot_info *o)
{
    const struct sb_shm_slot *s = &seg->slots[i];
    uint32_t g = atomic_load_explicit(&s->group, memory_order_relaxed);
    uint64_t pos = atomic_load_explicit(&s->pos, memory_order_relaxed);

    memset(o, 0, sizeof(*o));
    o->index = i;
    o->flags = st == SB_SLOT_OBSERVING ? SHMBUS_SLOT_OBSERVER
               : st == SB_SLOT_EVICTED ? SHMBUS_SLOT_EVICTED
                                       : 0;
    o->pid = atomic_load_explicit(&s->pid, memory_order_relaxed);
    o->received = atomic_load_explicit(&s->received, memory_order_relaxed);
    o->lost = atomic_load_explicit(&s->lost, memory_order_relaxed);
    if (g >= 1 && g <= seg->g.max_groups) {
        const struct sb_shm_group *grp = &seg->groups[g - 1];
        uint64_t w = atomic_load_explicit(&grp->cursor, memory_order_relaxed);

        o->group = g;
        /* The name never changes once written (layout.h); bound the copy
         * anyway: the segment is not trusted. */
        memcpy(o->group_name, grp->name, sizeof(o->group_name) - 1);
        o->group_name[strnlen(o->group_name, sizeof(o->group_name) - 1)] = '\0';
        pos = SB_GRP_SEQ(w);
    }
    o->position = pos == SB_POS_IDLE ? tail : pos;
    o->lag = tail > o->position ? tail - o->position : 0;
}

int shmbus_topic_slots_get(const shmbus_topic *topic, shmbus_slot_info *out, unsigned cap)
{
    const struct sb_segment *seg;
    uint64_t tail;
    unsigned n = 0;

    if (topic == NULL || (out == NULL && cap > 0))
        return SHMBUS_ERR_INVALID;
    seg = &topic->seg;
    /* relaxed: a snapshot for monitors. */
    tail = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
    for (uint32_t i = 0; i < seg->g.max_subs; i++) {
        uint32_t st = atomic_load_explicit(&seg->slots[i].state, memory_order_relaxed);

        if (st != SB_SLOT_ACTIVE && st != SB_SLOT_JOINING && st != SB_SLOT_OBSERVING &&
            st != SB_SLOT_EVICTED)
            continue;
        if (n < cap)
            slot_info(seg, i, st, tail, &out[n]);
        n++;
    }
    return (int)n;
}

int shmbus_topic_pubs_get(const shmbus_topic *topic, shmbus_pub_info *out, unsigned cap)
{
    const struct sb_segment *seg;
    unsigned n = 0;

    if (topic == NULL || (out == NULL && cap > 0))
        return SHMBUS_ERR_INVALID;
    seg = &topic->seg;
    for (uint32_t i = 0; i < seg->g.max_pubs; i++) {
        /* relaxed, both: a snapshot for monitors; a record changing owner
         * meanwhile shows either owner's pid, as a racy read may. */
        uint32_t st = atomic_load_explicit(&seg->pubs[i].state, memory_order_relaxed);
        uint32_t pid = atomic_load_explicit(&seg->pubs[i].pid, memory_order_relaxed);

        if (st != SB_PUB_ACTIVE && st != SB_PUB_DEAD)
            continue; /* free, or being set up: no owner yet */
        if (n < cap)
            out[n] = (shmbus_pub_info){.index = i, .pid = pid, .dead = st == SB_PUB_DEAD};
        n++;
    }
    return (int)n;
}
