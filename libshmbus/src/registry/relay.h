/*
 * Relaying topics, for the daemon's bridge: a relay subscribes to topics
 * on behalf of others and delivers what it publishes into them itself.
 * It publishes quietly (its own sleep on the topic is not woken for it),
 * sleeps on many topics at once together with a bell of its own, and
 * counts itself among a topic's sleepers with a weight of its own
 * (SB_RELAY_WEIGHT), which a publisher tells apart from real sleepers.
 * The daemon uses this header, never ring/ or shm/ internals; relay.c
 * implements it on the ring.
 */
#ifndef SHMBUS_REGISTRY_RELAY_H
#define SHMBUS_REGISTRY_RELAY_H

#include <stdatomic.h>
#include <stdint.h>

#include "shmbus/shmbus.h"

/*
 * The weight with which a relay counts itself as a sleeper on a topic (a
 * subscriber counts 1): far above any number of slots, so a topic's
 * data_waiters == SB_RELAY_WEIGHT means "only the relay sleeps" (what a
 * quiet publisher does not wake), and a daemon that adopts a segment takes
 * the weight a dead one left out of the count (admin.h
 * sb_admin_waiters_settle()).
 */
#define SB_RELAY_WEIGHT (1u << 16)

/* Topics one sb_relay_wait() covers: they and the bell go to one
 * futex_waitv call of at most SHMBUS_WAITSET_MAX words. */
#define SB_RELAY_TOPICS_MAX (SHMBUS_WAITSET_MAX - 1)

/* Is anything ready? Called with the order to read the cells with (pass
 * it to sb_relay_sub_ready()). */
typedef int (*sb_relay_ready_fn)(void *arg, memory_order order);

/*
 * Make @p pub (the caller's) skip the wake-up when a relay is the only
 * sleeper on its topic: the relay delivers what it publishes itself, right
 * after publishing. Any other sleeper is still woken: it counted itself
 * before re-checking the cells, so it either shows in the count or sees
 * the message. Call before publishing, from the publisher's thread.
 */
void sb_relay_pub_quiet(shmbus_pub *pub);

/*
 * Is a message (or an error to report) at @p sub's position? @p order is
 * the order of the cell's stamp load: memory_order_acquire to poll after
 * it, or the order an sb_relay_ready_fn is called with. Does not move the
 * subscriber. @return 1, 0, or a negative error. Same thread rules as
 * shmbus_sub_ready().
 */
int sb_relay_sub_ready(shmbus_sub *sub, memory_order order);

/*
 * Sleep (no spin) on @p n (0..SB_RELAY_TOPICS_MAX) topics, counted as a
 * relay (SB_RELAY_WEIGHT), until a publisher wakes us, @p ready returns
 * non-zero when asked after we count ourselves as sleepers, the monotonic
 * @p deadline passes, or *@p bell (unless NULL) differs from @p seen
 * (sb_relay_bell_seen() before looking at what the ringer changed). Wakes
 * at least every few tens of milliseconds to let the caller look again.
 * @return 0 (something may be ready: look), SHMBUS_ERR_TIMEOUT, -EINTR, or
 * SHMBUS_ERR_INVALID for more than SB_RELAY_TOPICS_MAX topics, or for
 * nothing to sleep on (no topic and no bell): nothing done. Blocks;
 * thread-safe.
 */
int sb_relay_wait(shmbus_topic *const *topics, unsigned n, sb_relay_ready_fn ready, void *arg,
                  uint64_t deadline, _Atomic uint32_t *bell, uint32_t seen);

/* The value of @p bell to pass to sb_relay_wait(), read before looking at
 * what the ringer changed; acquire, paired with sb_relay_bell_ring(). */
uint32_t sb_relay_bell_seen(_Atomic uint32_t *bell);

/* Ring @p bell: what the caller changed before is visible to a relay that
 * reads the new value (release), and a relay asleep on it wakes. */
void sb_relay_bell_ring(_Atomic uint32_t *bell);

#endif
