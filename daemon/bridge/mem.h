/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's memory budgets (mem.c): every byte a connection makes
 * the daemon hold (its input and output buffers, its subscriptions and the
 * links from them to topics) is charged to the connection and to the whole
 * bridge. The whole bridge may hold --bridge-max-memory: a charge that would
 * pass it closes the connection that holds the most first (Redis's
 * maxmemory-clients), and fails only when the asking connection is itself
 * the largest. The subscriptions of one connection may hold
 * --bridge-max-sub-memory.
 */
#ifndef SHMBUSD_BRIDGE_MEM_H
#define SHMBUSD_BRIDGE_MEM_H

#include <stddef.h>

struct sbd_bridge;
struct sbb_conn;

/* sbb_conn.evicting of a closed or doomed connection: it can be chosen no more. */
#define SBB_EVICT_CLOSED ((size_t)-1)

/* Charge @p grow_by bytes of @p c's to the budget and give back
 * @p shrink_by. When the global budget would be passed, the largest other
 * connection is marked for closing (sbb_mem_evict_next()), and its bytes may
 * be used meanwhile. Any thread, any lock held (it takes none).
 * @return 0, or -1 (nothing charged): @p c holds the most, or is itself
 * being closed. */
int sbb_mem_charge(struct sbd_bridge *b, struct sbb_conn *c, size_t grow_by, size_t shrink_by);

/* Charge @p bytes of subscription state (a subscription, a link) to @p c:
 * within --bridge-max-sub-memory for the connection, then sbb_mem_charge().
 * I/O thread. @return 0, or SHMBUS_ERR_LIMIT with @p why filled. */
int sbb_mem_sub_charge(struct sbb_conn *c, size_t bytes, char *why, size_t why_len);
/* Give back @p bytes sbb_mem_sub_charge() took. I/O thread. */
void sbb_mem_sub_release(struct sbb_conn *c, size_t bytes);

/* The next connection marked for closing, or NULL: the caller closes it
 * (which calls sbb_mem_evict_done()). I/O thread, which owns the connection
 * list. */
struct sbb_conn *sbb_mem_evict_next(struct sbd_bridge *b);
/* @p c is closing (closed by the I/O thread, or doomed for a full output
 * buffer): give back the bytes its mark lent to others, and never mark it
 * again. Any thread; before @p c is unlisted. */
void sbb_mem_evict_done(struct sbb_conn *c);

#endif
