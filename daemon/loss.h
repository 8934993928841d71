/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loss scanner: every SBD_LOSS_TICK_MS, a daemon thread reads the
 * counters every subscriber slot already keeps in its segment (the
 * `lost` mirror a subscriber stores after each poll) and tells, as a
 * "loss" event (events.h), each slot whose count moved since the last
 * look: the delta and the total. It reads one cache line per busy slot
 * per tick and writes nothing into segments, so no client's path does
 * any more work for it. Its memory is one small record per slot of each
 * topic that had a busy slot.
 */
#ifndef SHMBUSD_LOSS_H
#define SHMBUSD_LOSS_H

struct sbd_registry;
struct sbd_loss;

/* Time between two looks (the least time between two "loss" events of
 * one subscriber). */
#define SBD_LOSS_TICK_MS 100u

/* Start the scanner's thread over @p r's topics. Losses counted before
 * its first look at a topic that was there at start (one a previous
 * daemon left) are not told; a topic created later is followed from its
 * creation. Control thread. @return 0 with *out set, or -errno (logged). */
int sbd_loss_start(struct sbd_registry *r, struct sbd_loss **out);

/* Stop the thread and free what it kept. NULL: nothing. Control thread,
 * before the registry goes. */
void sbd_loss_stop(struct sbd_loss *l);

#endif
