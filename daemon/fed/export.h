/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation's export over core NATS: exporter threads that each serve up
 * to SBF_EXPORT_TOPICS topics (the bridge's pump, state.h sbf_exporter):
 * one plain subscriber per exported topic, read as fast as it comes with
 * shmbus_poll(), sleeping in sb_relay_wait() with a bell for changes;
 * each local message (imported ones skipped) is published on PREFIX.TOPIC
 * with the Shmbus-* headers. Nothing here waits for NATS beyond cnats's
 * write deadline: what cnats cannot take now (disconnected past its
 * reconnect buffer, over the server's max_payload) is lost_out.
 */
#ifndef SHMBUSD_FED_EXPORT_H
#define SHMBUSD_FED_EXPORT_H

#include <nats/nats.h>
#include <stdint.h>

struct sbd_fed;
struct sbf_meta;
struct sbf_topic;

/* A NATS message on @p subject carrying @p len bytes of @p data and @p m's
 * Shmbus-* headers and Nats-Msg-Id (Shmbus-Count and Shmbus-Prev when @p m
 * has them), for the core and the JetStream exporters alike.
 * @return NATS_OK with it in *@p out (the caller's), or a cnats status
 * with *@p out NULL. */
natsStatus sbf_export_msg(const struct sbf_meta *m, const char *topic, const char *subject,
                          const void *data, uint32_t len, natsMsg **out);

/* Start exporting @p ft: its subscriber (from the next message), and an
 * exporter with room, started if none has. Under f->mu.
 * @return 0 or a negative error (logged by the caller). */
int sbf_export_add(struct sbd_fed *f, struct sbf_topic *ft);

/* Stop exporting @p ft: its subscriber is destroyed now (its slot no
 * longer gates), its exporter forgets it. Under f->mu. */
void sbf_export_take(struct sbd_fed *f, struct sbf_topic *ft);

/* Stop and join every exporter and destroy their subscribers. After the
 * manager stopped (nothing adds topics any more). */
void sbf_export_stop(struct sbd_fed *f);

#endif
