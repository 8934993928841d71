/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's pumps: threads that each serve up to SBB_PUMP_TOPICS
 * topics with remote subscribers (state.h), polling each topic's one
 * shared subscriber and copying its messages to the subscribed
 * connections' outputs, and the delivery round the I/O thread also runs
 * after it publishes (sbb_pump_deliver(), sbb_pump_flush()).
 */
#ifndef SHMBUSD_BRIDGE_PUMP_H
#define SHMBUSD_BRIDGE_PUMP_H

/* Bytes of payload after which a delivery round stops taking messages
 * before SBB_BATCH (state.h): a round's output is bounded in bytes too. */
#define SBB_ROUND_BYTES (256u * 1024)

struct sbd_bridge;
struct sbb_batch;
struct sbb_pump;
struct sbb_topic;

/* Wake pump @p p (it looks at its topics again). Any thread. */
void sbb_pump_ring(struct sbb_pump *p);
/* Start pump @p idx. @return 0 or -errno. */
int sbb_pump_start(struct sbd_bridge *b, unsigned idx);
/* Stop and join pump @p p and free it; the topics it still serves are
 * dropped (their subscribers destroyed). */
void sbb_pump_stop(struct sbb_pump *p);
/* Hand @p bt to pump @p p, or take it back: its subscriber is destroyed
 * at once (its slot freed), the pump frees @p bt after a grace period.
 * I/O thread. */
void sbb_pump_give(struct sbb_pump *p, struct sbb_topic *bt);
void sbb_pump_take(struct sbb_pump *p, struct sbb_topic *bt);

/* Deliver what is ready on @p bt into @p batch: call under the read lock,
 * holding bt->poll_mu. A damaged cell is skipped (one message lost, told
 * to JSON subscribers by the next delivery's lost) and delivery goes on.
 * @return messages taken, or 1 after a damaged cell; above 0: poll again
 * before sleeping. */
int sbb_pump_deliver(struct sbd_bridge *b, struct sbb_batch *batch, struct sbb_topic *bt);
/* Write out every connection of @p batch's dirty list; under the read
 * lock. Starts a new round. */
void sbb_pump_flush(struct sbb_batch *batch);
void sbb_pump_batch_free(struct sbb_batch *batch);

#endif
