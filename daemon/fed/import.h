/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation's import over core NATS: one subscription on PREFIX.>, with
 * bounded pending limits, read by the link thread. Each message is
 * checked (subject, headers), matched against the import patterns (the
 * persisted topics are JetStream's, skipped here), its topic created on
 * the first message if missing, its origin's order checked (gaps are
 * lost_in, repeats dups), and it is written into the local ring marked
 * imported (sb_relay_publish_imported()).
 */
#ifndef SHMBUSD_FED_IMPORT_H
#define SHMBUSD_FED_IMPORT_H

#include <nats/nats.h>

struct sbd_fed;
struct sbd_fed_pattern;

/* Subscribe through the new connection @p nc, the old subscription
 * dropped first. Without import patterns, nothing. Link thread. */
void sbf_import_relink(struct sbd_fed *f, natsConnection *nc);

/* Wait up to @p ms for a message and import what came. @return 1 if
 * there is a subscription (it waited), 0 if not (the caller sleeps).
 * Link thread. */
int sbf_import_poll(struct sbd_fed *f, unsigned ms);

/* The local topic @p name for an import: found, or created with @p p's
 * creation options (NULL: the bus's defaults); NULL if it cannot be
 * (counted in the orphan lost_in, logged). Any registered thread, under
 * no read lock. Also the JetStream importer's (jsimport.c). */
struct sbd_topic *sbf_import_topic(struct sbd_fed *f, const char *name,
                                   const struct sbd_fed_pattern *p);

/* Drop the subscription and every imported topic's publisher. After the
 * link thread ended and the connection closed (sbf_link_stop()). */
void sbf_import_drop(struct sbd_fed *f);

#endif
