/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus metrics endpoint (shmbusd --metrics, docs/design.md
 * "Metrics"): a small HTTP/1.1 server in a thread of its own that answers
 * GET and HEAD /metrics in the text exposition format and closes each
 * connection after its response. Its own thread, registered with liburcu
 * as the bridge's are, because a scrape walks the registry's RCU topic
 * table and reads every segment: the control loop never waits for a
 * scrape, nor a scrape for it. The rest of the daemon sees only this header.
 */
#ifndef SHMBUSD_METRICS_H
#define SHMBUSD_METRICS_H

#include "config.h"
#include "registry.h"

struct sbd_bridge;
struct sbd_fed;
struct sbd_metrics;

/* Connections served at once; one more takes the place of the one that
 * has waited longest for its request, which is answered 503 and closed,
 * or is answered 503 itself when every one is being answered. */
#define SBD_METRICS_CONNS_MAX 8u
/* A connection's time to send its request, and then to read the response;
 * past it the connection is closed. */
#define SBD_METRICS_TIMEOUT_MS 5000u

/* Listen on cfg->metrics_host:metrics_port and start the thread, reading
 * the bridge @p bridge and federation @p fed (each may be NULL). Without
 * --metrics *out = NULL and it returns 0. After the bridge and federation
 * started. @return 0 or -errno (the address cannot be bound, no thread). */
int sbd_metrics_start(const struct sbd_config *cfg, struct sbd_registry *reg,
                      struct sbd_bridge *bridge, struct sbd_fed *fed, struct sbd_metrics **out);

/* Stop the thread and close every connection. Before the bridge and
 * federation stop. Accepts NULL. */
void sbd_metrics_stop(struct sbd_metrics *m);

#endif
