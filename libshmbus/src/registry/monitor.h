/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Monitoring through the daemon: the conversions between the public
 * structs of shmbus/monitor.h and the LIST, BRIDGE and NATS reply bodies
 * of wire.h, and the bridge's counters as the daemon keeps them. The public
 * structs never travel as they are: the daemon encodes a reply field by
 * field, and the client decodes it field by field, so either side can
 * change without changing the protocol. monitor.c also holds
 * shmbus_topic_groups_get() (shmbus/monitor.h), which needs no daemon: it
 * reads a topic's groups from its segment.
 */
#ifndef SHMBUS_REGISTRY_MONITOR_H
#define SHMBUS_REGISTRY_MONITOR_H

#include <stdatomic.h>

#include "registry/wire.h"
#include "shmbus/monitor.h"

/* Encode @p e into @p w: every byte of @p w is written, padding zeroed;
 * the name is sent up to its NUL, zero-padded (as every string here). */
void sb_monitor_topic_put(struct sb_wire_topic *w, const shmbus_topic_entry *e);

/* Decode @p w into @p e; the name is NUL-terminated whatever was sent. */
void sb_monitor_topic_get(shmbus_topic_entry *e, const struct sb_wire_topic *w);

/* Encode the totals of a BRIDGE reply, listen zero-padded (count and pad
 * are left alone). */
void sb_monitor_bridge_put(struct sb_wire_bridge_ok *w, const shmbus_bridge_info *info);

/* Decode the totals of a BRIDGE reply; listen is NUL-terminated. */
void sb_monitor_bridge_get(shmbus_bridge_info *info, const struct sb_wire_bridge_ok *w);

/* Encode one connection of a BRIDGE reply: every byte of @p w is written,
 * its strings NUL-terminated and zero-padded. */
void sb_monitor_conn_put(struct sb_wire_bridge_conn *w, const shmbus_bridge_conn *c);

/* Decode one connection of a BRIDGE reply; its strings are NUL-terminated. */
void sb_monitor_conn_get(shmbus_bridge_conn *c, const struct sb_wire_bridge_conn *w);

/* Encode the link and totals of a NATS reply, strings zero-padded (count
 * and pad are left alone). */
void sb_monitor_nats_put(struct sb_wire_nats_ok *w, const shmbus_nats_info *info);

/* Encode one federated topic of a NATS reply: every byte of @p w is
 * written, the name NUL-terminated and zero-padded. */
void sb_monitor_nats_topic_put(struct sb_wire_nats_topic *w, const shmbus_nats_topic *t);

/*
 * Check a NATS reply body of @p len bytes, the answer to a request for
 * the topics after @p after, and decode it: the link and totals into
 * @p info, the first @p cap of its topics into @p out (NULL when @p cap is
 * 0). Refused: a length that is not that of its count, more than
 * SB_WIRE_NATS_MAX topics, an unknown state, a daemon OFF that lists
 * topics, a topic with an unknown flag or neither direction, a name that
 * is no topic name, ids that do not each exceed @p after and the one
 * before. Strings come out NUL-terminated whatever was sent.
 * @return the number of topics the page holds (more than @p cap are
 *         checked, not stored), or SHMBUS_ERR_PROTOCOL, after which
 *         @p info and @p out may hold part of the page. Pure function;
 *         never reads beyond @p len bytes.
 */
int sb_monitor_nats_page(const void *body, size_t len, uint64_t after, shmbus_nats_info *info,
                         shmbus_nats_topic *out, unsigned cap);

#define SB_MONITOR_ATOMIC_COUNTER(field) _Atomic uint64_t field;
#define SB_MONITOR_ATOMIC_GAUGE(field)
#define SB_MONITOR_ATOMIC(kind, field, key, doc) SB_MONITOR_ATOMIC_##kind(field)

/* The bridge's COUNTER totals (SHMBUS_BRIDGE_TOTALS) as the daemon keeps
 * them, one _Atomic uint64_t each under its public name: any thread adds
 * with relaxed order (independent counters, read by no one to decide
 * anything). GAUGE totals are measured when asked, not kept here. */
struct sb_monitor_bridge_counters {
    SHMBUS_BRIDGE_TOTALS(SB_MONITOR_ATOMIC)
};

/* Read every counter of @p c into @p info; its other fields stay. */
void sb_monitor_counters_read(const struct sb_monitor_bridge_counters *c, shmbus_bridge_info *info);

#endif
