/* Topic handles: create or attach a segment, unmap, unlink, describe. */
#include <errno.h>
#include <stdlib.h>

#include "ring/ring.h"

#define TOPIC_DEFAULT_CAPACITY 1024u
#define TOPIC_DEFAULT_MAX_MSG  1024u
#define TOPIC_DEFAULT_SUBS     64u
#define TOPIC_DEFAULT_GROUPS   16u
#define TOPIC_DEFAULT_PERM     0600u

static void topic_params(const shmbus_topic_opts *o, struct sb_seg_params *p, uint32_t *perm)
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
    *perm = d.perm ? d.perm : TOPIC_DEFAULT_PERM;
}

/* Hand a mapped segment to a new handle; on failure the mapping is gone. */
static int topic_wrap(struct sb_segment *seg, shmbus_topic **out)
{
    shmbus_topic *t = malloc(sizeof(*t));

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
    topic_params(opts, &p, &perm);
    rc = sb_segment_create(name, &p, perm, &seg);
    if (rc < 0)
        return rc; /* the segment removed its own leftovers */
    rc = topic_wrap(&seg, out);
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
    return rc < 0 ? rc : topic_wrap(&seg, out);
}

void shmbus_topic_destroy(shmbus_topic *topic)
{
    if (topic == NULL)
        return;
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
    out->segment_size = seg->g.total_len;
    /* relaxed: a snapshot of counters. */
    out->published = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
    out->overruns = atomic_load_explicit(&seg->hdr->overruns, memory_order_relaxed);
    out->skipped = atomic_load_explicit(&seg->hdr->skipped, memory_order_relaxed);
    return 0;
}
