/*
 * Daemon-side operations on topic segments (admin.h). The daemon is the
 * only process that names groups or takes slots on behalf of others, and it
 * does so from one thread, so naming needs no synchronisation among
 * writers; readers (monitors) see a name only after the number is handed
 * out over the control socket.
 */
#include "registry/admin.h"

#include <string.h>

#include "ring/group.h"
#include "ring/ring.h"

int sb_admin_plan(const shmbus_topic_opts *o, shmbus_topic_opts *eff, uint64_t *size)
{
    struct sb_seg_params p;
    struct sb_geom g;
    uint32_t perm;
    int rc;

    sb_topic_params(o, &p, &perm);
    *eff = (shmbus_topic_opts){.mode = p.mode,
                               .capacity = p.capacity,
                               .max_msg_size = p.max_msg_size,
                               .max_subscribers = p.max_subs,
                               .max_groups = p.max_groups,
                               .perm = perm,
                               .flags = p.flags};
    rc = sb_geom_plan(&p, &g);
    if (rc < 0)
        return rc;
    *size = g.total_len;
    return 0;
}

int sb_admin_topic_fd(const shmbus_topic *t)
{
    return t->seg.fd;
}

int sb_admin_slot_take(const shmbus_topic *t, uint32_t pid)
{
    const struct sb_segment *seg = &t->seg;

    for (uint32_t i = 0; i < seg->g.max_subs; i++) {
        struct sb_shm_slot *s = &seg->slots[i];
        uint32_t st = SB_SLOT_FREE;

        /* acquire: pairs with the release (seq_cst) store of FREE by the
         * last owner or by sb_admin_slot_free(). */
        if (atomic_compare_exchange_strong_explicit(&s->state, &st, SB_SLOT_INIT,
                                                    memory_order_acquire, memory_order_relaxed)) {
            /* relaxed: the client learns the slot over the socket, which
             * orders this store before its own. */
            atomic_store_explicit(&s->pid, pid, memory_order_relaxed);
            return (int)i;
        }
    }
    return SHMBUS_ERR_NO_SLOT;
}

void sb_admin_slot_free(const shmbus_topic *t, uint32_t idx)
{
    const struct sb_segment *seg = &t->seg;
    struct sb_shm_slot *s;
    uint32_t st, g;

    if (idx >= seg->g.max_subs)
        return;
    s = &seg->slots[idx];
    /* acquire: the owner's last stores to the slot, before we judge it. */
    st = atomic_load_explicit(&s->state, memory_order_acquire);
    g = atomic_load_explicit(&s->group, memory_order_relaxed);
    /* An ACTIVE member counts in its group's word (sub.c sub_join()):
     * leave for it. seq_cst: as every cursor update (group.c). */
    if (st == SB_SLOT_ACTIVE && g >= 1 && g <= seg->g.max_groups)
        atomic_fetch_sub_explicit(&seg->groups[g - 1].cursor, 1, memory_order_seq_cst);
    /* seq_cst: as the owner's own release in shmbus_sub_destroy(). */
    atomic_store_explicit(&s->state, SB_SLOT_FREE, memory_order_seq_cst);
    sb_wake_publishers(seg->hdr);
}

int sb_admin_group_number(const shmbus_topic *t, const char *name)
{
    const struct sb_segment *seg = &t->seg;

    for (uint32_t i = 0; i < seg->g.max_groups; i++) {
        struct sb_shm_group *grp = &seg->groups[i];

        if (grp->name[0] == '\0') {
            /* The first unnamed group: numbers are handed out in order,
             * so every later one is unnamed too. */
            strncpy(grp->name, name, sizeof(grp->name) - 1);
            return (int)i + 1;
        }
        if (strncmp(grp->name, name, sizeof(grp->name)) == 0)
            return (int)i + 1;
    }
    return SHMBUS_ERR_LIMIT;
}
