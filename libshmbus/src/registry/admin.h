/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What shmbusd does to a topic segment beyond the public API: planning a
 * segment's size, handing out subscriber slots on behalf of clients,
 * numbering named consumer groups, and taking back what a client that left
 * without cleaning up still held. Used by the daemon, and by a client for
 * what no daemon can do for it any more (registry/client.c: a slot whose
 * daemon died, a topic no daemon serves).
 */
#ifndef SHMBUS_REGISTRY_ADMIN_H
#define SHMBUS_REGISTRY_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "shmbus/shmbus.h"

/* The bounds sb_admin_plan() holds a topic's options to, for the daemon's
 * messages: layout.h's SB_CAPACITY_MIN, SB_CAPACITY_MAX (1 << BITS),
 * SB_MAX_MSG_MAX and SB_SUBS_MAX, which admin.c asserts these equal; the
 * groups' is SB_ADMIN_GROUPS_MAX (below). */
#define SB_ADMIN_CAPACITY_MIN  2u
#define SB_ADMIN_CAPACITY_BITS 24u
#define SB_ADMIN_MSG_MAX       (16u << 20)
#define SB_ADMIN_SUBS_MAX      1024u

/* The options @p o means once defaults are applied (into @p eff) and the
 * segment size they take. @return 0, or SHMBUS_ERR_INVALID. */
int sb_admin_plan(const shmbus_topic_opts *o, shmbus_topic_opts *eff, uint64_t *size);

/* A daemon that died while its bridge pump slept on this topic left the
 * pump's weight (SB_RELAY_WEIGHT, relay.h) in the sleeper count, and every
 * publish would then make a wake-up call for nobody. Only daemons use that
 * weight, and one adopting the segment has no pump on it yet: take every
 * such weight out, keeping the count of real sleepers, and then, as the
 * dead pump may have taken a wake-up it never passed on, clear the
 * wake-pending word and wake the real sleepers (sb_wait_pending_settle()). */
void sb_admin_waiters_settle(const shmbus_topic *t);

/* Mark the topic removed for good, before its segment is unlinked: every
 * handle's publish, claim, poll and receive then fails with
 * SHMBUS_ERR_TOPIC_GONE, and sleepers (subscribers and reliable
 * publishers) are woken to see it. */
void sb_admin_topic_gone(const shmbus_topic *t);

/* Map the segment open on @p fd (which stays the caller's) as a topic:
 * what shmbus_topic_attach() does once it has the descriptor, for a caller
 * that checked the file first. @return 0 with *out set, or as
 * shmbus_topic_attach(). */
int sb_admin_topic_map(int fd, shmbus_topic **out);

/* The topic's segment file (still owned by the topic handle). */
int sb_admin_topic_fd(const shmbus_topic *t);

/* The topic's mapping: *base and *len. */
void sb_admin_mapping(const shmbus_topic *t, void **base, size_t *len);

/* When the topic's segment was made (CLOCK_REALTIME ns, fixed in its
 * header): a topic removed and made again starts its seqs at 0 again, and
 * this tells the two apart (federation's Shmbus-Epoch). */
uint64_t sb_admin_topic_epoch(const shmbus_topic *t);

/* Take a free slot for process @p pid started at @p start (util/proc.h):
 * state INIT, owner set. @return the slot index, or SHMBUS_ERR_NO_SLOT. */
int sb_admin_slot_take(const shmbus_topic *t, uint32_t pid, uint64_t start);

/* What owns slot or record @p idx. */
enum sb_admin_kind { SB_ADMIN_SLOT, SB_ADMIN_PUB };

/* The owner of slot or publisher record @p idx, if it has a known one (in
 * use and its pid written). @return 1 with *pid and *start set, else 0. */
int sb_admin_owner(const shmbus_topic *t, enum sb_admin_kind kind, uint32_t idx, uint32_t *pid,
                   uint64_t *start);

/*
 * Free slot @p idx. A slot its owner already left (INIT) just becomes FREE.
 * One still in use (its owner died, or closed its connection without
 * destroying the subscriber) is taken back: if it was seating its group's
 * cursor the seat is finished for it, it stops gating publishers (who are
 * woken), and a group left without members stops holding publishers back.
 * An acknowledging member's pending messages go back to its group
 * (HELD -> RETURNED, reason SHMBUS_DL_DIED, or SHMBUS_DL_LEFT when
 * !@p dead; a message it was taking when it died, too: ring/ack.c), its
 * reserved entry is freed, and sleeping members are woken to take them.
 * @p dead: count it in the topic's reaped counter.
 * @return the number of messages given back to the group.
 */
