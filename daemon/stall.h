/*
 * Stall timeouts: a reliable topic's subscriber that holds publishers back
 * for longer than the topic's stall_timeout_ms is evicted, and a claim any
 * live publisher keeps open that long is ended (Aeron's untethered
 * subscriptions and publication unblock). Run from the reaper's periodic
 * scan; what is done to the segment is in admin.h. Control thread only.
 */
#ifndef SHMBUSD_STALL_H
#define SHMBUSD_STALL_H

#include <stdint.h>

#include "registry.h"

/* Look at @p t's gates and claims at monotonic time @p now_ms; evict and
 * unblock what has stalled past the topic's timeout (none if 0). */
void sbd_stall_scan(struct sbd_topic *t, int64_t now_ms);

/* Free what sbd_stall_scan() kept for @p t. Accepts NULL. */
void sbd_stall_free(struct sbd_stall *s);

#endif
