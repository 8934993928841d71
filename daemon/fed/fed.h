/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation: the bus's topics shared with other buses through NATS
 * (shmbusd --nats, docs/design.md "Federation"). Local messages of the
 * exported topics go out on subjects PREFIX.TOPIC with the origin's
 * metadata in NATS headers; messages of other buses on imported topics
 * come in and are written into the local rings, marked imported
 * (SHMBUS_MSG_IMPORTED), so that they are never sent out again. Lossy
 * topics go over core NATS; the topics --persist names go through
 * JetStream. It runs in threads of its own beside the control thread and
 * cnats's; the rest of the daemon sees only this header.
 */
#ifndef SHMBUSD_FED_H
#define SHMBUSD_FED_H

#include <stdint.h>

#include "config.h"
#include "registry.h"
#include "shmbus/monitor.h"

struct sbd_fed;

/* 1 if @p s is a valid --nats-prefix: 1..SBD_NATS_NAME_MAX characters,
 * tokens of [A-Za-z0-9_-] separated by single dots. Else 0. */
int sbd_fed_prefix_ok(const char *s);

/* 1 if @p s is a valid --nats-origin: 1..SBD_NATS_NAME_MAX characters of
 * [A-Za-z0-9_-]. Else 0. */
int sbd_fed_origin_ok(const char *s);

/* The default origin: @p host up to its first '.', any character outside
 * [A-Za-z0-9_-] turned into '_', then '_', then @p bus; cut to
 * SBD_NATS_NAME_MAX characters (bus names are shorter, and kept whole:
 * the host part is cut). An empty host gives "host". */
void sbd_fed_default_origin(const char *host, const char *bus, char out[SBD_NATS_NAME_MAX + 1]);

/* Connect to cfg->nats_urls (in the background: a server that cannot be
 * reached yet is retried forever while the bus serves), start the
 * threads, and federate the existing topics and those created from now on
 * (a registry listener). Call before the control loop runs.
 * No --nats: *out = NULL, returns 0.
 * @return 0 or -errno (out of memory, no thread, a cnats option refused). */
int sbd_fed_start(const struct sbd_config *cfg, struct sbd_registry *reg, struct sbd_fed **out);

/* Stop the threads, close the NATS connection and give back every slot
 * and publisher the federation holds. Before the registry goes. Accepts
 * NULL. */
void sbd_fed_stop(struct sbd_fed *f);

/* The federation for `shmbus stat`: the link and the totals over the
 * topics into @p info (NULL @p f: state SHMBUS_NATS_OFF, all zero), and up
 * to @p cap federated topics with ids above @p after into @p topics, in
 * order of id (@p topics may be NULL when @p cap is 0). Any registered
 * thread (the control thread). @return the topics stored. */
unsigned sbd_fed_stat(struct sbd_fed *f, uint64_t after, shmbus_nats_info *info,
                      shmbus_nats_topic *topics, unsigned cap);

#endif