uint32_t sb_admin_slot_free(const shmbus_topic *t, uint32_t idx, int dead);

/* Mark the publisher record @p idx of a dead process DEAD (counted as
 * reaped): nobody takes it until sb_admin_pub_settle() has ended its claim.
 * The mark lives in the segment, so a daemon that replaces us finishes it.
 * @return 1 marked, 0 it was not ACTIVE (nothing to do). */
int sb_admin_pub_dead(const shmbus_topic *t, uint32_t idx);

/* Is record @p idx DEAD? */
int sb_admin_pub_is_dead(const shmbus_topic *t, uint32_t idx);

/* The seq DEAD record @p idx claimed when its owner died, which
 * sb_admin_pub_settle() ends (for the daemon's events). @return 1 with
 * *seq set; 0 if the record is not DEAD or claimed no seq (idle, or about
 * to claim one). */
int sb_admin_pub_dead_claim(const shmbus_topic *t, uint32_t idx, uint64_t *seq);

/*
 * End what DEAD record @p idx may have left open, and free it when done: a
 * claimed seq whose cell it never committed becomes SKIPPED (readers count
 * one lost message and move on); on an exclusive topic the daemon takes
 * the publisher token, which settles the holder's last claim (pub.c).
 * Waits for nobody: when a live writer has to finish first (the cell's
 * previous lap; a live publisher that may own an unmarked seq; a fork
 * child still holding the token), it says so and is called again later.
 * @return 1 done (record freed), 0 retry later (or not DEAD).
 */
int sb_admin_pub_settle(const shmbus_topic *t, uint32_t idx);

/*
 * Stall timeouts (daemon/stall.c). Evict subscriber slot @p idx of a
 * reliable topic, ACTIVE or JOINING: it stops gating (publishers go on),
 * its owner's next call fails with SHMBUS_ERR_EVICTED (a sleeping owner is
 * woken for it), a seat it was placing is finished for it, and a group left
 * with no member in use stops gating. The owner keeps the slot until it
 * destroys its subscriber or dies. @return 1 evicted, 0 not (it left).
 */
int sb_admin_slot_evict(const shmbus_topic *t, uint32_t idx);

/* The same, for an acknowledging member too: its pending messages (and
 * one it is taking) go back to its group (reason SHMBUS_DL_EVICTED) and
 * sleeping members are woken to take them. @p returned (unless NULL):
 * set to the number of messages given back (0 if not evicted).
 * sb_admin_slot_evict() is this with @p returned NULL. */
int sb_admin_slot_evict_count(const shmbus_topic *t, uint32_t idx, uint32_t *returned);

/* The seq slot @p idx gates at (a plain subscriber's position, a group
 * member's hold), if the ring is full against it: @p tail, the ring's
 * tail as the caller read it, a capacity or more ahead. The cell at the
 * gate, which publishers write, is read only then. @return 1 with *gate
 * set; 0 if it gates nothing itself, the ring is not full against it, or
 * it waits for a message that is not there yet (not its stall). */
int sb_admin_slot_gate(const shmbus_topic *t, uint32_t idx, uint64_t tail, uint64_t *gate);

/* The seq group @p g (0-based) gates at, if the ring is full against it
 * (as sb_admin_slot_gate()). @return 1 with *gate set, 0 if it has no
 * members, is being seated, the ring is not full against it, or it waits
 * for a message not there yet. */
int sb_admin_group_gate(const shmbus_topic *t, uint32_t g, uint64_t tail, uint64_t *gate);

/* Is slot @p idx kept (layout.h; registry/relay.h sb_relay_sub_keep())
 * for its owner, or one adopting it: marked so, and an ACTIVE plain
 * subscriber's, the only kind sb_relay_sub_adopt() takes? */
int sb_admin_slot_kept(const shmbus_topic *t, uint32_t idx);

/* Is slot @p idx a member of group @p g (0-based)? */
int sb_admin_slot_member_of(const shmbus_topic *t, uint32_t idx, uint32_t g);

/* The name of group @p g (0-based) into @p out, read from the segment and
 * checked as any name from shared memory (the daemon's dead letters name
 * their group). @return 0; -ENOENT if it has none, or g is out of range;
 * SHMBUS_ERR_CORRUPT if what is there is no group name. */
