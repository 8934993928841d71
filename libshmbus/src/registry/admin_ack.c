/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's side of acknowledged groups (admin.h): numbering groups
 * with their kind, reading a group's dead-letter topic back, handing out
 * what is to be dead-lettered, and the pending entries that stall
 * publishers. The members' side and the protocol are ring/ack.c's. Called
 * from the daemon's threads; the group configuration only from the one
 * that answers SUB_ADD (admin.c: naming needs no synchronisation among
 * writers).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/admin.h"
#include "ring/ack.h"
#include "ring/ring.h"
#include "util/clock.h"
#include "util/name.h"

static_assert(SHMBUS_TOPIC_NAME_MAX < SB_DEAD_LETTER_LEN, "a dead-letter name fits the acktab");
static_assert(SHMBUS_GROUP_NAME_MAX < SB_GROUP_NAME_LEN, "a group name fits the group");

/* The dead-letter topic @p ack asks for, or the default for its topic,
 * into @p out. @return 0 (out "" when the member left it to the group),
 * or an error. */
static int ack_resolve(const struct sb_admin_ack *ack, char out[SB_DEAD_LETTER_LEN])
{
    out[0] = '\0';
    if (ack->max_deliveries > SHMBUS_MAX_DELIVERIES_MAX)
        return SHMBUS_ERR_INVALID;
    if (ack->dead_letter != NULL) {
        if (!sb_name_valid(ack->dead_letter, SHMBUS_TOPIC_NAME_MAX))
            return SHMBUS_ERR_BAD_NAME;
        if (ack->topic != NULL && strcmp(ack->dead_letter, ack->topic) == 0)
            return SHMBUS_ERR_INVALID; /* its own dead letters would loop */
        snprintf(out, SB_DEAD_LETTER_LEN, "%s", ack->dead_letter);
    }
    return 0;
}

/* Write the configuration of new group @p grp (number @p g, 0-based). */
static int group_configure(const struct sb_segment *seg, struct sb_shm_group *grp, uint32_t g,
                           const struct sb_admin_ack *ack, const char *dl)
{
    struct sb_shm_acktab *tab = sb_acktab(seg, g);
    int n;

    if (dl[0] != '\0') {
        snprintf(tab->dead_letter, sizeof(tab->dead_letter), "%s", dl);
    } else {
        if (ack->topic == NULL)
            return SHMBUS_ERR_INVALID;
        n = snprintf(tab->dead_letter, sizeof(tab->dead_letter), "%s.dlq", ack->topic);
        if (n < 0 || !sb_name_valid(tab->dead_letter, SHMBUS_TOPIC_NAME_MAX)) {
            memset(tab->dead_letter, 0, sizeof(tab->dead_letter));
            return SHMBUS_ERR_BAD_NAME;
        }
    }
    /* release: the dead-letter name above before the kind; members and
     * publishers load it with acquire (ring/ack.c, gate.c). The number is
     * handed out after this, over the control socket. */
    atomic_store_explicit(&grp->max_deliveries,
                          ack->max_deliveries ? ack->max_deliveries : SHMBUS_MAX_DELIVERIES_DEFAULT,
                          memory_order_release);
    return 0;
}

/* Does existing group @p grp (number @p g, 0-based) have what @p ack (NULL:
 * no acknowledgements) asks, @p dl its resolved dead-letter name? */
static int group_matches(const struct sb_segment *seg, const struct sb_shm_group *grp, uint32_t g,
                         const struct sb_admin_ack *ack, const char *dl)
{
    /* acquire: pairs with the release store in group_configure(). */
    uint32_t md = atomic_load_explicit(&grp->max_deliveries, memory_order_acquire);

    if ((ack == NULL) != (md == 0))
        return 0;
    if (ack == NULL)
        return 1;
    if (ack->max_deliveries != 0 && ack->max_deliveries != md)
        return 0;
    return dl[0] == '\0' || strncmp(sb_acktab(seg, g)->dead_letter, dl, SB_DEAD_LETTER_LEN) == 0;
}

