/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the metrics endpoint shows (collect.c): one scrape's text, read
 * the way `shmbus stat` reads it (monitor.h): per topic its counters from
 * the segment, per busy subscriber slot its lag and losses, per consumer
 * group its numbers; the bridge's and federation's totals; the daemon's
 * process. docs/design.md "Metrics" lists the names and labels.
 */
#ifndef SHMBUSD_METRICS_COLLECT_H
#define SHMBUSD_METRICS_COLLECT_H

#include <stdint.h>

#include "expo.h"

struct sbd_registry;
struct sbd_bridge;
struct sbd_fed;

/* Where a scrape reads from. */
struct sbm_source {
    struct sbd_registry *reg;
    struct sbd_bridge *bridge; /* NULL: no bridge series */
    struct sbd_fed *fed;       /* NULL: no federation series */
    uint32_t max_slots;        /* slot series per topic (--metrics-max-slots); 0: none */
};

/* Scratch space one scrape reuses for the next (its thread's). */
struct sbm_scratch;

/*
 * Write every metric into @p out, grouped by family as the format wants.
 * A racy snapshot, as `shmbus stat`'s. @p scratch is allocated on first
 * use (*scratch NULL) and kept; free it with sbm_collect_free().
 * Registered thread (liburcu), outside any read-side section.
 * @return 0, or -ENOMEM (out->oom, or the scratch could not grow).
 */
int sbm_collect(const struct sbm_source *src, struct sbm_scratch **scratch, struct sbm_out *out);

/* Free what sbm_collect() kept. Accepts NULL. */
void sbm_collect_free(struct sbm_scratch *scratch);

#endif