int sb_admin_group_name(const shmbus_topic *t, uint32_t g, char out[SHMBUS_GROUP_NAME_MAX + 1]);

/* The seq of the last claim of record @p idx that the daemon ended (the
 * record keeps it, across daemon restarts). @return 1 with *seq, or 0. */
int sb_admin_pub_ended(const shmbus_topic *t, uint32_t idx, uint64_t *seq);

/* The seq a live publisher record @p idx holds a claim on. @return 1 with
 * *seq set, 0 if it is idle, waiting to claim, or not in use. */
int sb_admin_pub_claim(const shmbus_topic *t, uint32_t idx, uint64_t *seq);

/*
 * End the claim on @p seq of live publisher record @p idx, held past the
 * stall timeout, as a dead publisher's (SKIPPED; readers count one lost
 * message and go on; counted as unblocked). The record says so first,
 * and the writer's commit then returns SHMBUS_ERR_OVERRUN and leaves the
 * cell alone, so that a mark a newer claim left there is ours to hand on.
 * Not for exclusive topics, whose holder is the cell's only writer.
 * @p resumed: the writer was told already (sb_admin_pub_ended()): it may
 * have moved on, and only what it left on the cell is handed on; one
 * look, no wait. @return 1 ended (or, resumed, a mark handed on); 0
 * nothing to do (the cell is final, or the writer waits for it, or
 * another live writer is in flight on it before the writer was told);
 * -EAGAIN the writer was told, but another writer is in flight on the
 * cell: look again (resumed) at the next scan.
 */
int sb_admin_pub_unblock(const shmbus_topic *t, uint32_t idx, uint64_t seq, int resumed);

/*
 * Live record @p idx has claimed @p seq past the stall timeout: end the
 * seqs after it that its claim, a batch (shmbus_publish_vec()), holds and
 * has not started, as SKIPPED (readers count them lost; counted as
 * unblocked), while the record still claims @p seq. Each cell goes to this
 * or to the writer's take, whichever comes first; a writer that finds one
 * ended ends its batch there (pub.c). One look, no wait: a cell whose
 * previous lap is not final is left to the next call.
 * @return how many seqs were ended now.
 */
int sb_admin_pub_end_rest(const shmbus_topic *t, uint32_t idx, uint64_t seq);

/* Groups with members counted but no member slot in use (members died or
 * were evicted between their join and naming it, layout.h counted) stop
 * holding publishers back. */
void sb_admin_groups_reconcile(const shmbus_topic *t);

/* Most groups a topic has (layout.h SB_GROUPS_MAX): bits of @p busy below. */
#define SB_ADMIN_GROUPS_MAX 256u

/* The same, leaving out the groups marked in bitmap @p busy (bit g of
 * busy[g / 64] for group g, 0-based; NULL: none): groups the caller saw a
 * member slot in use in (sb_admin_slot_member()), which have nothing to
 * reset, and whose cursor words, which every take writes, are then not
 * read. A group left out wrongly (its members left since) is reconciled
 * at the caller's next look. */
void sb_admin_groups_reconcile_except(const shmbus_topic *t, const uint64_t *busy);

/* The 1-based group of slot @p idx if it is a member in use (ACTIVE,
 * JOINING or LEAVING), else 0. Reads the slot's first line only, which the
 * daemon's scan reads for its owner anyway. */
uint32_t sb_admin_slot_member(const shmbus_topic *t, uint32_t idx);

/*
 * What a member asks of its group's acknowledgements (SHMBUS_SUB_ACK):
 * max_deliveries 0 and dead_letter NULL take what the group has, or for a
 * new group the defaults (SHMBUS_MAX_DELIVERIES_DEFAULT, "<topic>.dlq",
 * made from topic, the topic's name).
 */
struct sb_admin_ack {
    uint32_t max_deliveries;
    const char *dead_letter;
    const char *topic;
};

/*
 * The 1-based number of the group named @p name, numbering a new group
 * (the first never named) when none has the name yet. @p ack: the
 * member acknowledges (NULL: it does not). A new group takes the member's
 * kind: an acknowledged one gets its max_deliveries and dead-letter topic
 * written in the segment before its name, so before the number goes out.
 * An existing group is compared: a member of the other kind, or asking
 * for another max_deliveries or dead-letter topic than the group has,
 * is refused.
 * @return the number; SHMBUS_ERR_LIMIT when every group is named;
 *         SHMBUS_ERR_MISMATCH; SHMBUS_ERR_INVALID (an acknowledging member
 *         of a lossy topic, max_deliveries over SHMBUS_MAX_DELIVERIES_MAX,
 *         a dead-letter topic that is the topic itself, no topic name to
 *         make the default from); SHMBUS_ERR_BAD_NAME (a dead-letter name,
 *         given or made, that is no valid topic name).
 */