int sb_admin_group_number(const shmbus_topic *t, const char *name, const struct sb_admin_ack *ack)
{
    const struct sb_segment *seg = &t->seg;
    char dl[SB_DEAD_LETTER_LEN];
    int rc;

    if (ack != NULL) {
        if (seg->g.ack_entries == 0)
            return SHMBUS_ERR_INVALID; /* lossy: nothing to gate with */
        rc = ack_resolve(ack, dl);
        if (rc < 0)
            return rc;
    }
    for (uint32_t i = 0; i < seg->g.max_groups; i++) {
        struct sb_shm_group *grp = &seg->groups[i];

        if (grp->name[0] == '\0') {
            /* The first unnamed group: numbers are handed out in order,
             * so every later one is unnamed too. Its kind is set before
             * its name: a name seen means a kind fixed. */
            if (ack != NULL && (rc = group_configure(seg, grp, i, ack, dl)) < 0)
                return rc;
            strncpy(grp->name, name, sizeof(grp->name) - 1);
            return (int)i + 1;
        }
        if (strncmp(grp->name, name, sizeof(grp->name)) == 0)
            return group_matches(seg, grp, i, ack, dl) ? (int)i + 1 : SHMBUS_ERR_MISMATCH;
    }
    return SHMBUS_ERR_LIMIT;
}

int sb_admin_ack_dead_letter(const shmbus_topic *t, uint32_t g, char *out, size_t cap)
{
    const struct sb_segment *seg = &t->seg;
    char name[SB_DEAD_LETTER_LEN];
    size_t n;

    /* acquire: pairs with the release store in group_configure(); the
     * dead-letter name read below comes with it. */
    if (g >= seg->g.max_groups || seg->g.ack_entries == 0 ||
        atomic_load_explicit(&seg->groups[g].max_deliveries, memory_order_acquire) == 0)
        return -ENOENT;
    /* A copy first: another process may scribble while we check. */
    memcpy(name, sb_acktab(seg, g)->dead_letter, sizeof(name));
    n = strnlen(name, sizeof(name));
    if (n == sizeof(name) || !sb_name_valid(name, SHMBUS_TOPIC_NAME_MAX))
        return SHMBUS_ERR_CORRUPT;
    if (n >= cap)
        return -ENOSPC;
    memcpy(out, name, n + 1);
    return 0;
}

/* Group @p g's (0-based) max_deliveries, 0 if it does not acknowledge or
 * the segment says nonsense. */
static uint32_t group_max_deliveries(const struct sb_segment *seg, uint32_t g)
{
    /* acquire: pairs with the release store in group_configure(). */
    uint32_t md = atomic_load_explicit(&seg->groups[g].max_deliveries, memory_order_acquire);

    return md <= SHMBUS_MAX_DELIVERIES_MAX ? md : 0;
}

/* Free DEAD entry @p e (word @p w) whose message is gone. Counted lost
 * (abandoned) unless it was a copy of a message another member took: a
 * marked entry (SB_PEND_COPY: ring/ack.c) not returned by an eviction,
 * as ring/ack.c's pend_gone() judges a member's redelivery. */
static void dead_abandon(const struct sb_segment *seg, struct sb_shm_pending *e, uint64_t w)
{
    int duplicate = (w & SB_PEND_COPY) && SB_PEND_REASON(w) != SHMBUS_DL_EVICTED;

    /* seq_cst: as every pending word change (ring/ack.c). */
    if (atomic_compare_exchange_strong_explicit(
            &e->word, &w, SB_PEND_WORD(SB_PEND_GEN(w) + 1u, 0, 0, SB_PEND_FREE),
            memory_order_seq_cst, memory_order_relaxed)) {
        /* relaxed: statistics only. */
        if (!duplicate)
            atomic_fetch_add_explicit(&seg->hdr->abandoned, 1, memory_order_relaxed);
        sb_wake_publishers(seg->hdr);
    }
}

/* The message of marked DEAD entry @p w (seq @p seq, stamp @p v in cell
 * @p c), which may gate nothing (ring/ack.c): copied out and checked
 * (read.h sb_cell_copy(): its orders) into out->copy. @return 1 copied,
 * 0 gone (overwritten, or a length over the topic's maximum), -ENOMEM
 * (the entry stays DEAD, for the next pass). */
static int dead_copy(const struct sb_segment *seg, const struct sb_shm_cell *c, uint64_t v,
                     struct sb_admin_dead *out)
{
    struct sb_cell_meta m;

    out->copy = malloc(seg->g.max_msg_size ? seg->g.max_msg_size : 1u);
    if (out->copy == NULL)
        return -ENOMEM;
    if (sb_cell_copy(c, v, seg->g.max_msg_size, out->copy, &m) != 0) {
        free(out->copy);
        out->copy = NULL;
        return 0;
    }
    out->data = out->copy;
    out->len = m.len;
    out->timestamp_ns = m.timestamp_ns;
    out->pid = m.pid;
    return 1;
}

/* Fill @p out from DEAD entry @p e (word @p w) of group @p g. @return 1,
 * 0 if its cell no longer shows the message (then freed), or -ENOMEM;
 * @p out is left alone unless 1. */
