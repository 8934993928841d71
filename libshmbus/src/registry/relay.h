/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Relaying topics, for the daemon's bridge: a relay subscribes to topics
 * on behalf of others and delivers what it publishes into them itself.
 * It publishes quietly (its own sleep on the topic is not woken for it),
 * sleeps on many topics at once together with a bell of its own, and
 * counts itself among a topic's sleepers with a weight of its own
 * (SB_RELAY_WEIGHT), which a publisher tells apart from real sleepers.
 * For federation (the daemon's NATS link) it also publishes messages
 * imported from other buses, marked so, and holds an exporter's slot
 * until JetStream acknowledged, keeping it across the daemon's death for
 * the next one to adopt (ring/hold.c). The daemon uses this header, never
 * ring/ or shm/ internals; relay.c implements it on the ring.
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

/* Who published a message imported from another bus (NATS federation):
 * its seq on that bus, its publish time (CLOCK_REALTIME ns there) and its
 * publisher's pid. */
struct sb_relay_origin {
    uint64_t seq;
    uint64_t timestamp_ns;
    uint32_t pid;
};

/*
 * As shmbus_publish(), the message marked imported (its readers see
 * SHMBUS_MSG_IMPORTED, origin_seq @p o->seq, and @p o's timestamp and pid
 * instead of ours). @p o is borrowed for the call. An exporter skips what
 * is so marked: an imported message never leaves the bus again.
 * @return as shmbus_publish(); SHMBUS_ERR_INVALID also for a NULL @p o or
 * an origin seq of UINT64_MAX (a cell cannot carry it). Same thread rules
 * and blocking as shmbus_publish().
 */
int sb_relay_publish_imported(shmbus_pub *pub, const void *data, size_t len,
                              const struct sb_relay_origin *o, int64_t timeout_ns);

/*
 * Is the imported message @p o (same origin seq, time and pid) in a
 * committed cell that @p t's ring still holds? For an importer that may
 * have written a message and died (or lost its connection) before it
 * acknowledged it: a redelivery found here is acknowledged, not written
 * twice. Each cell is read under its stamp, as readers do: one being
 * rewritten meanwhile is never taken for a match. Looks at up to a
 * capacity of cells, newest first; gates nothing, writes nothing.
 * @return 1 found, 0 not (or a NULL argument). Thread-safe.
 */
int sb_relay_imported_held(shmbus_topic *t, const struct sb_relay_origin *o);

/*
 * Held subscribers, for an exporter that must not let publishers reuse a
 * cell before another system (JetStream) acknowledged its message. Hold
 * @p sub, a plain subscriber (no group, not an observer) of a reliable
 * topic: from now on reading does not move the position publishers wait
 * for; sb_relay_sub_release() does. shmbus_sub_stats_get() then reports
 * position = the read position and lag counted from the held one. The
 * publish and read protocols are unchanged: the slot's position still
 * only grows and only its owner writes it.
 * @return 0 (also if held already) or SHMBUS_ERR_INVALID. Same thread
 * rules as shmbus_poll() on @p sub.
 */
int sb_relay_sub_hold(shmbus_sub *sub);

/* The position @p sub holds publishers at (its read position if it is not
 * held; 0 for NULL). */
uint64_t sb_relay_sub_held(const shmbus_sub *sub);

/*
 * Let publishers reuse the cells of held @p sub below @p seq: they may
 * then publish up to seq - 1 + capacity. Requires held <= seq <= the read
 * position. @return 0; SHMBUS_ERR_INVALID (out of those bounds, or not
 * held): nothing changes; SHMBUS_ERR_EVICTED (the daemon evicted the
 * subscriber: it gates nothing any more). Wakes publishers asleep on a
 * full ring.
 */
int sb_relay_sub_release(shmbus_sub *sub, uint64_t seq);

/*
 * Read held @p sub again from @p seq (go-back-N: resend what was not
 * acknowledged). Requires held <= seq <= the read position; the messages
 * from seq on are still in the ring, as read before. Each is counted
 * again in the subscriber's received. @return 0, or SHMBUS_ERR_INVALID
 * (nothing changes).
 */
int sb_relay_sub_rewind(shmbus_sub *sub, uint64_t seq);

/*
 * Mark held @p sub's slot kept: if its owner dies, the daemon's reaper
 * asks its keeps hook (daemon/registry.h) before freeing the slot and,
 * told to, leaves it gating where the owner left it, for the next daemon
 * to adopt with sb_relay_sub_adopt(). Stall timeouts never evict a kept
 * slot. Destroying the subscriber frees the slot as any.
 * @return 0, or SHMBUS_ERR_INVALID (not held).
 */
int sb_relay_sub_keep(shmbus_sub *sub);

/*
 * Take over @p t's kept slot whose owner is dead (pid and start time,
 * util/proc.h; or an adopter that died adopting it), as the caller's:
 * *@p out is a held, kept subscriber reading from the slot's held
 * position. Of two adopters racing for one slot, one wins; a live owner's
 * slot is never taken. @p t must be a reliable topic mapped by the caller
 * (not through shmbus_open(): the daemon hands those slots out).
 * @return 0; -ENOENT if there is none; SHMBUS_ERR_INVALID; -ENOMEM.
 * Looks at /proc for each kept slot's owner. Thread-safe.
 */
int sb_relay_sub_adopt(shmbus_topic *t, shmbus_sub **out);

#endif