int sb_admin_group_number(const shmbus_topic *t, const char *name, const struct sb_admin_ack *ack);

/* Group @p g's (0-based) dead-letter topic, read back from the segment
 * and checked as any name from shared memory (a daemon adopting the
 * segment knows it so). @return 0 with @p out (@p cap bytes) set;
 * -ENOENT if the group does not acknowledge; SHMBUS_ERR_CORRUPT for a
 * name that is not one; -ENOSPC if @p cap is too small. */
int sb_admin_ack_dead_letter(const shmbus_topic *t, uint32_t g, char *out, size_t cap);

/* A message to dead-letter (sb_admin_ack_dead_next()). data points into
 * the ring, valid while the entry stays DEAD (it gates publishers); or,
 * for an entry returned from a take the daemon could not confirm (it may
 * gate nothing: ring/ack.c), into copy, a checked copy owned by the
 * caller until sb_admin_ack_dead_done() frees it. */
struct sb_admin_dead {
    uint32_t group; /* 0-based */
    uint32_t entry; /* in the group's pending table */
    uint64_t seq;
    uint64_t timestamp_ns;
    uint32_t pid; /* its publisher's */
    uint32_t deliveries;
    uint32_t reason; /* enum shmbus_dead_letter_reason */
    const void *data;
    uint32_t len;
    void *copy; /* NULL, or what data points to */
};

/*
 * The next message to dead-letter, from position @p pos (start at 0) over
 * every group's pending entries: a RETURNED entry whose deliveries reached
 * its group's max_deliveries is moved to DEAD; a DEAD one (an earlier
 * attempt that failed, or a previous daemon's) is handed out again. An
 * entry whose cell no longer shows its message (a scribbled segment, or
 * a returned copy of a message another member took) is freed, and
 * counted in the topic's abandoned counter unless it was such a copy
 * (ring/ack.c). An entry whose copy finds no memory stays DEAD. Call
 * sb_admin_ack_dead_done() for each one handed out.
 * @return 1 with @p out set and *pos past it; 0 when none is left.
 */
int sb_admin_ack_dead_next(const shmbus_topic *t, uint32_t *pos, struct sb_admin_dead *out);

/* The daemon's attempt at @p d is over; d->copy is freed. @p moved:
 * published to the dead-letter topic: the entry is freed (acknowledged
 * in the original topic), the group's dead_lettered counted, publishers
 * woken. Else it
 * stays DEAD, still gating, and the group's dead_letter_failed counts it;
 * the next sb_admin_ack_dead_next() pass hands it out again. */
void sb_admin_ack_dead_done(const shmbus_topic *t, const struct sb_admin_dead *d, int moved);

/* Group @p g's (0-based) lowest pending entry that gates publishers
 * (HELD, RETURNED or DEAD). @return 1 with *seq, *entry and *owner (the
 * holding member's slot index + 1 if HELD, else 0) set; 0 if none. */
int sb_admin_ack_gate(const shmbus_topic *t, uint32_t g, uint64_t *seq, uint32_t *entry,
                      uint32_t *owner);

/* Entry @p entry of group @p g held publishers back past the stall
 * timeout while waiting for its redelivery: move it RETURNED -> DEAD with
 * reason SHMBUS_DL_STALLED, for sb_admin_ack_dead_next() to hand out.
 * @return 1 if moved, 0 if it was no longer RETURNED. */
int sb_admin_ack_stalled(const shmbus_topic *t, uint32_t g, uint32_t entry);

/* Entry @p entry of group @p g, HELD by @p owner (sb_admin_ack_gate()),
 * held publishers back past the stall timeout, and @p owner is no member
 * of the group to evict for it: its slot is not ACTIVE or JOINING in
 * group @p g (it left, was evicted, serves another group or nobody), or
 * no slot at all (a scribbled word). Give the entry back to the group,
 * reason SHMBUS_DL_EVICTED, and wake the members. @return 1 given back, 0
 * not (its owner is a member, or the entry moved meanwhile). */
int sb_admin_ack_unowned(const shmbus_topic *t, uint32_t g, uint32_t entry, uint32_t owner);

#endif
