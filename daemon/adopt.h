/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the registry (registry.c) and the taking over of segments
 * (adopt.c) share, and nothing else includes.
 */
#ifndef SHMBUSD_ADOPT_H
#define SHMBUSD_ADOPT_H

#include <sys/stat.h>

#include "registry.h"

/* Is a segment found "not ready" (@p rc) with the file @p judged so for
 * too long to have a creator at work (SBD_ABANDONED_S since its last
 * change)? @return 1 or 0. */
int sbd_seg_abandoned(const struct stat *judged, int rc);

/*
 * Segment @p seg attached as a topic, not registered yet. It is mapped and
 * read inside the SIGBUS guard's window (guard.h): a file truncated under
 * us faults harmlessly and is taken for truncated. The file judged goes to
 * @p judged (sbd_seg_open()), whatever the outcome. @return 0 with the
 * topic in *out (the caller's), or an error of sbd_seg_open(),
 * sb_admin_topic_map(), SHMBUS_ERR_TRUNCATED, SHMBUS_ERR_BAD_NAME,
 * -ENOMEM.
 */
int sbd_topic_attach(struct sbd_registry *r, const char *seg, struct sbd_topic **out,
                     struct stat *judged);

/* Make a new topic @p t visible to lookups, guarded against truncation.
 * With topic_lock held. */
void sbd_topic_insert(struct sbd_registry *r, struct sbd_topic *t);

/* Is a segment of topic @p name, of any generation, waiting to be
 * adopted? With topic_lock held, or on the control thread. */
int sbd_pending_has_topic(const struct sbd_registry *r, const char *name);

#endif
