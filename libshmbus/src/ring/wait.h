/* SPDX-License-Identifier: Apache-2.0 */
/* Waiting for messages: bounded spin, then sleep on the topics' futexes. */
#ifndef SHMBUS_RING_WAIT_H
#define SHMBUS_RING_WAIT_H

#include <stdatomic.h>
#include <stdint.h>

#include "shm/layout.h"
#include "shmbus/shmbus.h"

/* A sleeper (subscriber or reliable publisher) wakes at least this often to
 * look again, so that a wake-up that never comes (the one who should send it
 * died) costs at most this much. */
#define SB_WAIT_SLICE_NS 50000000ull

/* Wait until one of @p subs is ready or the monotonic deadline passes
 * (UINT64_MAX: never). Spins for the shortest spin time among them first.
 * @return 0 (something may be ready: poll), SHMBUS_ERR_TIMEOUT, -EINTR. */
int sb_wait_any(shmbus_sub *const *subs, unsigned n, uint64_t deadline);

/* Is anything ready? Called with the order to read the cells with. */
typedef int (*sb_ready_fn)(void *arg, memory_order order);

/*
 * Sleep (no spin) on up to SHMBUS_WAITSET_MAX topics, for a caller that
 * keeps its subscribers elsewhere (a relay, registry/relay.h, whose
 * subscribers are shared under locks): until a publisher wakes us, @p ready returns
 * non-zero when asked after we count ourselves as sleepers, the monotonic
 * @p deadline passes, or *@p bell (unless NULL; a futex word of the
 * caller's that whoever changes it wakes with sb_futex_wake()) differs
 * from @p seen. The caller counts itself as a sleeper with @p weight (1,
 * or SB_RELAY_WEIGHT). @p n may be 0. Same returns as sb_wait_any().
 */
int sb_wait_topics(shmbus_topic *const *topics, unsigned n, uint32_t weight, sb_ready_fn ready,
                   void *arg, uint64_t deadline, _Atomic uint32_t *bell, uint32_t seen);

/* Take the weight @p *mine, which a sleeper that can no longer do it
 * counted in @p count (a dead owner's slot or record), back out of the
 * count, and clear it. Never below zero. @return the weight taken. */
uint32_t sb_wait_sleeper_take_back(_Atomic uint32_t *count, _Atomic uint32_t *mine);

/* After a death that may leave topic @p h's wake-pending word set with no
 * wake-up to follow (a publisher that died between setting it and waking,
 * or a sleeper woken that died before it ran and relayed): clear it and
 * wake every sleeper (the daemon, admin.c). */
void sb_wait_pending_settle(struct sb_shm_header *h);

#endif
