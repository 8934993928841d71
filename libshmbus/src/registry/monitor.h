/*
 * Monitoring through the daemon: the conversions between the public
 * structs of shmbus/monitor.h and the LIST and BRIDGE reply bodies of
 * wire.h. The public structs never travel as they are: the daemon encodes
 * a reply field by field, and the client decodes it field by field, so
 * either side can change without changing the protocol.
 */
#ifndef SHMBUS_REGISTRY_MONITOR_H
#define SHMBUS_REGISTRY_MONITOR_H

#include "registry/wire.h"
#include "shmbus/monitor.h"

/* Encode @p e into @p w: every byte of @p w is written, padding zeroed. */
void sb_monitor_topic_put(struct sb_wire_topic *w, const shmbus_topic_entry *e);

/* Decode @p w into @p e; the name is NUL-terminated whatever was sent. */
void sb_monitor_topic_get(shmbus_topic_entry *e, const struct sb_wire_topic *w);

/* Decode the totals of a BRIDGE reply; listen is NUL-terminated. */
void sb_monitor_bridge_get(shmbus_bridge_info *info, const struct sb_wire_bridge_ok *w);

/* Decode one connection of a BRIDGE reply; its strings are NUL-terminated. */
void sb_monitor_conn_get(shmbus_bridge_conn *c, const struct sb_wire_bridge_conn *w);

#endif
