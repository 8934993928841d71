/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's subscriptions and their links to topics (link.c),
 * made in slices of at most SBB_LINK_STEPS steps per pass of the I/O
 * thread's loop. A pattern's PSUBSCRIBE reply waits until the pattern is
 * linked to every topic that existed when it was made (its connection reads
 * nothing meanwhile); topics created later are linked to every subscription
 * in the following passes, each from its oldest message. I/O thread only.
 */
#ifndef SHMBUSD_BRIDGE_LINK_H
#define SHMBUSD_BRIDGE_LINK_H

#include <stddef.h>

/* Steps of matching and linking per pass: a glob step (sb_glob_steps())
 * costs about a nanosecond, a link SBB_LINK_COST steps. Measured on a
 * 2-vCPU VM: a pass of costly glob steps about 1 ms (another connection's
 * PING answered within 1.5 ms), a pass that matches a new topic against a
 * million channel subscriptions (a cache miss each) up to 4 ms. */
#define SBB_LINK_STEPS (1u << 20)

struct sbd_bridge;
struct sbd_registry;
struct sbb_conn;
struct sbb_sub;

/* Set up (the topics lists, room for --max-topics) and free. @return 0 or
 * -ENOMEM. */
int sbb_link_init(struct sbd_bridge *b);
void sbb_link_fini(struct sbd_bridge *b);
/* Install (or with @p b NULL, remove) the registry's on_create hook; the
 * topics there already are taken as seen. Before the I/O thread starts,
 * after it stopped. */
void sbb_link_hook(struct sbd_registry *reg, struct sbd_bridge *b);

/* Take the topics the hook listed: every subscription is behind them. */
void sbb_link_topics_new(struct sbd_bridge *b);
/* Use what is left of this pass's budget on the subscriptions that are
 * behind, in turn; then a new budget for the next pass. */
void sbb_link_work(struct sbd_bridge *b);
/* @return 1 if a subscription is behind (the loop should not sleep). */
int sbb_link_busy(const struct sbd_bridge *b);

/* A subscription a client asked for: a channel (a topic name, checked) or
 * a pattern, as it sent it; what came of it: the subscription, or why
 * filled. */
struct sbb_sub_req {
    int pattern;
    const char *name;
    size_t len;
    struct sbb_sub *sub;
    char *why;
    size_t why_len;
};

/*
 * Subscribe @p c to @p r's channel or pattern. A channel that names no
 * topic yet, and a pattern, are kept: topics created later are linked
 * when they appear. A channel is linked at once; a pattern within what is
 * left of the pass's budget, else later (sbb_link_sub_ready()).
 * @return 0 with r->sub (the subscription, maybe one @p c had), or an
 * error for the reply with r->why filled.
 */
int sbb_link_subscribe(struct sbd_bridge *b, struct sbb_conn *c, struct sbb_sub_req *r);
/* Is new subscription @p s linked to every topic that existed when it was
 * made? @return 0: reply, then sbb_link_sub_go(); 1: not yet, ask again in a
 * later pass; or an error for the reply (@p why filled; @p s is gone:
 * a PSUBSCRIBE is all or nothing). */
int sbb_link_sub_ready(struct sbb_sub *s, char *why, size_t why_len);
/* Would sbb_link_sub_ready() still say 1 (not yet)? No side effect. O(1). */
int sbb_link_sub_linking(const struct sbb_sub *s);
/* After the subscription's reply: start delivering along its links. */
void sbb_link_sub_go(struct sbb_sub *s);

struct sbb_sub *sbb_link_sub_find(struct sbb_conn *c, int pattern, const char *name, size_t len);
/* Unsubscribe: its links and itself go (after a grace period). */
void sbb_link_sub_del(struct sbb_sub *s);

#endif
