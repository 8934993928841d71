/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An RCU list: singly linked, one updater thread, readers in other threads
 * under urcu_memb_read_lock(); a removed node is freed after a grace period
 * (urcu_memb_call_rcu()). The bridge's subscription and connection lists.
 *
 * Written with C11 atomics rather than liburcu's cds_list: liburcu's list
 * operations are plain stores behind its own assembly barriers, which
 * ThreadSanitizer cannot see, so every traversal racing an update would be
 * reported and real races would hide among them. Here the publication is a
 * release store and every step of a traversal an acquire load (the
 * dependency order cds_list relies on, stated in C11 terms), and liburcu
 * still provides the grace periods that make removal safe.
 */
#ifndef SHMBUSD_BRIDGE_RLIST_H
#define SHMBUSD_BRIDGE_RLIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <urcu/compiler.h>

struct sbb_rnode {
    struct sbb_rnode *_Atomic next;
};

struct sbb_rlist {
    struct sbb_rnode *_Atomic first;
    struct sbb_rnode *last; /* the updater's */
};

static inline void sbb_rlist_init(struct sbb_rlist *l)
{
    atomic_init(&l->first, NULL); /* no order: not yet shared */
    l->last = NULL;
}

/* Updater: append @p n, whose contents are complete: a reader that finds
 * it sees them. */
static inline void sbb_rlist_append(struct sbb_rlist *l, struct sbb_rnode *n)
{
    /* relaxed: n is not reachable yet. */
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* release: n's contents before the pointer that reaches it. */
    atomic_store_explicit(l->last != NULL ? &l->last->next : &l->first, n, memory_order_release);
    l->last = n;
}

/* Updater: unlink @p n (if listed). A reader standing on it still reaches
 * the rest of the list through it; free it after a grace period. */
static inline void sbb_rlist_remove(struct sbb_rlist *l, struct sbb_rnode *n)
{
    struct sbb_rnode *_Atomic *pp = &l->first;
    struct sbb_rnode *prev = NULL, *cur;

    /* relaxed, the loads: the updater reads its own stores. */
    while ((cur = atomic_load_explicit(pp, memory_order_relaxed)) != n) {
        if (cur == NULL)
            return;
        prev = cur;
        pp = &cur->next;
    }
    /* release: a reader that now jumps to n's successor must see that
     * node's contents, which this thread wrote before (transitively).
     * relaxed, the load of n->next: the updater's own store. */
    atomic_store_explicit(pp, atomic_load_explicit(&n->next, memory_order_relaxed),
                          memory_order_release);
    if (l->last == n)
        l->last = prev;
}

/* Readers (and the updater): the first node and the next, or NULL.
 * acquire: pairs with the release stores above. */
static inline struct sbb_rnode *sbb_rlist_first(struct sbb_rlist *l)
{
    return atomic_load_explicit(&l->first, memory_order_acquire);
}

/* acquire: pairs with the release store of the node's successor. */
static inline struct sbb_rnode *sbb_rlist_next(struct sbb_rnode *n)
{
    return atomic_load_explicit(&n->next, memory_order_acquire);
}

/* Iterate: @p pos (a struct pointer) over the list's entries; @p nx holds
 * the next node so that the body may remove @p pos (updater only). */
#define sbb_rlist_each(pos, nx, list, type, member)                                                \
    for (struct sbb_rnode *nx##_n = sbb_rlist_first(list), *nx = NULL;                             \
         nx##_n != NULL &&                                                                         \
         ((pos) = caa_container_of(nx##_n, type, member), nx = sbb_rlist_next(nx##_n), 1);         \
         nx##_n = nx)

#endif