static int dead_fill(const struct sb_segment *seg, uint32_t g, uint32_t i, struct sb_shm_pending *e,
                     uint64_t w, struct sb_admin_dead *out)
{
    /* relaxed: stored before the CAS that made the entry HELD, which the
     * acquire load of @p w follows. */
    uint64_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed), v;
    const struct sb_shm_cell *c = sb_cell(seg, seq);
    struct sb_admin_dead d = {.group = g,
                              .entry = i,
                              .seq = seq,
                              .deliveries = SB_PEND_DELIVERIES(w),
                              .reason = SB_PEND_REASON(w)};
    int rc;

    /* acquire: pairs with the commit CAS (pub.c); an unmarked entry gated
     * the cell since, so a changed stamp means a scribbled segment. */
    v = atomic_load_explicit(&c->stamp, memory_order_acquire);
    if (sb_cell_classify(v, seq, seg->g.mask) != SB_CELL_READY) {
        rc = 0;
    } else if (w & SB_PEND_COPY) {
        rc = dead_copy(seg, c, v, &d);
    } else {
        d.timestamp_ns = c->timestamp_ns;
        d.pid = c->writer_pid;
        d.data = c + 1;
        d.len = c->len;
        rc = d.len <= seg->g.max_msg_size;
    }
    if (rc == 0)
        dead_abandon(seg, e, w);
    if (rc <= 0)
        return rc;
    /* relaxed: for monitors; the entry is ours while DEAD. */
    atomic_store_explicit(&e->reason, SB_PEND_REASON(w), memory_order_relaxed);
    *out = d;
    return 1;
}

int sb_admin_ack_dead_next(const shmbus_topic *t, uint32_t *pos, struct sb_admin_dead *out)
{
    const struct sb_segment *seg = &t->seg;
    uint32_t n = seg->g.ack_entries;

    if (n == 0)
        return 0;
    for (; *pos < seg->g.max_groups * n; (*pos)++) {
        uint32_t g = *pos / n, i = *pos % n, md = group_max_deliveries(seg, g);
        struct sb_shm_pending *e;
        uint64_t w;

        if (md == 0) {
            *pos = (g + 1) * n - 1; /* the next group */
            continue;
        }
        e = sb_pending(seg, g, i);
        /* acquire: pairs with the CAS that made it RETURNED or DEAD. */
        w = atomic_load_explicit(&e->word, memory_order_acquire);
        if (SB_PEND_ST(w) == SB_PEND_RETURNED && SB_PEND_DELIVERIES(w) >= md) {
            uint64_t dw = SB_PEND_WORD(SB_PEND_GEN(w) + 1u, SB_PEND_DELIVERIES(w),
                                       SB_PEND_REASON(w), SB_PEND_DEAD) |
                          (w & SB_PEND_COPY);
            /* seq_cst: as every pending word change. A member that takes
             * it first makes this fail: it was not due for us then. */
            if (!atomic_compare_exchange_strong_explicit(&e->word, &w, dw, memory_order_seq_cst,
                                                         memory_order_relaxed))
                continue;
            sb_ack_returned_less(&seg->groups[g]);
            w = dw;
        } else if (SB_PEND_ST(w) != SB_PEND_DEAD) {
            continue;
        }
        /* Out of memory for a copy: left DEAD for the next pass. */
        if (dead_fill(seg, g, i, e, w, out) > 0) {
            (*pos)++;
            return 1;
        }
    }
    return 0;
}

void sb_admin_ack_dead_done(const shmbus_topic *t, const struct sb_admin_dead *d, int moved)
{
    const struct sb_segment *seg = &t->seg;
    struct sb_shm_group *grp;
    struct sb_shm_pending *e;
    uint64_t w;

    free(d->copy);
    if (d->group >= seg->g.max_groups || d->entry >= seg->g.ack_entries)
        return;
    grp = &seg->groups[d->group];
    if (!moved) {
        /* relaxed: statistics only. */
        atomic_fetch_add_explicit(&grp->dead_letter_failed, 1, memory_order_relaxed);
        return;
    }
    e = sb_pending(seg, d->group, d->entry);
    /* acquire: the DEAD word we made (only the daemon moves a DEAD one);
     * relaxed seq: ordered by it, and a DEAD entry's seq is not written
     * (only a RESERVED entry's owner writes it). */
    w = atomic_load_explicit(&e->word, memory_order_acquire);
    if (SB_PEND_ST(w) != SB_PEND_DEAD ||
        atomic_load_explicit(&e->seq, memory_order_relaxed) != d->seq)
        return;
    /* seq_cst: as every pending word change; publishers' gate scans. */
    if (!atomic_compare_exchange_strong_explicit(
            &e->word, &w, SB_PEND_WORD(SB_PEND_GEN(w) + 1u, 0, 0, SB_PEND_FREE),
            memory_order_seq_cst, memory_order_relaxed))
        return;
    /* relaxed: statistics only. */
    atomic_fetch_add_explicit(&grp->dead_lettered, 1, memory_order_relaxed);
    sb_wake_publishers(seg->hdr);
}

int sb_admin_ack_gate(const shmbus_topic *t, uint32_t g, uint64_t *seq, uint32_t *entry,
                      uint32_t *owner)
{
    const struct sb_segment *seg = &t->seg;
    int found = 0;

    if (g >= seg->g.max_groups || group_max_deliveries(seg, g) == 0)
        return 0;
    for (uint32_t i = 0; i < seg->g.ack_entries; i++) {
        const struct sb_shm_pending *e = sb_pending(seg, g, i);
        /* seq_cst: as a publisher's gate scan (gate.c). */
        uint64_t w = atomic_load_explicit(&e->word, memory_order_seq_cst), s;
        uint32_t st = SB_PEND_ST(w);

        if (st != SB_PEND_HELD && st != SB_PEND_RETURNED && st != SB_PEND_DEAD)
            continue;
        /* relaxed: ordered by the load above. */
        s = atomic_load_explicit(&e->seq, memory_order_relaxed);
        if (!found || s < *seq) {
            *seq = s;
            *entry = i;
            *owner = st == SB_PEND_HELD ? SB_PEND_OWNER(w) : 0;
            found = 1;
        }
    }
    return found;
}

int sb_admin_ack_stalled(const shmbus_topic *t, uint32_t g, uint32_t entry)
{
    const struct sb_segment *seg = &t->seg;
    struct sb_shm_pending *e;
    uint64_t w;

    if (g >= seg->g.max_groups || entry >= seg->g.ack_entries)
        return 0;
    e = sb_pending(seg, g, entry);
    /* relaxed: the CAS below decides. */
    w = atomic_load_explicit(&e->word, memory_order_relaxed);
    if (SB_PEND_ST(w) != SB_PEND_RETURNED)
        return 0;
    /* seq_cst: as every pending word change. */
    if (!atomic_compare_exchange_strong_explicit(&e->word, &w,
                                                 SB_PEND_WORD(SB_PEND_GEN(w) + 1u,
                                                              SB_PEND_DELIVERIES(w),
                                                              SHMBUS_DL_STALLED, SB_PEND_DEAD) |
                                                     (w & SB_PEND_COPY),
                                                 memory_order_seq_cst, memory_order_relaxed))
        return 0;
    sb_ack_returned_less(&seg->groups[g]);
    return 1;
}

int sb_admin_ack_unowned(const shmbus_topic *t, uint32_t g, uint32_t entry, uint32_t owner)
{
    const struct sb_segment *seg = &t->seg;
    const struct sb_shm_slot *s;
    struct sb_shm_pending *e;
    uint64_t w;
    uint32_t st;

    if (g >= seg->g.max_groups || entry >= seg->g.ack_entries || owner == 0)
        return 0;
    if (owner <= seg->g.max_subs) {
        s = &seg->slots[owner - 1];
        /* seq_cst: as sb_admin_slot_evict()'s load, against the member's
         * own CAS out of ACTIVE. */
        st = atomic_load_explicit(&s->state, memory_order_seq_cst);
        /* relaxed group: written before the slot was published. */
        if ((st == SB_SLOT_ACTIVE || st == SB_SLOT_JOINING) &&
            atomic_load_explicit(&s->group, memory_order_relaxed) == g + 1)
            return 0; /* a member: evicting it gives the entry back */
    }
    e = sb_pending(seg, g, entry);
    /* seq_cst: as every pending word change; the CAS below decides. */
    w = atomic_load_explicit(&e->word, memory_order_seq_cst);
    if (SB_PEND_ST(w) != SB_PEND_HELD || SB_PEND_OWNER(w) != owner)
        return 0; /* acknowledged, given back or taken again meanwhile */
    if (!sb_ack_return(&seg->groups[g], e, w, SB_PEND_DELIVERIES(w), SHMBUS_DL_EVICTED))
        return 0;
    /* Members asleep take it now. */
    sb_wake_readers(seg->hdr, 0);
    return 1;
}
